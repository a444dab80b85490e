"""Discovery latency: ``Discovery.start()`` → the other side's ``PeerSeen``.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python -m bench.discovery            # 10 runs; loopback, and unshare -n if root
    .venv/bin/python -m bench.discovery --runs 20

Two ``Discovery`` instances that know each other's discovery secret, bound to
127.0.0.1 only (no multicast leaves on a real interface). Two scenarios:

- **together**: both ``start()`` at once; the time until *both* reported the
  other (the slower side), i.e. two practices' daemons booting at once;
- **restart**: B is already up, A starts; *A sees B* (B answers A's first
  query) and *B sees A* (A's first announcement, after probing). That is a
  daemon restarting while its peers run, the common case.

Each setting runs in the machine's own network namespace (loopback) and, when
root, in a fresh ``unshare -n`` namespace holding only ``lo`` (this script
re-runs itself there with ``--inside``). Goal: median ≤ 1.5 s (Syncthing takes
1.4 s here from start to connected). Registration probes for the name as
RFC 6762 asks (a random 150-250 ms, then 3 probes 500 ms apart), so ~1.2 s
is the floor for being seen by others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from p2p.events import PeerSeen
from p2p.net.discovery import Discovery, Event
from protocol import new_discovery_secret

GOAL = 1.5  # seconds, median
LOOPBACK = ["127.0.0.1"]


class Side:
    def __init__(self, port: int) -> None:
        self.peer_id = os.urandom(32).hex()
        self.secret = new_discovery_secret()
        self.port = port
        self.peers: dict[str, bytes] = {}
        self.seen_at: dict[str, float] = {}
        self.discovery = Discovery(
            port=port,
            interfaces=LOOPBACK,
            own_secret=self.secret,
            peer_secrets=lambda: self.peers,
            on_event=self.on_event,
        )

    def on_event(self, event: Event) -> None:
        if isinstance(event, PeerSeen):
            self.seen_at.setdefault(event.peer_id, time.monotonic())

    async def wait_seen(self, other: Side, timeout: float = 10.0) -> float:
        async with asyncio.timeout(timeout):
            while other.peer_id not in self.seen_at:
                await asyncio.sleep(0.005)
        return self.seen_at[other.peer_id]


def pair() -> tuple[Side, Side]:
    a, b = Side(41001), Side(41002)
    a.peers[b.peer_id] = b.secret
    b.peers[a.peer_id] = a.secret
    return a, b


async def together() -> dict[str, float]:
    a, b = pair()
    t0 = time.monotonic()
    await asyncio.gather(a.discovery.start(), b.discovery.start())
    registered = time.monotonic() - t0
    try:
        seen = max(await a.wait_seen(b), await b.wait_seen(a)) - t0
    finally:
        await asyncio.gather(a.discovery.stop(), b.discovery.stop())
    return {"both seen": seen, "start() returned": registered}


async def restart() -> dict[str, float]:
    a, b = pair()
    await b.discovery.start()
    t0 = time.monotonic()
    await a.discovery.start()
    try:
        a_sees_b = await a.wait_seen(b) - t0
        b_sees_a = await b.wait_seen(a) - t0
    finally:
        await asyncio.gather(a.discovery.stop(), b.discovery.stop())
    return {"A sees B": a_sees_b, "B sees A": b_sees_a}


async def measure(runs: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {"together": {}, "restart": {}}
    for _ in range(runs):
        for name, scenario in (("together", together), ("restart", restart)):
            for metric, value in (await scenario()).items():
                results[name].setdefault(metric, []).append(value)
            await asyncio.sleep(0.3)  # let goodbyes settle between runs
    return results


def inside_unshare(runs: int) -> dict[str, dict[str, list[float]]] | str:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "skipped (needs root, unshare and ip)"
    inner = f"{sys.executable} -m bench.discovery --inside --runs {runs:d}"
    command = f"ip link set lo up && exec {inner}"
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return f"failed: {done.stderr.strip()[-300:]}"
    loaded: dict[str, dict[str, list[float]]] = json.loads(done.stdout)
    return loaded


def table(setting: str, results: dict[str, dict[str, list[float]]]) -> list[str]:
    rows = []
    for scenario, metrics in results.items():
        for metric, values in metrics.items():
            median, worst = statistics.median(values), max(values)
            goal = "≤ 1.5 s" if metric != "start() returned" else "(info)"
            verdict = "" if goal == "(info)" else ("ok" if median <= GOAL else "MISSED")
            rows.append(
                f"{setting:<12} {scenario:<9} {metric:<17} {len(values):>4} "
                f"{median:>8.3f} {worst:>8.3f}  {goal:<8} {verdict}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(asyncio.run(measure(args.runs))))
        return
    print(f"discovery latency, {args.runs} runs, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'setting':<12} {'scenario':<9} {'metric':<17} {'runs':>4} "
        f"{'median s':>8} {'max s':>8}  goal"
    )
    for row in table("loopback", asyncio.run(measure(args.runs))):
        print(row)
    isolated = inside_unshare(args.runs)
    if isinstance(isolated, str):
        print(f"{'unshare -n':<12} {isolated}")
    else:
        for row in table("unshare -n", isolated):
            print(row)
    print("Syncthing here: 1.4 s from start to connected.")


if __name__ == "__main__":
    main()
