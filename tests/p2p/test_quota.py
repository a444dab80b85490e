"""What a paired peer may make a practice store: quota, rate, disk reserve, expiry.

Real daemons on loopback. Each refusal reaches the sender as a code that its
outbox shows in pli's own words, and the receiver's ``pli status`` counts it.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from p2p.services.outbox import REFUSALS
from p2p.storage.quota import DISK_FULL, QUOTA_FULL, RATE_LIMITED, Limits, Quota
from p2p.storage.store import OutboxRow

from .clirun import run
from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, send_file

#: More MiB than any disk this test runs on has free (about a petabyte).
HUGE_RESERVE_MIB = 1024**3


def row(a: Running, doc_id: str) -> OutboxRow:
    (found,) = [r for r in a.daemon.store.outbox() if r.doc_id == doc_id]
    return found


async def start_pair(tmp_path: Path, **b_settings: int) -> tuple[Running, Running]:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", **b_settings)
    await pair(a, b)
    return a, b


async def test_disk_reserve_refuses_at_offer_in_pli_words(tmp_path: Path) -> None:
    a, b = await start_pair(tmp_path, disk_reserve_mib=HUGE_RESERVE_MIB)
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    try:
        doc_id = await send_file(a, b, letter)
        await wait_for(lambda: row(a, doc_id).last_error is not None)
        assert row(a, doc_id).state == "queued"  # offered again later, not lost
        assert row(a, doc_id).last_error == REFUSALS[DISK_FULL]
        assert b.daemon.store.inbox() == []
        status, info = await b.api("GET", "/v1/status")
        assert status == 200
        assert info["refusals"]["by_code"] == {DISK_FULL: info["refusals"]["total"]}
        assert info["refusals"]["last_peer_name"] == "Dr Alice Martin"
        assert info["disk"]["reserve"] == HUGE_RESERVE_MIB * 1024 * 1024
        shown = await asyncio.to_thread(run, "--home", b.home, "status")
        assert "Refused" in shown.output
        assert "disk nearly full" in shown.output
        assert "from Dr Alice Martin" in shown.output
        await b.stop()
        b = await start_daemon(b.home, "Dr Bob Durand", port=b.port)  # space again
        a.daemon.outbox.wake(b.daemon.me.peer_id.hex)
        await wait_for(lambda: delivered(a, doc_id), timeout=10)
    finally:
        await a.stop()
        await b.stop()


async def test_peer_quota_counts_stored_and_partial_bytes(tmp_path: Path) -> None:
    a, b = await start_pair(tmp_path, peer_quota_mib=1)
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(400_000))
    try:
        first = await send_file(a, b, scan)
        await wait_for(lambda: delivered(a, first))
        # An abandoned 500 kB transfer from Alice waits in quarantine: it counts too.
        partial = b.daemon.layout.partial(a.daemon.me.peer_id.hex, "ab" * 16)
        b.daemon.quota.holding(a.daemon.me.peer_id.hex, "ab" * 16, 500_000)
        partial.write_bytes(b"\0" * 500_000)
        second = await send_file(a, b, scan)
        await wait_for(lambda: row(a, second).last_error is not None)
        assert row(a, second).last_error == REFUSALS[QUOTA_FULL]
        assert [r.doc_id for r in b.daemon.store.inbox()] == [first]
        _status, info = await b.api("GET", "/v1/status")
        assert info["refusals"]["by_code"][QUOTA_FULL] >= 1
        assert info["disk"]["quarantine"] == 500_000
        assert info["disk"]["received"] == row(a, first).size
    finally:
        await a.stop()
        await b.stop()


async def test_the_bytes_stored_from_a_peer_are_counted_again_after_a_restart(
    tmp_path: Path,
) -> None:
    """The per-peer count is kept in memory: a new quota sums it from the database first."""
    a, b = await start_pair(tmp_path, peer_quota_mib=1)
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(400_000))
    sender = a.daemon.me.peer_id.hex
    try:
        first = await send_file(a, b, scan)
        await wait_for(lambda: delivered(a, first))
        limits = Limits(peer_quota=1024 * 1024, disk_reserve=0)
        again = Quota(b.daemon.store, b.daemon.layout, limits)  # as after a restart
        assert await asyncio.to_thread(again.admit, sender, "cd" * 16, 500_000, in_flight=0) is None
        too_much = await asyncio.to_thread(again.admit, sender, "ef" * 16, 700_000, in_flight=0)
        assert too_much == QUOTA_FULL
        again.stored(sender, 500_000)  # the first one committed: counted from here on
        assert await asyncio.to_thread(again.admit, sender, "ab" * 16, 200_000, in_flight=0) == (
            QUOTA_FULL
        )
    finally:
        await a.stop()
        await b.stop()


async def test_documents_per_hour_per_peer(tmp_path: Path) -> None:
    a, b = await start_pair(tmp_path, peer_documents_per_hour=2)
    c = await start_daemon(tmp_path / "c", "Dr Chloé Petit")
    await pair(c, b)
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    try:
        sent = [await send_file(a, b, letter) for _ in range(3)]

        def settled() -> bool:
            return sum(delivered(a, d) for d in sent) == 2 and any(
                row(a, d).last_error for d in sent
            )

        await wait_for(settled)
        (held,) = [d for d in sent if not delivered(a, d)]
        assert row(a, held).last_error == REFUSALS[RATE_LIMITED]
        assert row(a, held).state == "queued"
        other = await send_file(c, b, letter)  # another colleague is not held back
        await wait_for(lambda: delivered(c, other))
    finally:
        for daemon in (a, b, c):
            await daemon.stop()


async def test_partial_transfers_expire_at_start_and_while_running(tmp_path: Path) -> None:
    a, b = await start_pair(tmp_path)
    peer = a.daemon.me.peer_id.hex
    quarantine = b.daemon.layout.quarantine
    await b.stop()
    stale = b.daemon.layout.partial(peer, "11" * 16)
    fresh = b.daemon.layout.partial(peer, "22" * 16)
    stranger = b.daemon.layout.partial("cd" * 32, "33" * 16)
    for path in (stale, fresh, stranger):
        path.write_bytes(b"\0" * 100_000)
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    b = await start_daemon(b.home, "Dr Bob Durand", port=b.port)
    try:
        assert sorted(quarantine.iterdir()) == [fresh]  # survived: a resume may still come
        _status, info = await b.api("GET", "/v1/status")
        assert info["disk"]["quarantine"] == 100_000
        await b.stop()
        b = await start_daemon(b.home, "Dr Bob Durand", port=b.port, partial_lifetime=2)
        assert sorted(quarantine.iterdir()) == [fresh]
        await wait_for(lambda: not fresh.exists(), timeout=5)  # swept while running
    finally:
        await a.stop()
        await b.stop()
