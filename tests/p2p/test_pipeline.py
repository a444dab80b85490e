"""The pipelined paths: receipts outstanding, group commit, verification failing mid-stream."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from p2p.errors import StorageError
from p2p.services.outbox import Attachment, Recipient
from protocol import ProfileCard

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


def _queue(a: Running, b: Running) -> Callable[[Path], Awaitable[str]]:
    """``Outbox.queue`` of one file for B, as the daemon calls it (after its checks)."""
    row = a.daemon.peers.find(b.daemon.me.peer_id.hex)
    recipients = [Recipient(row.peer_id, ProfileCard.from_wire(row.card))]

    def queue(path: Path) -> Awaitable[str]:
        return a.daemon.outbox.queue(recipients, "letter", {}, [Attachment(path.name, path)])

    return queue


async def test_a_letter_that_cannot_be_sealed_fails_alone_in_its_group(
    two: tuple[Running, Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(10_000))
    gone = tmp_path / "effacee.txt"  # deleted after the daemon's checks, say
    queue = _queue(a, b)
    with caplog.at_level(logging.INFO, logger="pli.outbox"):
        results = await asyncio.gather(
            *(queue(path) for path in (letter, letter, gone, letter)), return_exceptions=True
        )
    assert isinstance(results[2], FileNotFoundError)
    ids = [result for result in results if isinstance(result, str)]
    assert len(ids) == 3
    assert "queued 3 document(s)" in caplog.text  # one group, one commit, the others in it
    await wait_for(lambda: all(delivered(a, doc_id) for doc_id in ids), timeout=30)
    assert sorted(row.doc_id for row in b.daemon.store.inbox()) == sorted(ids)
    sent = a.daemon.layout.sent
    assert sorted(p.name for p in sent.iterdir()) == sorted(f"{doc_id}.pli" for doc_id in ids)


async def test_a_group_whose_commit_fails_queues_none_and_leaves_no_envelope(
    two: tuple[Running, Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(10_000))
    scan = tmp_path / "scanner.bin"  # not a letter: sealed apart, then in the next group
    scan.write_bytes(os.urandom(300_000))

    def disk_full(rows: object) -> None:
        raise StorageError("Could not record the document: the disk is full.")

    monkeypatch.setattr(a.daemon.store, "queue_many", disk_full)
    queue = _queue(a, b)
    results = await asyncio.gather(
        *(queue(path) for path in (letter, scan, letter)), return_exceptions=True
    )
    assert all(isinstance(result, StorageError) for result in results), results
    assert list(a.daemon.layout.sent.iterdir()) == []
    assert a.daemon.store.outbox() == []
    monkeypatch.undo()
    doc_id = await queue(letter)
    await wait_for(lambda: delivered(a, doc_id), timeout=30)


async def test_a_burst_is_scheduled_from_memory_not_by_asking_the_store_each_time(
    two: tuple[Running, Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is due was read once at start: a burst does not re-read every queued row per
    letter (each wake, each pass), and each letter is offered once."""
    a, b = two
    store = a.daemon.store
    reads: list[str] = []
    for name in ("due_peers", "due"):
        original = getattr(store, name)

        def counted(*args: object, name: str = name, original: Any = original) -> Any:
            reads.append(name)
            return original(*args)

        monkeypatch.setattr(store, name, counted)
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(10_000))
    queue = _queue(a, b)
    ids = await asyncio.gather(*(queue(letter) for _ in range(60)))
    await wait_for(lambda: all(delivered(a, doc_id) for doc_id in ids), timeout=30)
    assert "due_peers" not in reads
    assert reads.count("due") <= 3  # once per sender started (the first letters start one)
    assert sorted(row.doc_id for row in b.daemon.store.inbox()) == sorted(ids)
