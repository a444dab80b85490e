"""``pli send`` metadata, ``pli prescribe``, ``pli export`` and ``pli verify`` without daemons.

A fake API serves documents sealed for real with ``protocol`` (so the evidence is a
genuine signature); export writes them and verify checks them offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from p2p.cli.demo_parts import tiny_pdf
from p2p.documents import prescribing, prescription
from p2p.documents.clinical import check_sex, clinical_metadata
from protocol import (
    DocumentMeta,
    Evidence,
    FileEntry,
    LocalIdentity,
    new_document_id,
    open_envelope,
    seal,
)

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .fake_api import FakeApi

Api = tuple[Path, FakeApi]
INS = "2 55 08 14 168 025 38"  # a woman born in August 1955
SENDER = LocalIdentity.generate(now=0)  # the colleague whose key `verify` is told to trust
TAMPERED = "This document was changed after it was signed"


def posted(server: FakeApi, path: str = "/v1/documents") -> list[Any]:
    return [body for method, p, body in server.requests if method == "POST" and p == path]


@pytest.fixture
def letter(tmp_path: Path) -> Path:
    path = tmp_path / "lettre.txt"
    path.write_text("Cher confrère,\nje vous adresse Mme Dupont.\n", encoding="utf-8")
    return path


# --- clinical metadata ---------------------------------------------------------------------


def test_clinical_metadata_splits_a_name_only_on_a_comma() -> None:
    meta = clinical_metadata(
        patient_name="DUPONT, Jeanne Marie",
        birthdate="1955-08-14",
        sex="femme",
        ins=INS,
        author_rpps="101 0123 4567",
    )
    assert meta == {
        "patient_name": "DUPONT Jeanne Marie",
        "patient_family_name": "DUPONT",
        "patient_given_names": "Jeanne Marie",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
        "author_rpps": "10101234567",
    }
    assert clinical_metadata(patient_name="Jeanne Dupont") == {"patient_name": "Jeanne Dupont"}
    explicit = clinical_metadata(family_name="Dupont", given_names="Jeanne")
    assert explicit["patient_name"] == "DUPONT Jeanne"


@pytest.mark.parametrize("sex", ["f", "M", "h", "U", "inconnu"])
def test_check_sex_accepts_the_usual_letters(sex: str) -> None:
    assert check_sex(sex) in ("F", "M", "U")


def test_an_ins_of_a_temporary_number_is_not_checked_against_the_birth_date() -> None:
    # 7... is a temporary number (NIA): its digits do not encode the birth date.
    from p2p.documents.clinical import ins_key

    number = "7550814168025"
    ins = f"{number}{ins_key(number):02d}"
    meta = clinical_metadata(ins=ins, birthdate="1990-01-01", sex="M")
    assert meta["patient_ins"] == ins


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--patient-sex", "Z"], "F (female), M (male) or U"),
        (["--patient-ins", INS, "--patient-sex", "M"], "a woman's"),
        (["--patient-ins", INS, "--patient-birthdate", "1956-08-14"], "does not match the birth"),
        (["--patient-ins", INS, "--patient-birthdate", "1955-09-14"], "does not match the birth"),
        (["--author-rpps", "1234"], "Leave --author-rpps out"),
        (["--recipient-rpps", "1010123456X"], "Leave --recipient-rpps out"),
        (["--patient-name", "A, B, C"], "more than one comma"),
        (["--patient-name", "DUPONT, Jeanne", "--patient-family-name", "MARTIN"], "disagree"),
        (["--patient-given-names", "a\tb"], "control characters"),
    ],
)
def test_send_checks_the_clinical_details(
    tmp_path: Path, letter: Path, options: list[str], message: str
) -> None:
    result = run("--home", tmp_path, "send", "Dr Bob", letter, *options)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_send_one_envelope_with_attachments_and_every_field(
    fake_api: Api, tmp_path: Path, letter: Path
) -> None:
    home, server = fake_api
    (home / "profile.json").write_text(json.dumps({"name": "Dr A", "rpps": "10101234567"}))
    pdf = tmp_path / "ecg.pdf"
    pdf.write_bytes(tiny_pdf(["ECG"]))
    server.answers["GET", "/v1/documents/abcd"] = (200, {"id": "ab" * 16})
    server.answers["POST", "/v1/documents"] = (202, {"id": "ef" * 16, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = (200, [])
    result = run(
        "--home",
        home,
        "send",
        "Dr Bob",
        letter,
        pdf,
        "--subject",
        "Avis",
        "--patient-name",
        "DUPONT, Jeanne",
        "--patient-birthdate",
        "1955-08-14",
        "--patient-sex",
        "F",
        "--patient-ins",
        INS,
        "--recipient-rpps",
        "10107654321",
        "--in-reply-to",
        "abcd",
    )
    assert result.exit_code == 0, result.output
    (body,) = posted(server)
    assert body["kind"] == "letter"
    assert [(f["name"], f["type"]) for f in body["files"]] == [
        ("lettre.txt", "text/plain; charset=utf-8"),
        ("ecg.pdf", "application/pdf"),
    ]
    assert body["metadata"] == {
        "subject": "Avis",
        "patient_name": "DUPONT Jeanne",
        "patient_family_name": "DUPONT",
        "patient_given_names": "Jeanne",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
        "author_rpps": "10101234567",
        "recipient_rpps": "10107654321",
        "in_reply_to": "ab" * 16,
    }


def test_in_reply_to_an_unknown_document(fake_api: Api, letter: Path) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abcd"] = (
        404,
        {"error": {"code": "document-unknown", "message": "No document has the id “abcd”."}},
    )
    result = run("--home", home, "send", "Dr Bob", letter, "--in-reply-to", "abcd")
    assert result.exit_code == 1
    assert "No document has the id" in result.stderr
    assert posted(server) == []


# --- prescribe -------------------------------------------------------------------------------

ME = {
    "name": "Dr Alice Martin",
    "profession": "médecin généraliste",
    "rpps": "10101234567",
    "practice": "Lyon",
    "fingerprint": "AAAAA-BBBBB",
    "peer_id": "ab" * 32,
}
ITEM = "Amoxicilline 1 g; 1 comprimé matin et soir; 7 jours; 1 boîte; 0"


def test_prescribe_sends_a_structured_signed_file(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/identity"] = (200, ME)
    server.answers["POST", "/v1/documents"] = (202, {"id": "ef" * 16, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = (200, [])
    result = run(
        "--home",
        home,
        "prescribe",
        "Dr Bob",
        "--patient-name",
        "DUPONT, Jeanne",
        "--patient-birthdate",
        "1955-08-14",
        "--item",
        ITEM,
        "--item",
        "Doliprane 1000 mg; 1 cp si douleur; 5 jours; ; 2",
    )
    assert result.exit_code == 0, result.output
    (body,) = posted(server)
    assert body["kind"] == "prescription"
    (entry,) = body["files"]
    today = dt.date.today().isoformat()
    assert entry["name"] == f"ordonnance-{today}.json"
    assert entry["type"] == "application/json"
    assert not Path(entry["path"]).exists()  # the private copy is gone once sealed
    order = prescription.load(server.files[entry["path"]])
    assert order["patient"]["family_name"] == "DUPONT"
    assert order["patient"]["birthdate"] == "1955-08-14"
    assert order["prescriber"]["rpps"] == "10101234567"
    assert order["prescriber"]["fingerprint"] == "AAAAA-BBBBB"
    assert order["items"][0] == {
        "drug": "Amoxicilline 1 g",
        "dosage": "1 comprimé matin et soir",
        "duration": "7 jours",
        "quantity": "1 boîte",
        "renewals": 0,
    }
    assert order["items"][1]["renewals"] == 2
    assert order["date"] == today
    assert body["metadata"]["prescription_id"] == order["id"]
    assert body["metadata"]["author_rpps"] == "10101234567"
    assert order["id"] in result.stdout


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("Amoxicilline; 7 jours", "has 2 part(s)"),
        ("Amoxicilline; 1 cp; 7 jours; 1 boîte; deux", "not a number of renewals"),
        ("Amoxicilline; 1 cp; 7 jours; 1 boîte; 20", "more than a prescription allows"),
        ("; 1 cp; 7 jours", "drug name is missing"),
        ("a; b; c; d; 1; extra", "has 6 part(s)"),
    ],
)
def test_prescribe_checks_each_item(tmp_path: Path, item: str, message: str) -> None:
    result = run(
        "--home",
        tmp_path,
        "prescribe",
        "Dr Bob",
        "--patient-name",
        "X",
        "--patient-birthdate",
        "1955-08-14",
        "--item",
        item,
    )
    assert result.exit_code == 1, result.output
    assert message in result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        ["--patient-birthdate", "1955-08-14", "--item", ITEM],
        ["--patient-name", "X", "--item", ITEM],
        ["--patient-name", "X", "--patient-birthdate", "1955-08-14"],
    ],
)
def test_prescribe_needs_a_patient_and_items(tmp_path: Path, missing: list[str]) -> None:
    assert run("--home", tmp_path, "prescribe", "Dr Bob", *missing).exit_code == 2


def test_prescribe_needs_the_prescribers_rpps(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/identity"] = (200, {**ME, "rpps": ""})
    result = run(
        "--home",
        home,
        "prescribe",
        "Dr Bob",
        "--patient-name",
        "X",
        "--patient-birthdate",
        "1955-08-14",
        "--item",
        ITEM,
    )
    assert result.exit_code == 1
    assert "RPPS" in result.stderr
    assert posted(server) == []


# --- export and verify, with genuine signatures --------------------------------------------


class Sent:
    """A document sealed by ``sender`` for ``me``, served by the fake API."""

    def __init__(
        self,
        server: FakeApi,
        kind: str,
        files: list[tuple[str, bytes, str]],
        metadata: dict[str, str],
        sender: LocalIdentity | None = None,
    ) -> None:
        self.sender = sender or SENDER
        me = LocalIdentity.generate(now=0)
        meta = DocumentMeta(
            document_id=new_document_id(),
            created_at=1_800_000_000,
            kind=kind,
            sender=self.sender.public,
            recipients=(me.public,),
            files=tuple(FileEntry(name, len(data), type_) for name, data, type_ in files),
            metadata=metadata,
        )
        sealed = b"".join(
            seal(self.sender, [me.card(1, name="Dr B")], meta, [data for _n, data, _t in files])
        )
        proof = Evidence.of(open_envelope([sealed], me))
        self.id = doc = meta.document_id.hex()
        info = {
            "id": doc,
            "direction": "in",
            "kind": kind,
            "created_at": meta.created_at,
            "sender": self.sender.peer_id.hex,
            "recipients": [me.peer_id.hex],
            "files": [{"name": n, "size": len(d), "type": t} for n, d, t in files],
            "metadata": metadata,
            "receipts": [],
        }
        evidence = {
            "id": doc,
            "evidence": base64.b64encode(proof.to_wire()).decode(),
            "signer_fingerprint": self.sender.peer_id.fingerprint,
            "files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest()} for n, d, _t in files],
        }
        server.answers["GET", f"/v1/documents/{doc[:8]}"] = (200, info)
        server.answers["GET", f"/v1/documents/{doc}/receipts"] = (200, [])
        server.answers["GET", f"/v1/documents/{doc}/evidence"] = (200, evidence)
        server.answers["POST", f"/v1/documents/{doc}/exported"] = (200, {})
        for i, (_name, data, _type) in enumerate(files):
            server.answers["GET", f"/v1/documents/{doc}/files/{i}"] = (200, data)


LETTER = "Cher confrère,\nje vous adresse Mme Dupont.\n".encode()
PDF = tiny_pdf(["ECG de repos", "Rythme sinusal"])
META = {"subject": "Avis", "patient_name": "DUPONT Jeanne", "patient_birthdate": "1955-08-14"}


def export(home: Path, doc: str, folder: Path) -> dict[str, Any]:
    folder.mkdir(exist_ok=True)
    result = run("--home", home, "--json", "export", doc[:8], "--to", folder)
    assert result.exit_code == 0, result.output
    done: dict[str, Any] = json.loads(result.stdout)
    return done


def verify(path: Path, *extra: str, signer: LocalIdentity = SENDER) -> Result:
    """``pli verify`` with no home, trusting ``signer`` (tests_verify_trust.py: the rest)."""
    fingerprint = signer.peer_id.fingerprint
    return run("--home", path.parent / "no-home", *extra, "verify", path, "--signer", fingerprint)


@pytest.fixture
def exported_letter(fake_api: Api, tmp_path: Path) -> Path:
    home, server = fake_api
    sent = Sent(
        server,
        "letter",
        [("lettre.txt", LETTER, "text/plain"), ("ecg.pdf", PDF, "application/pdf")],
        META,
    )
    done = export(home, sent.id, tmp_path / "out")
    assert [Path(p).name for p in done["files"]] == ["lettre.txt", "ecg.pdf"]
    assert ("POST", f"/v1/documents/{sent.id}/exported", {}) in server.requests
    return tmp_path / "out"


def test_export_writes_the_files_and_the_proof(exported_letter: Path) -> None:
    assert (exported_letter / "ecg.pdf").read_bytes() == PDF
    sidecar = json.loads((exported_letter / "lettre.txt.pli.json").read_text())
    assert sidecar["pli_export"] == 2
    assert sidecar["files"][1]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert sidecar["evidence"]["evidence"]


@pytest.mark.parametrize("name", ["ecg.pdf", "lettre.txt", "lettre.txt.pli.json"])
def test_verify_an_intact_export(exported_letter: Path, name: str) -> None:
    result = verify(exported_letter / name)
    assert result.exit_code == 0, result.output
    assert "The signature is valid" in result.stdout
    assert "which is the key you gave with --signer" in result.stdout
    assert "ecg.pdf: intact" in result.stdout
    assert "DUPONT Jeanne" in result.stdout
    report = json.loads(verify(exported_letter / name, "--json").stdout)
    assert report["valid"] is True
    assert report["signer"]["relation"] == "signer"
    assert report["metadata"] == META
    assert [f["status"] for f in report["files"]] == ["intact", "intact"]


def test_verify_a_changed_file_exits_4(exported_letter: Path) -> None:
    data = bytearray((exported_letter / "ecg.pdf").read_bytes())
    data[100] ^= 1
    (exported_letter / "ecg.pdf").write_bytes(bytes(data))
    result = verify(exported_letter / "ecg.pdf")
    assert result.exit_code == 4
    assert TAMPERED in result.stderr
    assert "Do not use it; ask the sender for a new copy." in result.stderr


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["document"]["metadata"].update(subject="Urgent"),
        lambda s: s["document"].update(kind="report"),
        lambda s: s["files"][0].update(saved_as="../lettre.txt"),
        lambda s: s["files"][1].update(index=0),
        lambda s: s["evidence"].update(signer_fingerprint="AAAAA"),
        lambda s: s["evidence"].update(evidence=s["evidence"]["evidence"][:-8] + "AAAAAAA="),
        lambda s: s.update(evidence="nothing"),
    ],
)
def test_verify_an_edited_sidecar_exits_4(exported_letter: Path, edit: Any) -> None:
    path = exported_letter / "lettre.txt.pli.json"
    sidecar = json.loads(path.read_text())
    edit(sidecar)
    path.write_text(json.dumps(sidecar))
    result = verify(exported_letter / "lettre.txt")
    assert result.exit_code == 4, result.output
    assert TAMPERED in result.stderr


def test_verify_without_the_sidecar_says_what_to_do(exported_letter: Path) -> None:
    (exported_letter / "lettre.txt.pli.json").unlink()
    result = verify(exported_letter / "ecg.pdf")
    assert result.exit_code == 1
    assert "No signature file was found next to “ecg.pdf”" in result.stderr
    assert "pli export" in result.stderr


def test_verify_a_missing_file(tmp_path: Path) -> None:
    result = verify(tmp_path / "absent.pdf")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_a_file_missing_next_to_the_sidecar_is_reported(exported_letter: Path) -> None:
    (exported_letter / "lettre.txt").unlink()
    result = verify(exported_letter / "ecg.pdf")
    assert result.exit_code == 0, result.output
    assert "lettre.txt: not found here (not checked)" in result.stdout


def test_export_refuses_a_file_that_is_not_the_signed_one(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    sent = Sent(server, "letter", [("lettre.txt", LETTER, "text/plain")], META)
    server.answers["GET", f"/v1/documents/{sent.id}/files/0"] = (200, LETTER.upper())
    (tmp_path / "out").mkdir()
    result = run("--home", home, "export", sent.id[:8], "--to", tmp_path / "out")
    assert result.exit_code == 4
    assert "does not match what the sender signed" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def _prescription(sender: LocalIdentity, **prescriber: str) -> bytes:
    order = prescription.build(
        patient={"name": "DUPONT Jeanne", "birthdate": "1955-08-14", "sex": "F"},
        items=[prescribing.parse_item(ITEM)],
        prescriber={
            "name": "Dr Alice",
            "rpps": "10101234567",
            "fingerprint": sender.peer_id.fingerprint,
            **prescriber,
        },
    )
    return prescription.to_bytes(order)


@pytest.fixture
def page(fake_api: Api, tmp_path: Path) -> Path:
    home, server = fake_api
    content = _prescription(SENDER)
    sent = Sent(
        server,
        "prescription",
        [("ordonnance-2027-01-02.json", content, "application/json")],
        {"patient_name": "DUPONT Jeanne"},
    )
    done = export(home, sent.id, tmp_path / "out")
    assert done["page"] is not None
    return Path(done["page"])


def test_the_prescription_page_is_printable_and_verifies(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert page.name == "ordonnance-2027-01-02.html"
    assert "<svg" in text
    assert "Amoxicilline 1 g" in text
    assert "RPPS 10101234567" in text
    evidence = text.split('id="pli-evidence">')[1].split("<")[0]
    assert evidence.startswith(prescription.QR_PREFIX)
    assert len(evidence) < 1600  # well inside a version-40 QR code at level M
    result = verify(page)
    assert result.exit_code == 0, result.output
    assert "Amoxicilline 1 g: 1 comprimé matin et soir, 7 jours, 1 boîte" in result.stdout
    assert verify(page.with_suffix(".json")).exit_code == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Amoxicilline 1 g", "Amoxicilline 3 g"),
        ("DUPONT Jeanne", "DURAND Jeanne"),
        ("RPPS 10101234567", "RPPS 10101234568"),
    ],
)
def test_a_changed_page_exits_4(page: Path, old: str, new: str) -> None:
    text = page.read_text(encoding="utf-8")
    assert old in text
    page.write_text(text.replace(old, new), encoding="utf-8")
    result = verify(page)
    assert result.exit_code == 4, result.output
    assert TAMPERED in result.stderr


def test_a_page_with_another_prescription_inside_exits_4(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    marker = 'data-file-index="0">'
    inside = text.split(marker)[1].split("<")[0]
    other = base64.b64decode(inside).replace(b"7 jours", b"9 jours")
    page.write_text(text.replace(inside, base64.b64encode(other).decode()), encoding="utf-8")
    assert verify(page).exit_code == 4


def test_a_prescription_signed_by_someone_else_than_its_prescriber(
    fake_api: Api, tmp_path: Path
) -> None:
    home, server = fake_api
    forger = LocalIdentity.generate(now=0)
    content = _prescription(forger, fingerprint=LocalIdentity.generate(now=0).peer_id.fingerprint)
    sent = Sent(
        server,
        "prescription",
        [("ordonnance-2027-01-02.json", content, "application/json")],
        {},
        sender=forger,
    )
    done = export(home, sent.id, tmp_path / "out")
    result = verify(Path(done["page"]), signer=forger)
    assert result.exit_code == 4
    assert "names another prescriber" in result.stderr


def test_verify_an_older_export_says_to_export_again(tmp_path: Path) -> None:
    old = tmp_path / "lettre.txt.pli.json"
    old.write_text(json.dumps({"pli_export": 1, "document": {}, "files": []}))
    result = verify(old)
    assert result.exit_code == 1
    assert "export the document again" in result.stderr


def test_the_demo_pdf_is_a_pdf(tmp_path: Path) -> None:
    pdf = tiny_pdf(["Bonjour (é)"])
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    assert pdf[xref:].startswith(b"xref")
    if shutil.which("pdftotext"):  # poppler, when installed, reads it back
        import subprocess

        (tmp_path / "t.pdf").write_bytes(pdf)
        text = subprocess.run(
            ["pdftotext", tmp_path / "t.pdf", "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Bonjour (é)" in text


def test_a_scanned_qr_code_verifies_the_signature(page: Path) -> None:
    payload = page.read_text(encoding="utf-8").split('id="pli-evidence">')[1].split("<")[0]
    scanned = page.parent / "scan.txt"
    scanned.write_text(payload + "\n")
    result = verify(scanned)
    assert result.exit_code == 0, result.output
    assert "prescription" in result.stdout
    assert "not found here (not checked)" in result.stdout
    scanned.write_text(payload[:-10] + "\n")
    assert verify(scanned).exit_code == 4


def test_an_ambiguous_document_prefix(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abcd"] = (
        400,
        {"error": {"code": "bad-input", "message": "“abcd” matches 2 documents; type more."}},
    )
    result = run("--home", home, "export", "abcd", "--to", tmp_path)
    assert result.exit_code == 1
    assert "matches 2 documents" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [
            "prescribe",
            "Dr Bob",
            "--patient-name",
            "X",
            "--patient-birthdate",
            "1955-08-14",
            "--item",
            ITEM,
        ],
        ["export", "abcd"],
        ["pair", "accept", "314-1592653"],
        ["peers", "pending"],
        ["peers", "add", LocalIdentity.generate(now=0).peer_id.fingerprint, "--address", "h:1"],
    ],
)
def test_without_a_daemon_every_command_exits_3(tmp_path: Path, command: list[str]) -> None:
    result = run("--home", tmp_path, *command)
    assert result.exit_code == 3, result.output
    assert "pli --home" in result.stderr
