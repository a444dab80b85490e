"""A disk that fills up during a transfer: the sender is told, nothing is left half-done.

The receiver's home is a small tmpfs mounted for the test (root only). The
sender's BULK frames are held after the first one while the test fills that
disk, so the receiver's next write really fails with ENOSPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.services.outbox import REFUSALS
from p2p.storage.quota import DISK_FULL

from .conftest import pair, start_daemon, wait_for
from .test_exchange import delivered, send_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk() -> Iterator[Path]:
    mountpoint = Path(tempfile.mkdtemp(prefix="pli-disk-"))
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mountpoint)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        mountpoint.rmdir()


async def test_disk_full_during_a_transfer_is_refused_then_delivered(
    tmp_path: Path, small_disk: Path
) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(small_disk / "b", "Dr Bob Durand", disk_reserve_mib=0)
    await pair(a, b)
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(8 * 1024 * 1024))
    release = asyncio.Event()
    channel = await a.daemon.dialler.connect(b.daemon.me.peer_id.hex)
    real_send_bulk = channel.send_bulk
    frames = 0

    async def held_send_bulk(plaintext: bytearray | bytes) -> None:
        nonlocal frames
        frames += 1
        if frames == 2:  # the offer was accepted and one frame is written
            await release.wait()
        if frames > 2:  # once B refused and closed on the frame after, this write fails
            with contextlib.suppress(TimeoutError):  # (after the refusal came in)
                await wait_for(lambda: channel.closed, timeout=0.3)
        await real_send_bulk(plaintext)

    channel.send_bulk = held_send_bulk  # type: ignore[method-assign]
    filler = small_disk / "filler"
    try:
        doc_id = await send_file(a, b, scan)
        await wait_for(lambda: frames >= 2)
        # Unbuffered: a buffered file would flush its last bytes when it closes, and
        # that write fails too, outside the suppress (depending on the bytes left).
        with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
            while True:  # the disk is now full
                handle.write(b"\0" * 65536)
        release.set()
        # The first failure recorded is B's refusal, not the write that failed behind it.
        await wait_for(lambda: a.daemon.store.outbox()[0].attempts > 0, timeout=30)
        (row,) = a.daemon.store.outbox()
        assert row.state == "queued"
        assert row.last_error == REFUSALS[DISK_FULL]
        assert list(b.daemon.layout.quarantine.iterdir()) == []  # the partial file is gone
        assert b.daemon.store.inbox() == []
        _status, info = await b.api("GET", "/v1/status")
        assert info["refusals"]["by_code"].get(DISK_FULL, 0) >= 1
        filler.unlink()  # space again: the next attempt goes through
        a.daemon.outbox.wake(b.daemon.me.peer_id.hex)
        await wait_for(lambda: delivered(a, doc_id), timeout=20)
    finally:
        release.set()
        await a.stop()
        await b.stop()
