"""Daemon-level defences: altered envelope bytes, duplicates, lost connections."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from p2p.net.transport import ChannelClosed
from p2p.services.outbox import Attachment, Outbox, Recipient
from p2p.storage.files import Layout
from p2p.storage.store import Store
from protocol import LocalIdentity

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, fetch, send_file


async def test_envelope_altered_in_transit_is_refused_then_delivered_intact(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(3 * 1024 * 1024))
    b.daemon.stop()  # hold delivery while we alter the sender's stored envelope
    await b.task
    doc_id = await send_file(a, b, scan)
    stored = a.daemon.layout.sent_envelope(doc_id)
    original = stored.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01  # what an active attacker on the path would do
    stored.write_bytes(bytes(altered))

    b2 = await start_daemon(b.home, "Dr Bob Durand", port=b.port)  # B is back, same port
    try:
        await wait_for(
            lambda: any(r.attempts > 0 and r.last_error for r in a.daemon.store.outbox())
        )
        assert not delivered(a, doc_id)
        assert b2.daemon.store.inbox() == []
        assert list(b2.daemon.layout.quarantine.iterdir()) == []  # nothing kept
        stored.write_bytes(original)  # the path is clean again
        await wait_for(lambda: delivered(a, doc_id), timeout=20)
        assert await fetch(b2, doc_id) == scan.read_bytes()
    finally:
        await b2.stop()


async def test_duplicate_offer_gets_the_stored_receipt(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    doc_id = await send_file(a, b, letter)
    await wait_for(lambda: delivered(a, doc_id))
    (first,) = [r.receipt for r in a.daemon.store.outbox() if r.doc_id == doc_id]
    # The sender lost the receipt (say its disk was restored from a backup): it offers again.
    with a.daemon.store._lock:
        a.daemon.store._db.execute("UPDATE outbox SET state='queued', receipt=NULL")
    a.daemon.outbox.wake(b.daemon.me.peer_id.hex)
    await wait_for(lambda: delivered(a, doc_id))
    (second,) = [r.receipt for r in a.daemon.store.outbox() if r.doc_id == doc_id]
    assert second == first
    assert [row.doc_id for row in b.daemon.store.inbox()] == [doc_id]


class _CutLink:
    """A connection that is cut as soon as anything is sent on it."""

    closed = False

    async def send(self, message: object) -> None:
        raise ChannelClosed("connection reset by peer")

    async def send_bulk(self, frame: bytearray | bytes) -> None:
        raise ChannelClosed("connection reset by peer")


async def test_connection_lost_while_sending_backs_off(tmp_path: Path) -> None:
    me, peer = LocalIdentity.generate(now=0), LocalIdentity.generate(now=0)
    store = await asyncio.to_thread(Store, tmp_path / "pli.db")
    layout = Layout(tmp_path)
    await asyncio.to_thread(layout.create)
    dials = 0

    async def connect(peer_hex: str) -> _CutLink:
        nonlocal dials
        dials += 1
        return _CutLink()

    outbox = Outbox(store, layout, me, connect, retry_min=0.5, retry_max=5)
    letter = tmp_path / "lettre.txt"
    letter.write_text("x")
    recipient = Recipient(peer.peer_id.hex, peer.card(1, name="Dr B"))
    await outbox.queue([recipient], "letter", {}, [Attachment("lettre.txt", letter)])
    runner = asyncio.create_task(outbox.run())
    try:
        await wait_for(lambda: any(r.attempts >= 1 for r in store.outbox()), timeout=5)
        await asyncio.sleep(0.2)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    (row,) = store.outbox()
    assert row.state == "queued"
    assert row.next_attempt > time.time()  # backed off, not retried in a tight loop
    assert dials <= 2
    store.close()


async def test_a_refused_document_does_not_hold_back_the_next(tmp_path: Path) -> None:
    # Long backoffs: a letter caught in another document's backoff would wait seconds.
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin", retry_min=5.0, retry_max=30.0)
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    b.daemon.stop()
    await b.task
    bad, good = tmp_path / "scan.bin", tmp_path / "lettre.txt"
    bad.write_bytes(os.urandom(200_000))
    good.write_text("Cher confrère,\n")
    refused = await send_file(a, b, bad)
    stored = a.daemon.layout.sent_envelope(refused)
    altered = bytearray(stored.read_bytes())
    altered[len(altered) // 2] ^= 0x01
    stored.write_bytes(bytes(altered))
    letter = await send_file(a, b, good, kind="letter")
    b2 = await start_daemon(b.home, "Dr Bob Durand", port=b.port)
    try:
        a.daemon.outbox.wake(b.daemon.me.peer_id.hex)  # B is back (discovery would say so)
        await wait_for(lambda: delivered(a, letter), timeout=2)
        assert not delivered(a, refused)
        (row,) = [r for r in a.daemon.store.outbox() if r.doc_id == refused]
        assert row.state == "queued"
        assert row.next_attempt > time.time()
    finally:
        await b2.stop()
        await a.stop()
