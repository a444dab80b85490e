"""The pipelined paths: receipts outstanding, group commit, verification failing mid-stream."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, send_file


async def test_many_letters_queued_at_once_are_each_stored_once(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(10_000))
    ids = [await send_file(a, b, letter, kind="letter") for _ in range(40)]
    await wait_for(lambda: all(delivered(a, doc_id) for doc_id in ids), timeout=30)
    stored = [row.doc_id for row in b.daemon.store.inbox()]
    assert sorted(stored) == sorted(ids)
    received = b.daemon.layout.received
    assert len(list(received.iterdir())) == len(ids)
    assert list(b.daemon.layout.quarantine.iterdir()) == []


async def test_an_envelope_altered_on_the_way_is_refused_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    port = b.port
    await b.stop()
    try:
        big = tmp_path / "scan.bin"
        big.write_bytes(os.urandom(5 * 1024 * 1024))
        doc_id = await send_file(a, b, big, kind="file")
        # Flip one byte in the middle of the sender's stored envelope: the
        # receiver sees it several frames into the transfer, with frames queued.
        sent = a.daemon.layout.sent_envelope(doc_id)
        data = bytearray(sent.read_bytes())
        data[len(data) // 2] ^= 0x01
        sent.write_bytes(bytes(data))
        b = await start_daemon(tmp_path / "b", "Dr Bob Durand", port=port)
        a.daemon.outbox.wake(b.daemon.me.peer_id.hex)

        def refused() -> bool:
            row = a.daemon.store.outbox_entry(doc_id, b.daemon.me.peer_id.hex)
            return row is not None and "verification" in (row.last_error or "")

        await wait_for(refused, timeout=20)
        assert not delivered(a, doc_id)
        assert b.daemon.store.inbox() == []
        assert list(b.daemon.layout.received.iterdir()) == []
        await wait_for(lambda: list(b.daemon.layout.quarantine.iterdir()) == [], timeout=5)
    finally:
        await a.stop()
        await b.stop()
