"""Daemons on loopback: start → paired peer seen by mDNS, and `pair accept` → paired.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python -m bench.pairing            # 10 runs each
    .venv/bin/python -m bench.pairing --runs 20

Real daemons (in one process, real sockets, real mDNS bound to 127.0.0.1 only:
nothing is announced on the machine's network) in temporary homes.

- **start → peer seen**: A runs; B (already paired with A) starts. Measured
  from B's ``start()`` until B has seen A's announcement (and A has seen B's),
  and until B's outbox could reach A (a live Noise session).
- **pair accept → paired**: A has an open invitation; B accepts its code,
  finding A by mDNS (the invitee's lookup is included). Measured from the
  accept until both sides have stored each other; both pre-confirm the SAS, as
  ``--yes`` does, so no person's reaction time is counted.

Goals (issue 4): ≤ 1.5 s and ≤ 1 s median. Syncthing takes 1.4 s here from
start to connected (../shared/bench/anchors-2026-11-28.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from p2p.daemon import harness
from p2p.daemon.core import Daemon
from protocol import PeerId

LOOPBACK: dict[str, Any] = {
    "discovery": True,
    "interfaces": ["127.0.0.1"],
    "retry_min": 0.1,
    "retry_max": 1.0,
}


async def start(home: Path, name: str) -> tuple[Daemon, asyncio.Task[None]]:
    daemon = await asyncio.to_thread(harness.open_daemon, home, name, **LOOPBACK)
    await daemon.start()
    return daemon, asyncio.create_task(daemon.run())


async def stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    daemon.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def until(predicate: object, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise TimeoutError
        await asyncio.sleep(0.002)
    return time.monotonic()


async def start_to_seen(root: Path) -> tuple[float, float]:
    a, a_task = await start(root / "a", "A")
    b, b_task = await start(root / "b", "B")
    await a.add_peer(b.signed_card(), [], b.keys.discovery_secret)
    await b.add_peer(a.signed_card(), [], a.keys.discovery_secret)
    await stop(b, b_task)
    await asyncio.sleep(1.5)  # B's goodbye is processed; A forgets where B was
    began = time.monotonic()
    b, b_task = await start(root / "b", "B")
    a_hex, b_hex = a.me.peer_id.hex, b.me.peer_id.hex
    a_id, b_id = PeerId(bytes.fromhex(a_hex)), PeerId(bytes.fromhex(b_hex))
    try:
        connected = await until(
            lambda: b.transport.channel(a_id) is not None or a.transport.channel(b_id) is not None
        )
        seen = await until(lambda: a_hex in b.dialler.seen and b_hex in a.dialler.seen)
        return seen - began, connected - began
    finally:
        await stop(a, a_task)
        await stop(b, b_task)


async def accept_to_paired(root: Path) -> float:
    a, a_task = await start(root / "a", "A")
    b, b_task = await start(root / "b", "B")
    try:
        await until(lambda: a.discovery is not None and a.discovery.running)
        invitation = a.pairing.invite(auto_confirm=True)
        await asyncio.sleep(1.3)  # the invitation's announcement is out (the code is read aloud)
        began = time.monotonic()
        address = await b.find_invitation(invitation.nameplate, timeout=5)
        assert address is not None
        pipe = await b.transport.dial_pairing(address)
        b.pairing.start_accept(invitation.code, pipe, auto_confirm=True)
        done = await until(lambda: bool(a.store.peers()) and bool(b.store.peers()))
        return done - began
    finally:
        await stop(a, a_task)
        await stop(b, b_task)


def row(label: str, values: list[float], goal: float) -> str:
    median, worst = statistics.median(values), max(values)
    verdict = "meets" if median <= goal else "MISSES"
    return f"| {label} | {median:.3f} s | {worst:.3f} s | ≤ {goal} s ({verdict}) |"


async def main(runs: int) -> None:
    seen, connected, paired = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            first, second = await start_to_seen(Path(tmp))
            seen.append(first)
            connected.append(second)
        with tempfile.TemporaryDirectory() as tmp:
            paired.append(await accept_to_paired(Path(tmp)))
    print(f"Daemons on loopback, {runs} runs (median / max):\n")
    print("| measure | median | max | goal |")
    print("|---|---|---|---|")
    print(row("daemon start → paired peer seen (both ways)", seen, 1.5))
    print(row("daemon start → Noise session up", connected, 1.5))
    print(row("pair accept (mDNS lookup included) → paired", paired, 1.0))
    print("\nAnchor: Syncthing, both started → connected: 1.41 s on this machine.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
