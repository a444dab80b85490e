"""The watched folders between two real daemons on loopback (issue 13 §1, §4).

A document dropped in A's outbox folder (written to ``.part`` then renamed, with
its JSON sidecar; or an HPRIM file; or an XDM zip) reaches B's inbox folder as its
file plus HPRIM, XDM and FHIR; A's copy moves to ``sent/`` with its state; what
cannot be sent moves to ``errors/`` with a French-first ``.error.txt``; taking the
files out of B's folder counts the document as integrated. Durability: a claim
left by a crash before or after the outbox commit is queued exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from p2p.documents import xdm, xdm_import
from p2p.services.folders import outgoing
from p2p.services.folders.outgoing import Claim, Unit
from protocol import Receipt
from tests.documents.sample import LETTER, read_part

from .conftest import Running, pair, start_daemon, wait_for

INS = "255081416802538"
SIDECAR = {
    "colleague": "Dr Bob Durand",
    "subject": "Adressage en cardiologie",
    "patient": {"name": "DUPONT, Marie Claire", "birthdate": "1955-08-14", "sex": "F", "ins": INS},
}


def folders(tmp: Path, **more: Any) -> dict[str, Any]:
    return {"stable_seconds": 0, "poll_seconds": 0.05, **more}


@dataclass(frozen=True)
class Linked:
    """A (outbox folder ``out``) paired with B (inbox folder ``inbox``)."""

    a: Running
    b: Running
    out: Path
    inbox: Path


@pytest.fixture
async def linked(tmp_path: Path) -> Any:
    a = await start_daemon(
        tmp_path / "a", "Dr Alice Martin", folders=folders(tmp_path, outbox=str(tmp_path / "out"))
    )
    b = await start_daemon(
        tmp_path / "b",
        "Dr Bob Durand",
        folders=folders(
            tmp_path, inbox=str(tmp_path / "in"), inbox_formats=["hprim", "xdm", "fhir"]
        ),
    )
    await pair(a, b)
    yield Linked(a, b, tmp_path / "out", tmp_path / "in")
    await a.stop()
    await b.stop()


def drop(folder: Path, name: str, data: bytes, sidecar: dict[str, Any] | None = None) -> None:
    """As the practice software does: write to .part, then rename (the sidecar first)."""
    if sidecar is not None:
        (folder / f"{name}.json.part").write_text(json.dumps(sidecar), encoding="utf-8")
        (folder / f"{name}.json.part").rename(folder / f"{name}.json")
    (folder / f"{name}.part").write_bytes(data)
    (folder / f"{name}.part").rename(folder / name)


def read_xdm(path: Path) -> xdm_import.XdmDocument:
    with open(path, "rb") as handle:
        archive, document = xdm_import.read(handle)
        archive.close()
    return document


def described(running: Running) -> Any:
    """The description of the one document ``running`` received (blocking)."""
    row = running.daemon.store.inbox()[0]
    path = running.daemon.layout.received_envelope(row.sender, row.doc_id)
    return running.daemon.archive.describe(path)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


async def until_listed(folder: Path, count: int) -> list[str]:
    await wait_for(lambda: len(listing(folder)) >= count)
    return listing(folder)


async def test_a_dropped_letter_arrives_in_every_format(linked: Linked) -> None:
    from fhir.resources.R4B.bundle import Bundle

    a, b, out, inbox = linked.a, linked.b, linked.out, linked.inbox
    text = "Cher confrère,\nJe vous adresse Mme DUPONT.\n".encode()
    await asyncio.to_thread(drop, out, "lettre.txt", text, SIDECAR)
    names = await until_listed(inbox, 4)
    base = names[0][: len("20251202-DUPONT-01234567")]
    assert base.split("-")[1] == "DUPONT"
    assert sorted(name.removeprefix(base) for name in names) == [
        "-lettre.txt",
        ".fhir.json",
        ".hpr",
        ".xdm.zip",
    ]
    by_kind = {name.split(".", 1)[1]: inbox / name for name in names}  # txt, hpr ...
    assert by_kind["txt"].read_bytes() == text
    header = by_kind["hpr"].read_bytes().decode("cp1252").split("\r\n")
    assert header[1:3] == ["DUPONT", "Marie Claire"]
    assert header[6:8] == ["14/08/1955", INS]
    assert header[10].startswith("Dr Alice Martin")
    assert header[11].startswith("Dr Bob Durand")
    document = await asyncio.to_thread(read_xdm, by_kind["xdm.zip"])
    assert document.metadata["patient_ins"] == INS
    assert document.parts[0].sha1 == hashlib.sha1(text, usedforsecurity=False).hexdigest()
    assert document.parts[0].size == len(text)
    Bundle.model_validate_json(by_kind["fhir.json"].read_bytes())
    sent = await until_listed(out / "sent", 3)
    assert sent == ["lettre.txt", "lettre.txt.json", "lettre.txt.pli.json"]
    state = json.loads((out / "sent" / "lettre.txt.pli.json").read_text(encoding="utf-8"))
    assert state["colleague"] == "Dr Bob Durand"
    await wait_for(lambda: a.daemon.store.outbox()[0].state == "delivered")
    state_file = out / "sent" / "lettre.txt.pli.json"
    await wait_for(lambda: '"delivered"' in state_file.read_text(encoding="utf-8"))
    settled = json.loads(state_file.read_text(encoding="utf-8"))
    assert settled["document"] == a.daemon.store.outbox()[0].doc_id
    assert settled["receipt_time"] == a.daemon.store.outbox()[0].receipt_time
    assert listing(out) == ["errors", "sent"]
    for name in names:  # the practice software takes them
        (inbox / name).unlink()
    service = b.daemon.folders
    assert service is not None
    await wait_for(lambda: service.counts.integrated == 1)
    (row,) = a.daemon.store.outbox()
    await wait_for(lambda: a.daemon.store.later_received(row.doc_id) != [])
    (later,) = a.daemon.store.later_received(row.doc_id)
    assert Receipt.from_wire(later.receipt).status == "integrated"  # signed by B, shown to A


async def test_hprim_file_names_its_recipient(linked: Linked) -> None:
    b, out, inbox = linked.b, linked.out, linked.inbox
    header = ["Avis", "DUPONT", "Marie", "", "", "", "14/08/1955", INS, "", "02/12/2025"]
    lines = [*header, "Dr Alice Martin", "Dr Bob Durand", "Texte du courrier.", "****FIN****"]
    await asyncio.to_thread(drop, out, "avis.hpr", "\r\n".join(lines).encode("cp1252"))
    names = await until_listed(inbox, 4)
    hpr = [n for n in names if n.endswith("-avis.hpr")]
    assert hpr, names
    assert (inbox / hpr[0]).read_bytes() == "\r\n".join(lines).encode("cp1252")
    meta = await asyncio.to_thread(described, b)
    assert meta.metadata["patient_ins"] == INS
    assert meta.metadata["subject"] == "Avis"


async def test_xdm_zip_sends_its_documents(linked: Linked) -> None:
    b, out, inbox = linked.b, linked.out, linked.inbox
    zipped = io.BytesIO()
    xdm.write(LETTER, lambda index: io.BytesIO(read_part(index)), zipped)
    await asyncio.to_thread(
        drop, out, "IHE_XDM.zip", zipped.getvalue(), {"colleague": "Dr Bob Durand"}
    )
    await until_listed(inbox, 5)
    meta = await asyncio.to_thread(described, b)
    assert [f.name for f in meta.files] == ["DOC0001.TXT", "DOC0002.PDF"]
    assert meta.metadata["patient_family_name"] == "DUPONT"
    assert meta.metadata["subject"] == "Adressage en cardiologie"


@pytest.mark.parametrize(
    ("sidecar", "french"),
    [
        ({**SIDECAR, "colleague": "Dr Nobody"}, "destinataire inconnu"),
        (
            {**SIDECAR, "patient": {"name": "DUPONT, Marie", "ins": "255081416802539"}},
            "INS invalide",
        ),
        ({**SIDECAR, "kind": "fax"}, "type de document « fax » inconnu"),
        ({**SIDECAR, "colour": "red"}, "fiche .json incorrecte"),
    ],
)
async def test_refused_documents_go_to_errors_in_words(
    linked: Linked, sidecar: dict[str, Any], french: str
) -> None:
    a, out = linked.a, linked.out
    await asyncio.to_thread(drop, out, "lettre.pdf", b"%PDF-1.4\n", sidecar)
    errors = await until_listed(out / "errors", 3)
    assert errors == ["lettre.pdf", "lettre.pdf.error.txt", "lettre.pdf.json"]
    words = (out / "errors" / "lettre.pdf.error.txt").read_text(encoding="utf-8")
    assert words.startswith("pli n'a pas envoyé « lettre.pdf » : ")
    assert french in words.splitlines()[0]
    assert "Que faire : " in words
    assert "pli did not send “lettre.pdf”" in words
    assert a.daemon.store.outbox() == []


async def test_a_document_without_sidecar_waits_then_is_refused(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = linked.out
    monkeypatch.setattr(outgoing, "SIDECAR_WAIT", 0.3)
    await asyncio.to_thread(drop, out, "scan.pdf", b"%PDF-1.4\n")
    errors = await until_listed(out / "errors", 2)
    assert errors == ["scan.pdf", "scan.pdf.error.txt"]
    assert "aucune fiche .json" in (out / "errors" / "scan.pdf.error.txt").read_text(
        encoding="utf-8"
    )


async def test_a_broken_xdm_zip_is_refused(linked: Linked) -> None:
    out = linked.out
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../evil.sh", b"#!/bin/sh\n")
    await asyncio.to_thread(drop, out, "IHE_XDM.zip", evil.getvalue())
    await until_listed(out / "errors", 2)
    words = (out / "errors" / "IHE_XDM.zip.error.txt").read_text(encoding="utf-8")
    assert "archive IHE XDM refusée" in words
    assert "outside its folder" in words


def _claim(running: Running, out: Path, name: str) -> Claim:
    """A claim as the service writes it, for a file dropped in ``out`` (blocking)."""
    peer = running.daemon.store.peers()[0]
    folder = outgoing.OutboxFolder(out, 0)
    folder.create()
    (out / name).write_bytes(b"%PDF-1.4 claimed\n")
    doc_id = "ab" * 16
    claim = Claim(
        doc_id=doc_id,
        peer_id=peer.peer_id,
        colleague=peer.name,
        kind="letter",
        metadata={"subject": "Claimed"},
        originals=[name],
        attachments=[(name, str(folder.work / doc_id / name), "application/pdf")],
        xdm=False,
        claimed_at=1,
    )
    return folder.claim(Unit(out / name, None), claim)


@pytest.mark.parametrize("committed", [False, True])
async def test_a_claim_left_by_a_crash_is_queued_exactly_once(
    tmp_path: Path, committed: bool
) -> None:
    """kill -9 after the claim (before the outbox commit, or after it): one row, one letter."""
    out = tmp_path / "out"
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    first = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    await pair(first, b)
    claim = await asyncio.to_thread(_claim, first, out, "lettre.pdf")
    if committed:  # the crash came after the outbox commit, before the move to sent/
        await first.daemon.send(
            [claim.peer_id],
            "letter",
            claim.metadata,
            [_attachment(claim)],
            doc_id=claim.doc_id,
        )
    await first.stop()
    a = await start_daemon(
        tmp_path / "a", "Dr Alice Martin", folders=folders(tmp_path, outbox=str(out))
    )
    try:
        await wait_for(lambda: listing(out / "sent") == ["lettre.pdf", "lettre.pdf.pli.json"])
        rows = a.daemon.store.outbox()
        assert [(r.doc_id, r.peer_id) for r in rows] == [(claim.doc_id, claim.peer_id)]
        await wait_for(lambda: len(b.daemon.store.inbox()) == 1)
        await asyncio.sleep(0.3)
        assert len(b.daemon.store.inbox()) == 1
        assert listing(out / ".pli" / "claims") == []
    finally:
        await a.stop()
        await b.stop()


def _attachment(claim: Claim) -> Any:
    from p2p.services.outbox import Attachment

    name, path, media = claim.attachments[0]
    return Attachment(name, Path(path), media)
