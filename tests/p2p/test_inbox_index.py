"""The inbox is listed from its sealed index: no envelope is read, no patient data in clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Running, wait_for
from .test_exchange import delivered, send_file

PATIENT = "Jeanne Dupont-Lefèvre"


async def send_letter(a: Running, b: Running, tmp_path: Path, subject: str) -> str:
    letter = tmp_path / f"{subject}.txt"
    letter.write_text("Cher confrère,\n")
    metadata = {"subject": subject, "patient_name": PATIENT, "patient_birthdate": "1950-02-03"}
    doc_id = await send_file(a, b, letter, metadata=metadata)
    await wait_for(lambda: delivered(a, doc_id))
    return doc_id


def listed(inbox: list[dict[str, Any]]) -> dict[str, Any]:
    return {entry["id"]: entry["metadata"] for entry in inbox}


async def test_listing_does_not_open_the_envelopes(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id = await send_letter(a, b, tmp_path, "Avis cardiologique")
    envelope = b.daemon.layout.received_envelope(a.daemon.me.peer_id.hex, doc_id)
    moved = envelope.rename(tmp_path / "away.pli")  # the listing must not need it
    status, inbox = await b.api("GET", "/v1/inbox")
    moved.rename(envelope)
    assert status == 200, inbox
    (entry,) = inbox
    assert entry["metadata"]["patient_name"] == PATIENT
    assert entry["kind"] == "letter"
    assert entry["files"][0]["name"] == "Avis cardiologique.txt"


async def test_no_patient_data_in_clear_in_the_database(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    await send_letter(a, b, tmp_path, "Avis cardiologique")
    for name in ("pli.db", "pli.db-wal"):
        path = b.home / name
        if path.exists():
            data = path.read_bytes()
            assert PATIENT.encode() not in data
            assert b"Avis cardiologique" not in data


async def test_swapped_or_damaged_index_rows_are_not_believed(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    first = await send_letter(a, b, tmp_path, "Premier")
    second = await send_letter(a, b, tmp_path, "Second")
    store = b.daemon.store
    with store._lock:  # someone who can write pli.db swaps two sealed rows and damages one
        rows = dict(store._db.execute("SELECT doc_id, sealed FROM inbox_index").fetchall())
        store._db.execute("UPDATE inbox_index SET sealed=? WHERE doc_id=?", (rows[second], first))
        store._db.execute("UPDATE inbox_index SET sealed=? WHERE doc_id=?", (b"x" * 60, second))
    _status, inbox = await b.api("GET", "/v1/inbox")
    subjects = {doc: meta["subject"] for doc, meta in listed(inbox).items()}
    assert subjects == {first: "Premier", second: "Second"}  # read again from the envelopes
    _status, again = await b.api("GET", "/v1/inbox")
    assert listed(again) == listed(inbox)  # and the index rows were written again


async def test_clear_columns_and_names_cannot_break_the_listing(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id = await send_letter(a, b, tmp_path, "Avis cardiologique")
    store = b.daemon.store
    sender = a.daemon.me.peer_id.hex
    forged = '1,"metadata":{"patient_name":"Quelqu\'un d\'autre"}'
    with store._lock:  # someone who can write pli.db puts JSON where numbers and names go
        store._db.execute(
            "UPDATE inbox SET exported_at=?, size=? WHERE doc_id=?", (forged, forged, doc_id)
        )
        store._db.execute("UPDATE peers SET name=? WHERE peer_id=?", ('Dr "X"}, {"id":1', sender))
    status, inbox = await b.api("GET", "/v1/inbox")
    assert status == 200, inbox
    (entry,) = inbox  # still one entry, its sealed metadata untouched
    assert entry["metadata"]["patient_name"] == PATIENT
    assert entry["from_name"] == 'Dr "X"}, {"id":1'
    assert isinstance(entry["size"], int)
    assert isinstance(entry["exported_at"], int)
