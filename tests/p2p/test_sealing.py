"""Sending while sealing (services/outbox/sealing.py): the transfer starts before the envelope
is durable, and the recipient cannot complete it until the sender has committed it."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2p.events import Link
from p2p.services.outbox.sealing import BULK_PAYLOAD, CACHE_BEHIND, Sealing
from p2p.storage.store import Store
from protocol import PublicIdentity, messages

from .conftest import Running, wait_for
from .test_exchange import delivered, fetch, send_file


@contextmanager
def commits_held(store: Store) -> Iterator[None]:
    """Keep ``store`` from committing (its write lock held by another thread) until exit:
    a slow disk at the worst moment, when the envelope is written but not yet queued."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lock:
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join()


async def connected(a: Running, b: Running, tmp_path: Path) -> None:
    """A first letter delivered: the connection is up and A has nothing else to commit."""
    letter = tmp_path / "premier.txt"
    letter.write_text("Bonjour.\n")
    doc_id = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, doc_id))


def partial_size(recipient: Running) -> int:
    return sum(p.stat().st_size for p in (recipient.home / "quarantine").glob("*.part"))


async def test_bytes_travel_before_the_commit_and_the_last_waits_for_it(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    scan = tmp_path / "scanner.bin"
    scan.write_bytes(os.urandom(6 * 1024 * 1024 + 12345))
    await connected(a, b, tmp_path)
    with commits_held(a.daemon.store):
        posting = asyncio.create_task(send_file(a, b, scan))
        sent = a.home / "documents" / "sent"
        before = set(sent.glob("*.pli"))
        await wait_for(lambda: set(sent.glob("*.pli")) > before, timeout=20)  # written, renamed
        (envelope,) = set(sent.glob("*.pli")) - before
        envelope_size = envelope.stat().st_size
        held_back = (envelope_size - 1) // BULK_PAYLOAD * BULK_PAYLOAD
        await wait_for(lambda: partial_size(b) >= held_back, timeout=20)
        await asyncio.sleep(0.3)  # whatever else would arrive has had time to
        assert partial_size(b) == held_back  # every full frame but the last one
        assert not posting.done()  # "queued" only once durable
        assert [row.state for row in a.daemon.store.outbox()] == ["delivered"]
        assert len(b.daemon.store.inbox()) == 1
    doc_id = await posting
    await wait_for(lambda: delivered(a, doc_id))
    assert await fetch(b, doc_id) == scan.read_bytes()


async def test_a_letter_is_pushed_only_once_its_row_is_committed(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    # A letter is pushed whole (Offer.push, tests/p2p/test_push.py): it waits for
    # durable instead of streaming while sealed, so nothing of it travels before.
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère, je vous adresse Mme D.\n")
    offers: list[messages.Offer] = []
    on_offer = b.daemon.inbox.on_offer

    async def noting(channel: Link, sender: PublicIdentity, offer: messages.Offer) -> None:
        offers.append(offer)
        await on_offer(channel, sender, offer)

    await connected(a, b, tmp_path)
    b.daemon.inbox.on_offer = noting  # type: ignore[method-assign]
    with commits_held(a.daemon.store):
        posting = asyncio.create_task(send_file(a, b, letter, kind="letter"))
        sent = a.home / "documents" / "sent"
        await wait_for(lambda: len(list(sent.glob("*.pli"))) == 2, timeout=20)  # sealed
        await asyncio.sleep(0.3)  # whatever else would travel has had time to
        assert not posting.done()  # "queued" only once durable
        assert offers == []
        assert len(b.daemon.store.inbox()) == 1
    doc_id = await posting
    await wait_for(lambda: delivered(a, doc_id))
    assert [offer.push for offer in offers] == [True]
    assert await fetch(b, doc_id) == letter.read_bytes()


async def test_a_file_that_shrinks_while_sealed_queues_nothing_and_the_next_one_goes(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    await connected(a, b, tmp_path)
    scan = tmp_path / "scanner.bin"
    scan.write_bytes(os.urandom(64 * 1024 * 1024))
    sent = a.home / "documents" / "sent"

    def shrink_once_sealing() -> None:
        # A scanner rewriting its file while pli reads it: the seal finds it too short.
        for _ in range(5000):
            if any(p.stat().st_size > 1024 * 1024 for p in sent.glob(".*.tmp")):
                break
            threading.Event().wait(0.001)
        with open(scan, "r+b") as handle:
            handle.truncate(16 * 1024 * 1024)

    shrinker = threading.Thread(target=shrink_once_sealing)
    shrinker.start()
    try:
        status, body = await a.api(
            "POST",
            "/v1/documents",
            {"to": [b.daemon.me.peer_id.hex], "files": [{"path": str(scan)}]},
        )
    finally:
        await asyncio.to_thread(shrinker.join)
    assert status == 400, body
    assert "changed while" in body["error"]["message"]
    assert [row.state for row in a.daemon.store.outbox()] == ["delivered"]  # the first only
    assert not list(sent.glob(".*.tmp"))
    letter = tmp_path / "lettre.txt"
    letter.write_text("Compte rendu.\n")
    doc_id = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, doc_id))
    assert doc_id in [row.doc_id for row in b.daemon.store.inbox()]
    assert len(b.daemon.store.inbox()) == 2


async def test_envelopes_a_crash_left_unqueued_are_swept_at_start(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    await connected(a, b, tmp_path)
    sent = a.home / "documents" / "sent"
    (kept,) = list(sent.glob("*.pli"))  # queued and delivered: stays
    orphan, sealing_now = sent / f"{'ab' * 16}.pli", sent / f"{'cd' * 16}.pli"
    for path in (orphan, sealing_now):
        path.write_bytes(os.urandom(1000))
    os.utime(orphan, (1_700_000_000, 1_700_000_000))  # from before this daemon started
    assert await asyncio.to_thread(a.daemon.outbox.sweep) == 1
    assert sorted(sent.glob("*.pli")) == sorted([kept, sealing_now])


async def test_the_sealed_bytes_stay_cached_until_every_sender_has_streamed_them(
    tmp_path: Path,
) -> None:
    sealing = Sealing("00" * 16, ["bruno", "chloe"], tmp_path / "envelope.pli")
    mib = 1024 * 1024
    assert sealing.droppable(10 * mib) == 0  # no sender yet: the start stays for them
    assert sealing.droppable(CACHE_BEHIND + 10 * mib) == 10 * mib
    bruno, chloe = object(), object()
    sealing.reading(bruno, 5 * mib)
    sealing.reading(chloe, 3 * mib)
    assert sealing.droppable(10 * mib) == 3 * mib  # the slower sender's position
    sealing.reading(chloe, None)
    assert sealing.droppable(10 * mib) == 5 * mib
    sealing.reading(bruno, None)
    assert sealing.droppable(CACHE_BEHIND + mib) == mib
