"""Flood: a receiver limited to 256 file descriptors under a connection flood.

    .venv/bin/python -m bench.flood [--letters 50] [--nofile 256]

Two ``pli daemon`` processes on loopback, paired; the receiver runs with
RLIMIT_NOFILE = ``--nofile`` (soft and hard). Two floods, each bounded:

- **one address**: 300 requests from 127.0.0.2 that the peer port refuses
  (400, then 429), each on a connection the flooder keeps open;
- **many addresses**: 40 addresses × 8 WebSocket upgrades that never start the
  Noise handshake, kept open.

During each, the bench counts the connections the receiver still holds and
its open descriptors, times its local API (``GET /v1/status``, 20 calls), and
sends ``--letters`` letters of 1 KiB from the other daemon, timing them to
the last signed receipt (``--timeout`` seconds at most). It prints one table;
afterwards, the receiver's log size and its count of tracebacks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from p2p.cli.practice import PracticeProcess, kill_all
from tests.p2p.flood import REFUSED, STALLED, close_all, flood, sources, still_open


def api_latency(daemon: PracticeProcess, calls: int = 20) -> tuple[float, int]:
    """Median seconds of the calls that answered, and how many failed."""
    times, failed = [], 0
    client = daemon.client
    for _ in range(calls):
        started = time.perf_counter()
        try:
            client.get("/v1/status")
            times.append(time.perf_counter() - started)
        except Exception:  # a daemon out of descriptors: counted, not raised
            failed += 1
    return (statistics.median(times) if times else float("nan")), failed


def letters_per_second(
    a: PracticeProcess, b: PracticeProcess, folder: Path, count: int, timeout: float
) -> tuple[int, float]:
    """Letters delivered within ``timeout`` and the rate (letters/s)."""
    folder.mkdir(exist_ok=True)
    started = time.monotonic()
    doc_ids = []
    for index in range(count):
        path = folder / f"lettre-{index}.txt"
        path.write_bytes(b"x" * 1024)
        try:
            doc_ids.append(a.send(b, path, kind="letter"))
        except Exception:  # the sender's API is not flooded; kept for symmetry
            continue
    done = 0
    while time.monotonic() - started < timeout:
        states = {e["id"]: e["state"] for e in a.client.get("/v1/outbox")}
        done = sum(states.get(doc_id) == "delivered" for doc_id in doc_ids)
        if done == count:
            break
        time.sleep(0.05)
    return done, done / (time.monotonic() - started)


def run(args: argparse.Namespace, root: Path) -> None:
    a = PracticeProcess(root / "a", "Dr Alice Martin")
    b = PracticeProcess(root / "b", "Dr Bob Durand", nofile=args.nofile)
    try:
        a.start()
        b.start()
        a.trust(b)
        b.trust(a)
        print(f"receiver RLIMIT_NOFILE {args.nofile}; idle: {b.open_fds()} descriptors")
        print(
            "| flood | connections opened | still held | receiver fds | API median ms "
            "(failed /20) | letters delivered | letters/s |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        floods = [
            ("one address, refused requests", ["127.0.0.2"], 300, REFUSED),
            ("40 addresses × 8, stalled upgrades", sources(40), 8, STALLED),
        ]
        for number, (name, addresses, per_address, request) in enumerate(floods):
            sockets = flood(b.port, addresses, per_address, request)
            try:
                held = still_open(sockets, wait=1.0)
                fds = b.open_fds()
                median, failed = api_latency(b)
                done, rate = letters_per_second(
                    a, b, root / f"letters-{number}", args.letters, args.timeout
                )
                print(
                    f"| {name} | {len(sockets)} | {held} | {fds} | {median * 1000:.1f} "
                    f"({failed}) | {done}/{args.letters} | {rate:.1f} |"
                )
            finally:
                close_all(sockets)
            time.sleep(1.0)
        log = b.logs()
        print(f"receiver log: {len(log)} bytes, {log.count('Traceback')} tracebacks")
    finally:
        kill_all(a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=50)
    parser.add_argument("--nofile", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-flood-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
