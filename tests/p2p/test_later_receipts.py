"""Integrated and read receipts between two real daemons: signed by B, shown by A.

B (the recipient) tells A (the sender) what became of a letter: the practice
software integrated it (``POST /v1/documents/{id}/integrated``), could not (902,
unknown patient), a person read it. Each is a receipt signed by B's key, sent
once and stored once; none is sent for a document from a revoked peer, none for
a layer the practice turned off.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from p2p.storage.later_receipts import LaterOut
from protocol import Receipt, Revocation, messages

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, send_file


async def letter_to(a: Running, b: Running, tmp_path: Path) -> str:
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(3000))
    doc_id = await send_file(a, b, letter, kind="letter", metadata={"subject": "Compte rendu"})
    await wait_for(lambda: delivered(a, doc_id))
    return doc_id


async def outbox_entry(a: Running, doc_id: str) -> dict[str, Any]:
    status, rows = await a.api("GET", "/v1/outbox")
    assert status == 200
    (entry,) = [row for row in rows if row["id"] == doc_id]
    assert isinstance(entry, dict)
    return entry


async def later(a: Running, doc_id: str, layer: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await outbox_entry(a, doc_id))[layer]
    return found


async def wait_later(a: Running, doc_id: str, layer: str, status: str | None = None) -> None:
    async def shown() -> bool:
        entry = await later(a, doc_id, layer)
        return entry is not None and (status is None or entry.get("status") == status)

    async with asyncio.timeout(20):
        while not await shown():
            await asyncio.sleep(0.05)


async def test_integrated_then_shown_by_the_sender(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id = await letter_to(a, b, tmp_path)
    assert await later(a, doc_id, "integrated") is None
    status, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated")
    assert status == 200, answer
    assert answer == {"id": doc_id, "status": "integrated", "receipt": "queued"}
    await wait_later(a, doc_id, "integrated")
    shown = await later(a, doc_id, "integrated")
    assert shown is not None
    assert shown["status"] == "integrated"
    assert shown["via"] == "direct"
    assert shown["code"] is None
    # The stored receipt is B's signature over "integrated" for this exact envelope.
    (stored,) = a.daemon.store.later_received(doc_id)
    (row,) = a.daemon.store.outbox(peer_id=b.daemon.me.peer_id.hex)
    receipt = Receipt.from_wire(stored.receipt)
    assert receipt.status == "integrated"
    receipt.verify(
        recipient=b.daemon.me.public,
        sender=a.daemon.me.public,
        document_id=bytes.fromhex(doc_id),
        envelope_digest=row.digest,
        now=int(time.time()),
    )
    # Acknowledged: B marks it sent and never signs that layer again.
    await wait_for(lambda: not b.daemon.store.later_unsent())
    (out,) = b.daemon.store.later_signed_for(doc_id)
    assert out.sent_via == "direct"
    status, again = await b.api("POST", f"/v1/documents/{doc_id[:8]}/integrated")
    assert again["receipt"] == "already"
    status, document = await a.api("GET", f"/v1/documents/{doc_id}")
    assert document["receipts"][0]["integrated"]["status"] == "integrated"
    status, receipts = await a.api("GET", f"/v1/documents/{doc_id}/receipts")
    assert sorted(r["status"] for r in receipts) == ["delivered", "integrated"]


async def test_not_integrated_with_a_code_then_integrated(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id = await letter_to(a, b, tmp_path)
    status, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated", {"error_code": 902})
    assert status == 200, answer
    assert answer["status"] == "not-integrated:902"
    assert answer["label"] == "Patient inconnu"
    await wait_later(a, doc_id, "integrated", "not-integrated")
    shown = await later(a, doc_id, "integrated")
    assert shown is not None
    assert (shown["code"], shown["label"], shown["label_en"]) == (
        902,
        "Patient inconnu",
        "Unknown patient",
    )
    # A second failure changes nothing; once the patient is created, it is integrated.
    _, again = await b.api("POST", f"/v1/documents/{doc_id}/integrated", {"error_code": 903})
    assert again["receipt"] == "already"
    _, fixed = await b.api("POST", f"/v1/documents/{doc_id}/integrated")
    assert fixed["receipt"] == "queued"
    await wait_later(a, doc_id, "integrated", "integrated")


async def test_bad_requests_are_refused_in_words(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id = await letter_to(a, b, tmp_path)
    status, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated", {"error_code": 123})
    assert status == 400
    assert "902 Patient inconnu" in answer["error"]["message"]
    status, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated", {"error_code": "x"})
    assert status == 400
    assert "error_code" in answer["error"]["message"]
    status, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated", {"code": 902})
    assert status == 400
    status, answer = await a.api("POST", f"/v1/documents/{doc_id}/integrated")
    assert status == 400  # A sent it: only the recipient can say it was integrated
    assert "received" in answer["error"]["message"]
    status, answer = await b.api("POST", "/v1/documents/ffffffffffff/integrated")
    assert status == 404
    assert not b.daemon.store.later_unsent()


async def test_read_receipts_only_when_the_practice_sends_them(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", receipts_read=True)
    c = await start_daemon(tmp_path / "c", "Dr Chloé Petit")  # the default: no read receipts
    await pair(a, b)
    await pair(a, c)
    try:
        to_b = await letter_to(a, b, tmp_path)
        to_c = await letter_to(a, c, tmp_path)
        _, opened = await b.api("POST", f"/v1/documents/{to_b}/read")
        assert opened["receipt"] == "queued"
        await wait_later(a, to_b, "read")
        _, opened = await c.api("POST", f"/v1/documents/{to_c}/read")
        assert opened["receipt"] == "off"
        _, exported = await c.api("POST", f"/v1/documents/{to_c}/exported")
        assert exported["read_receipt"] == "off"
        assert not c.daemon.store.later_signed_for(to_c)  # nothing signed, nothing queued
        # C still sends integrated receipts (on by default): they arrive, read does not.
        await c.api("POST", f"/v1/documents/{to_c}/integrated")
        await wait_later(a, to_c, "integrated")
        assert await later(a, to_c, "read") is None
        # An export at B is a read too; the layer is held already: nothing new.
        _, exported = await b.api("POST", f"/v1/documents/{to_b}/exported")
        assert exported["read_receipt"] == "already"
        assert len(a.daemon.store.later_received(to_b)) == 1
    finally:
        for running in (a, b, c):
            await running.stop()


async def test_a_revoked_sender_gets_nothing(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", receipts_read=True)
    await pair(a, b)
    try:
        first = await letter_to(a, b, tmp_path)
        second = await letter_to(a, b, tmp_path)
        # A read receipt waits, signed, while A is away; then A's key is revoked.
        await a.stop()
        _, queued = await b.api("POST", f"/v1/documents/{first}/read")
        assert queued["receipt"] == "queued"
        revocation = Revocation.issue(a.daemon.me.identity, now=int(time.time()))
        assert await b.daemon.revocations.learn(revocation, source="local", gossip=False)
        # Nothing new is signed for A's documents ...
        _, refused = await b.api("POST", f"/v1/documents/{second}/integrated")
        assert refused["receipt"] == "not-paired"
        assert not b.daemon.store.later_signed_for(second)
        # ... and what waited is dropped at the next round, never sent.
        b.daemon.receipts.wake()
        await wait_for(lambda: not b.daemon.store.later_signed_for(first))
    finally:
        await b.stop()


async def test_a_receipt_waits_for_a_sender_away_and_survives_a_restart(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    doc_id = await letter_to(a, b, tmp_path)
    await a.stop()
    _, answer = await b.api("POST", f"/v1/documents/{doc_id}/integrated")
    assert answer["receipt"] == "queued"
    await b.stop()  # the signed receipt is on disk, unsent
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin", port=a.port)
    try:
        b.daemon.receipts.wake()
        await wait_later(a, doc_id, "integrated")
        await wait_for(lambda: not b.daemon.store.later_unsent())
        assert len(a.daemon.store.later_received(doc_id)) == 1
    finally:
        await a.stop()
        await b.stop()


async def test_forged_replayed_and_foreign_later_receipts_are_refused(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    """What a paired peer's session may send about documents: only its own, signed, once."""
    a, b = two
    doc_id = await letter_to(a, b, tmp_path)
    (row,) = a.daemon.store.outbox(peer_id=b.daemon.me.peer_id.hex)
    a_public, b_key = a.daemon.me.public, b.daemon.me.identity

    def signed(status: str, *, doc: str = doc_id, at: int | None = None) -> bytes:
        return Receipt.create(
            b_key,
            document_id=bytes.fromhex(doc),
            envelope_digest=row.digest,
            sender=a_public,
            status=status,
            now=at or int(time.time()),
        ).to_wire()

    channel = await b.daemon.dialler.connect(a.daemon.me.peer_id.hex)
    first = signed("read", at=int(time.time()) - 5)
    forged = bytearray(signed("integrated"))
    forged[-1] ^= 1
    for wire, doc in (
        (signed("delivered"), doc_id),  # a delivery receipt is not a later layer
        (bytes(forged), doc_id),  # bad signature
        (signed("read", doc="00" * 16), "00" * 16),  # a document A never sent
        (first, doc_id),  # the first read: stored
        (signed("read"), doc_id),  # another read receipt: a replay
    ):
        await channel.send(messages.LaterReceipt(bytes.fromhex(doc), wire))
    await wait_for(lambda: bool(a.daemon.store.later_received(doc_id)))
    await asyncio.sleep(0.3)  # let the refusals behind it arrive too
    (stored,) = a.daemon.store.later_received(doc_id)
    assert stored.receipt == first
    assert not b.daemon.store.later_unsent()


def test_later_out_rows_are_signed_once(tmp_path: Path) -> None:
    """The store keeps one receipt per layer; only a failure may be replaced, by a success."""
    from p2p.storage.store import Store

    store = Store(tmp_path / "pli.db")
    doc, peer = "ab" * 16, "cd" * 32

    def row(status: str, layer: str = "integrated") -> LaterOut:
        return LaterOut(doc, peer, layer, status, status.encode(), 1)

    assert store.later_signed(row("not-integrated:902"))
    assert not store.later_signed(row("not-integrated:903"))
    assert store.later_signed(row("integrated"))
    assert not store.later_signed(row("integrated"))
    assert not store.later_signed(row("not-integrated:902"))
    assert not store.later_sent(doc, peer, "not-integrated:902", "direct", 2)  # acks the old one
    assert store.later_sent(doc, peer, "integrated", "direct", 2)
    assert store.later_signed(row("read", "read"))
    assert [r.status for r in store.later_unsent()] == ["read"]
    store.close()
