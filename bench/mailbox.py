"""A 10 KiB letter through a NATS JetStream mailbox on loopback, POST to receipt.

Run by hand from the repository root (needs ``nats-server``; never in the tests)::

    .venv/bin/python -m bench.mailbox                 # 100 letters each way
    .venv/bin/python -m bench.mailbox --letters 300

One run starts a real ``nats-server`` configured by ``pli mailbox server-config``
for two practices (temporary homes, 127.0.0.1 ports, discovery off) and two
``pli daemon`` processes that joined it. B advertises only an address pli never
dials (a port below 1024) and A trusts B's card without an address, so every
letter from A to B goes through the mailbox and its receipt comes back the same
way, both daemons running. Then, for the same letters sent directly (A trusts B
at its real address), the same figure. Each letter is sent after the previous
receipt: ``POST /v1/documents`` → the sender's ``delivered`` count
(``GET /v1/status``, polled every 1 ms) shows the receipt stored. Printed:
median, p90, p99 and max in milliseconds, and each daemon's peak RSS.

``--size 1G`` adds one file of that size each way of sending (random bytes, in the
page cache): POST → receipt, in MB/s (10^6 bytes of file per second), mailbox next
to direct in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import kill_all, wait_until
from tests.p2p.natsserver import mailbox_state, member_key, server_for


def peak_rss_mib(daemon: DaemonProcess) -> float:
    assert daemon.proc is not None
    for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def letters(a: DaemonProcess, b: DaemonProcess, count: int, folder: Path) -> list[float]:
    """Milliseconds from POST to receipt stored, one letter after the other."""
    path = folder / "lettre.txt"
    path.write_bytes(os.urandom(10 * 1024))
    peer = b.identity()["peer_id"]
    body = {"to": [peer], "kind": "letter", "files": [{"path": str(path)}]}
    client = a.client
    times = []
    for _ in range(count):
        before = client.get("/v1/status")["delivered"]
        start = time.perf_counter()
        client.post("/v1/documents", body)
        while client.get("/v1/status")["delivered"] == before:
            time.sleep(0.001)
        times.append((time.perf_counter() - start) * 1000)
    return times


def transfer(a: DaemonProcess, b: DaemonProcess, path: Path) -> float:
    """Seconds from POST to receipt stored, for the file at ``path``."""
    body = {"to": [b.identity()["peer_id"]], "kind": "file", "files": [{"path": str(path)}]}
    before = a.client.get("/v1/status")["delivered"]
    start = time.perf_counter()
    a.client.post("/v1/documents", body, timeout=600)
    while a.client.get("/v1/status")["delivered"] == before:
        time.sleep(0.02)
    return time.perf_counter() - start


def big_file(folder: Path, size: int) -> Path:
    path = folder / "big.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for _ in range(size >> 20):
            handle.write(block)
    return path


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def report(label: str, times: list[float]) -> None:
    ordered = sorted(times)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    print(
        f"{label:<28} n={len(times):<4} median {statistics.median(times):7.1f} ms  "
        f"p90 {pct(0.9):7.1f}  p99 {pct(0.99):7.1f}  max {ordered[-1]:7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=100)
    parser.add_argument("--size", type=parse_size, default=0, help="also one file: 1G, 200M")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        a = DaemonProcess(folder / "a", "Dr A")
        b = DaemonProcess(folder / "b", "Dr B", advertise_addresses=["127.0.0.1:1"])
        quota = max(1, 2 * args.size >> 30)
        server = server_for(folder / "nats", [member_key(a), member_key(b)], quota).start()
        try:
            for daemon in (a, b):
                daemon.start()
                daemon.pli("mailbox", "add", server.url)
                wait_until(lambda d=daemon: mailbox_state(d) == "connected", timeout=20)
            a.client.post("/v1/peers", {"card": b.identity()["card"]})
            b.trust(a)
            letters(a, b, 3, folder)  # warm-up
            report("mailbox, POST -> receipt", letters(a, b, args.letters, folder))
            path = big_file(folder, args.size) if args.size else None
            if path is not None:
                seconds = transfer(a, b, path)
                print(
                    f"mailbox, {args.size >> 20} MiB file -> receipt: {seconds:.1f} s, "
                    f"{args.size / seconds / 1e6:.0f} MB/s"
                )
            a.client.post("/v1/peers", {"card": b.identity()["card"], "address": b.address})
            letters(a, b, 3, folder)
            report("direct, POST -> receipt", letters(a, b, args.letters, folder))
            if path is not None:
                seconds = transfer(a, b, path)
                print(
                    f"direct, {args.size >> 20} MiB file -> receipt: {seconds:.1f} s, "
                    f"{args.size / seconds / 1e6:.0f} MB/s"
                )
            print(f"peak RSS: A {peak_rss_mib(a):.0f} MiB, B {peak_rss_mib(b):.0f} MiB")
        finally:
            kill_all(a, b)
            server.stop()


if __name__ == "__main__":
    main()
