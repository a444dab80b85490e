"""The steps of ``pli demo`` after both daemons are up (``demo.py`` runs them in order).

Pair with a one-time code, send a letter with a PDF and a prescription, wait for
the signed receipts, read the inbox, export and verify offline (and see an altered
copy refused), answer. Each step talks to the daemons through the same local API
and the same modules as the commands, and narrates what a person would type.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2p.cli.demo_parts import PATIENT, STEP_TIMEOUT, Narrator, Practice, tiny_pdf, wait_for
from p2p.errors import PliError

if TYPE_CHECKING:
    from p2p.documents.trust import Keyring


def pair(say: Narrator, gp: Practice, cardio: Practice) -> None:
    say.step(
        "Pair with a one-time code",
        "Dr Martin makes an invitation and reads the code to Dr Benali on the phone. "
        "Dr Benali types it; pli finds the invitation on the local network by mDNS.",
    )
    invitation = gp.client.post("/v1/pair/invite", {})
    say.command(f"pli --home {gp.home} pair invite")
    say.detail(
        f"Pairing code: {invitation['code']} (works once, for 10 minutes)", code=invitation["code"]
    )
    say.command(f"pli --home {cardio.home} pair accept {invitation['code']}")
    attempt = cardio.client.post("/v1/pair/accept", {"code": invitation["code"]}, timeout=60)
    sides = [(gp, str(invitation["id"])), (cardio, str(attempt["id"]))]
    statuses = [_pair_status(p, key, "needs-confirmation,failed") for p, key in sides]
    for (practice, _key), status in zip(sides, statuses, strict=True):
        say.detail(
            f"{practice.name}'s screen shows check code {status['sas']} for {status['peer_name']}",
            name=practice.name,
            sas=status["sas"],
        )
    if statuses[0]["sas"] != statuses[1]["sas"]:
        raise PliError("The check codes differ: the pairing was intercepted.")
    say.detail("Same code on both screens: nobody sits in the middle. Both confirm.")
    for practice, key in sides:
        practice.client.post(f"/v1/pair/{key}/confirm", {"yes": True})
    for practice, key in sides:
        final = _pair_status(practice, key, "paired,failed")
        say.detail(
            f"{practice.name} is now paired with {final['peer_name']}.",
            name=practice.name,
            peer=final["peer_name"],
        )


def _pair_status(practice: Practice, key: str, until: str) -> dict[str, Any]:
    status: dict[str, Any] = practice.client.get(
        f"/v1/pair/{key}?timeout={STEP_TIMEOUT:.0f}&until={until}", timeout=STEP_TIMEOUT + 10
    )
    if status["state"] == "failed":
        raise PliError(f"Pairing failed on {practice.name}'s side: {status.get('message')}")
    if status["state"] not in until.split(","):
        raise PliError(f"Pairing did not progress on {practice.name}'s side in time.")
    return status


def send(say: Narrator, root: Path, gp: Practice, cardio: Practice) -> tuple[str, str]:
    """A letter with an ECG, then a prescription, from the GP to the cardiologist."""
    from p2p.documents.clinical import clinical_metadata

    say.step(
        "Send a letter with a PDF attachment",
        "Dr Martin refers a patient. The letter and the ECG travel in one envelope, "
        "encrypted for Dr Benali and signed by Dr Martin, with the patient's details inside.",
    )
    work = root / "documents"
    work.mkdir()
    letter, ecg = _letter_files(work)
    metadata = clinical_metadata(
        subject="Avis cardiologique",
        **PATIENT,
        author_rpps="10101234567",
        recipient_rpps="10107654321",
    )
    say.command(
        f'pli --home {gp.home} send "Dr Karim Benali" {letter} {ecg} --subject '
        '"Avis cardiologique" --patient-name "DUPONT, Jeanne" --patient-birthdate '
        "1955-08-14 --patient-sex F --patient-ins '2 55 08 14 168 025 38'"
    )
    letter_id = _queue(
        gp,
        cardio,
        "letter",
        metadata,
        [
            {"path": str(letter), "name": letter.name, "type": "text/plain; charset=utf-8"},
            {"path": str(ecg), "name": ecg.name, "type": "application/pdf"},
        ],
    )
    say.detail(
        f"Queued letter {letter_id[:12]} (lettre.txt + ecg.pdf, {ecg.stat().st_size} "
        "bytes of PDF).",
        id=letter_id,
    )
    return letter_id, _send_prescription(say, work, gp, cardio, metadata)


def _letter_files(work: Path) -> tuple[Path, Path]:
    """The referral letter and its ECG (a tiny PDF), written in ``work``."""
    letter = work / "lettre.txt"
    letter.write_text(
        "Cher confrère,\n\nJe vous adresse Mme Jeanne Dupont, 71 ans, pour un "
        "avis cardiologique : dyspnée d'effort récente.\nECG ci-joint.\n\n"
        "Bien confraternellement,\nDr Claire Martin\n",
        encoding="utf-8",
    )
    ecg = work / "ecg.pdf"
    ecg.write_bytes(
        tiny_pdf(
            [
                "ECG de repos - Mme Jeanne Dupont",
                "Rythme sinusal, 72/min.",
                "(document de démonstration)",
            ]
        )
    )
    return letter, ecg


def _send_prescription(
    say: Narrator, work: Path, gp: Practice, cardio: Practice, metadata: dict[str, str]
) -> str:
    from p2p.documents import prescription

    say.step(
        "Send a prescription",
        "pli prescribe builds a structured prescription (patient, items, prescriber "
        "with RPPS, date, unique id) and sends it signed, like any document.",
    )
    order = _prescription(gp.client.get("/v1/identity"))
    say.command(
        f'pli --home {gp.home} prescribe "Dr Karim Benali" --patient-name '
        '"DUPONT, Jeanne" --patient-birthdate 1955-08-14 --item "Bisoprolol 2,5 mg; '
        '1 comprimé le matin; 1 mois; 1 boîte de 30; 2" --item "Holter ECG des 24 '
        'heures; 1 examen; 1 jour"'
    )
    path = work / prescription.file_name(order)
    path.write_bytes(prescription.to_bytes(order))
    meta = {**metadata, "subject": f"Ordonnance du {order['date']}", "prescription_id": order["id"]}
    prescription_id = _queue(
        gp,
        cardio,
        "prescription",
        meta,
        [{"path": str(path), "name": path.name, "type": prescription.MEDIA_TYPE}],
    )
    say.detail(
        f"Queued prescription {prescription_id[:12]} (id {order['id']}).",
        id=prescription_id,
        prescription=order["id"],
    )
    return prescription_id


def _prescription(gp_identity: dict[str, Any]) -> dict[str, Any]:
    """The GP's prescription for the patient: a beta-blocker and a Holter ECG."""
    from p2p.documents import prescribing, prescription

    return prescription.build(
        patient={
            "name": "DUPONT Jeanne",
            "family_name": "DUPONT",
            "given_names": "Jeanne",
            "birthdate": "1955-08-14",
            "sex": "F",
            "ins": "255081416802538",
        },
        items=[
            prescribing.parse_item(
                "Bisoprolol 2,5 mg; 1 comprimé le matin; 1 mois; 1 boîte de 30; 2"
            ),
            prescribing.parse_item("Holter ECG des 24 heures; 1 examen; 1 jour"),
        ],
        prescriber={
            **{
                k: str(gp_identity.get(k) or "")
                for k in ("name", "profession", "practice", "fingerprint")
            },
            "rpps": "10101234567",
        },
    )


def _queue(
    sender: Practice, to: Practice, kind: str, metadata: dict[str, str], files: list[dict[str, str]]
) -> str:
    body = {"to": [to.name], "kind": kind, "metadata": metadata, "files": files}
    answer = sender.client.post("/v1/documents", body, timeout=60)
    return str(answer["id"])


def receipts(say: Narrator, sender: Practice, ids: list[str]) -> None:
    from p2p.cli.render import when

    say.step(
        "Signed receipts",
        "Each document stays in Dr Martin's outbox until Dr Benali's daemon returns a "
        "receipt signed with its key: proof of delivery, checkable later.",
    )

    def delivered() -> list[dict[str, Any]] | None:
        rows = [r for r in sender.client.get("/v1/outbox") if r["id"] in ids]
        if any(r["state"] == "rejected" for r in rows):
            raise PliError(f"A document was refused: {rows}")
        return rows if rows and all(r["state"] == "delivered" for r in rows) else None

    for row in wait_for(delivered, "the signed receipts"):
        say.detail(
            f"{row.get('kind', 'document')} {row['id'][:12]}: delivered to "
            f"{row['to_name']}, receipt signed {when(row['receipt_time'])}",
            id=row["id"],
            receipt_time=row["receipt_time"],
        )
    say.command(f"pli --home {sender.home} outbox")


def inbox(say: Narrator, practice: Practice) -> None:
    from p2p.cli.render import when

    say.step(
        "Dr Benali's inbox",
        "The daemon checked the signature of each document before accepting it.",
    )
    say.command(f"pli --home {practice.home} inbox")
    rows = practice.client.get("/v1/inbox")
    for row in rows:
        meta = row.get("metadata") or {}
        say.detail(
            f"{row['kind']} {row['id'][:12]} from {row['from_name']}: {meta.get('subject', '')}",
            id=row["id"],
            kind=row["kind"],
            metadata=meta,
        )
    say.table(
        ["ID", "From", "Kind", "Subject", "Patient", "Received"],
        [
            [
                r["id"][:12],
                r["from_name"],
                r["kind"],
                (r.get("metadata") or {}).get("subject"),
                (r.get("metadata") or {}).get("patient_name"),
                when(r["received_at"]),
            ]
            for r in rows
        ],
        empty="(empty)",
    )


def export_and_verify(say: Narrator, root: Path, practice: Practice, *ids: str) -> None:
    """Export the documents, verify them offline, and show an altered copy refused."""
    from p2p.documents.trust import Keyring
    from p2p.documents.verify import verify_path
    from p2p.storage.trusted import known_keys

    say.step(
        "Export and verify, offline",
        "Export writes the files, a .pli.json with the signature proof, and for the "
        "prescription a printable page with a QR code. pli verify needs no daemon; it "
        "accepts only signatures by keys this practice trusts (its own, its paired peers').",
    )
    folder = root / "export"
    folder.mkdir()
    pages = _export(say, practice, folder, ids)
    keyring = Keyring(tuple(known_keys(practice.home)), home=practice.home)
    for target in [folder / "ecg.pdf", *pages]:
        say.command(f"pli --home {practice.home} verify {target}")
        report = verify_path(target, keyring)
        signer = report.signer.name if report.signer else "?"
        say.detail(
            f"{target.name}: signature valid, signed by {report.signer_fingerprint} "
            f"({signer}, a paired peer), {report.kind} for {report.metadata.get('patient_name')}",
            file=target.name,
            valid=True,
        )
    _altered_copy_refused(say, folder, keyring)


def _export(say: Narrator, practice: Practice, folder: Path, ids: tuple[str, ...]) -> list[Path]:
    """``pli export`` of each document into ``folder``; the printable pages made."""
    from p2p.cli.export import export_document

    pages = []
    for doc_id in ids:
        say.command(f"pli --home {practice.home} export {doc_id[:12]} --to {folder}")
        done = export_document(practice.client, doc_id, folder)
        names = ", ".join(p.name for p in [*done.files, done.sidecar, *filter(None, [done.page])])
        say.detail(f"Exported {done.kind}: {names}", files=[p.name for p in done.files])
        if done.page is not None:
            pages.append(done.page)
    return pages


def _altered_copy_refused(say: Narrator, folder: Path, keyring: Keyring) -> None:
    """One bit changed in the exported ECG: ``pli verify`` must refuse it."""
    from p2p.documents.verify import verify_path

    copy = folder / "ecg-altered.pdf"
    data = bytearray((folder / "ecg.pdf").read_bytes())
    data[-40] ^= 1
    copy.write_bytes(bytes(data))
    sidecar = folder / "ecg-altered.pdf.pli.json"
    sidecar.write_text(
        (folder / "lettre.txt.pli.json")
        .read_text(encoding="utf-8")
        .replace('"saved_as": "ecg.pdf"', '"saved_as": "ecg-altered.pdf"'),
        encoding="utf-8",
    )
    try:
        verify_path(copy, keyring)
    except PliError as exc:
        say.detail(
            f"A copy of ecg.pdf with one bit changed is refused (exit {exc.exit_code}): "
            f"{exc.message}",
            file=copy.name,
            valid=False,
        )
    else:
        raise PliError("pli verify accepted an altered file: this is a bug.")


def reply(say: Narrator, root: Path, gp: Practice, cardio: Practice, letter_id: str) -> None:
    say.step(
        "The specialist answers",
        "Dr Benali replies; --in-reply-to threads the answer to Dr Martin's letter.",
    )
    answer = root / "documents" / "reponse.txt"
    answer.write_text(
        "Chère consœur,\n\nJ'ai vu Mme Dupont ce jour. ECG et examen rassurants ; "
        "Holter prescrit.\n\nBien confraternellement,\nDr Karim Benali\n",
        encoding="utf-8",
    )
    say.command(
        f'pli --home {cardio.home} send "Dr Claire Martin" {answer} '
        f'--subject "Re: Avis cardiologique" --in-reply-to {letter_id[:12]} --wait'
    )
    reply_id = _queue(
        cardio,
        gp,
        "letter",
        {
            "subject": "Re: Avis cardiologique",
            "in_reply_to": letter_id,
            "patient_name": "DUPONT Jeanne",
            "author_rpps": "10107654321",
        },
        [{"path": str(answer), "name": answer.name, "type": "text/plain; charset=utf-8"}],
    )

    def arrived() -> dict[str, Any] | None:
        return next((r for r in gp.client.get("/v1/inbox") if r["id"] == reply_id), None)

    row = wait_for(arrived, "the answer to arrive")
    say.detail(
        f"Dr Martin received {row['id'][:12]} from {row['from_name']}, in reply to "
        f"{row['metadata'].get('in_reply_to', '')[:12]} (her letter).",
        id=row["id"],
        in_reply_to=row["metadata"].get("in_reply_to"),
    )
