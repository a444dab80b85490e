"""Letters and a large file through a NATS JetStream mailbox on loopback, next to direct.

Run by hand from the repository root (needs ``nats-server``; never in the tests)::

    .venv/bin/python -m bench.mailbox                     # 100 letters each way
    .venv/bin/python -m bench.mailbox --size 1G           # and one 1 GiB file each way
    .venv/bin/python -m bench.mailbox --size 1G --keep /tmp/mb   # keep homes and logs

One run starts a real ``nats-server`` configured by ``pli mailbox server-config``
for two practices (temporary homes, 127.0.0.1 ports, discovery off) and two
``pli daemon`` processes that joined it. B advertises only an address pli never
dials (a port below 1024) and A trusts B's card without an address, so every
letter from A to B goes through the mailbox and its receipt comes back the same
way, both daemons running. Then A is given B's real address and the same is
measured directly, in the same run, with the same daemons:

- a 10 KiB letter, each sent after the previous receipt: ``POST /v1/documents`` →
  the sender's ``delivered`` count (``GET /v1/status``, polled every 1 ms) shows
  the receipt stored; median and p99 in ms;
- letters/s: ``--burst`` letters posted back to back, until the last receipt;
- ``--size``: one file of that size (random bytes, in the page cache), POST →
  receipt, in MB/s (10^6 bytes of file per second), and the CPU seconds each
  process spent on it (A, B, the server: ``/proc/PID/stat``);
- each daemon's peak RSS during that path (``VmHWM``, reset between the paths);
- with ``--size``, the server alone moving as many bytes with no pli (``jetstream.py``):
  the ceiling of the mailbox path on this machine, and the mailbox's share of it.

Printed as one table, mailbox next to direct. The machine's load changes the
figures: note ``uptime`` and run it more than once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.jetstream import seconds_alone
from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import kill_all, wait_until
from tests.p2p.natsserver import mailbox_state, member_key, server_for

_TICK = os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int) -> None:
    """``VmHWM`` starts again from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Figures:
    """What one way of sending measured."""

    letters: list[float] = field(default_factory=list)  # ms each
    rate: float = 0.0  # letters/s in a burst
    seconds: float = 0.0  # the large file, POST -> receipt
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s per process, large file
    rss: dict[str, float] = field(default_factory=dict)  # peak MiB per daemon


def letters(a: DaemonProcess, b: DaemonProcess, count: int, folder: Path) -> list[float]:
    """Milliseconds from POST to receipt stored, one letter after the other."""
    body = letter_body(b, folder)
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


def burst(a: DaemonProcess, b: DaemonProcess, count: int, folder: Path) -> float:
    """Letters per second: ``count`` posted back to back, until the last receipt."""
    body = letter_body(b, folder)
    client = a.client
    before = client.get("/v1/status")["delivered"]
    start = time.perf_counter()
    for _ in range(count):
        client.post("/v1/documents", body)
    wait_until(lambda: client.get("/v1/status")["delivered"] >= before + count, timeout=300)
    return count / (time.perf_counter() - start)


def letter_body(b: DaemonProcess, folder: Path) -> dict[str, object]:
    path = folder / "lettre.txt"
    if not path.exists():
        path.write_bytes(os.urandom(10 * 1024))
    return {"to": [b.identity()["peer_id"]], "kind": "letter", "files": [{"path": str(path)}]}


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


def measure(
    a: DaemonProcess, b: DaemonProcess, pids: dict[str, int], args: argparse.Namespace, folder: Path
) -> Figures:
    """One way of sending, as set up by the caller (mailbox, or B's address known)."""
    result = Figures()
    for name in ("A", "B"):
        reset_peak_rss(pids[name])
    letters(a, b, 3, folder)  # warm-up
    result.letters = letters(a, b, args.letters, folder)
    if args.burst:
        result.rate = burst(a, b, args.burst, folder)
    if args.size:
        path = folder / "big.bin"
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result.seconds = transfer(a, b, path)
        result.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    result.rss = {name: peak_rss_mib(pids[name]) for name in ("A", "B")}
    return result


def table(mailbox: Figures, direct: Figures, alone: float, args: argparse.Namespace) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, m: float, d: float, unit: str = "", ratio: bool = True) -> None:
        share = f"{m / d:6.0%}" if ratio and d else ""
        rows.append((label, f"{m:,.1f}{unit}", f"{d:,.1f}{unit}", share))

    def pct(times: list[float], p: float) -> float:
        ordered = sorted(times)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    n = len(mailbox.letters)
    row(
        f"letter median, ms (n={n})",
        statistics.median(mailbox.letters),
        statistics.median(direct.letters),
    )
    row("letter p99, ms", pct(mailbox.letters, 0.99), pct(direct.letters, 0.99))
    if args.burst:
        row(f"letters/s (burst of {args.burst})", mailbox.rate, direct.rate)
    if args.size:
        mib = args.size >> 20
        row(
            f"{mib} MiB file, MB/s",
            args.size / mailbox.seconds / 1e6,
            args.size / direct.seconds / 1e6,
        )
        row(f"{mib} MiB file, s", mailbox.seconds, direct.seconds)
        # The ceiling here: the server alone moving as many bytes (no pli); m/d is then
        # the mailbox path's share of it.
        share = f"{alone / mailbox.seconds:6.0%}" if mailbox.seconds else ""
        rows.append(("  the server alone, MB/s", f"{args.size / alone / 1e6:,.1f}", "", share))
        for name in ("A", "B", "nats"):
            row(f"  CPU s, {name}", mailbox.cpu[name], direct.cpu[name], ratio=False)
    for name in ("A", "B"):
        row(f"peak RSS {name}, MiB", mailbox.rss[name], direct.rss[name], ratio=False)
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':<{width}}  {'mailbox':>10}  {'direct':>10}  {'m/d':>6}"]
    lines += [f"{label:<{width}}  {m:>10}  {d:>10}  {share:>6}" for label, m, d, share in rows]
    return lines


def run(folder: Path, args: argparse.Namespace) -> None:
    a = DaemonProcess(folder / "a", "Dr A")
    b = DaemonProcess(folder / "b", "Dr B", advertise_addresses=["127.0.0.1:1"])
    quota = max(1, 2 * args.size >> 30)
    server = server_for(folder / "nats", [member_key(a), member_key(b)], quota).start()
    try:
        for daemon in (a, b):
            daemon.start()
            daemon.pli("mailbox", "add", server.url)
            wait_until(lambda d=daemon: mailbox_state(d) == "connected", timeout=20)
        assert server.proc is not None
        pids = {"A": a.pid, "B": b.pid, "nats": server.proc.pid}
        if args.size:
            big_file(folder, args.size)
        a.client.post("/v1/peers", {"card": b.identity()["card"]})
        b.trust(a)
        mailbox = measure(a, b, pids, args, folder)
        a.client.post("/v1/peers", {"card": b.identity()["card"], "address": b.address})
        direct = measure(a, b, pids, args, folder)
        kill_all(a, b)  # the server alone, on B's stream, with B's consumer
        alone = seconds_alone(server.url, a.home, b.home, args.size) if args.size else 0.0
        print("\n".join(table(mailbox, direct, alone, args)), flush=True)
    finally:
        kill_all(a, b)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=100, help="one after the other")
    parser.add_argument("--burst", type=int, default=100, help="back to back (0: none)")
    parser.add_argument("--size", type=parse_size, default=0, help="also one file: 1G, 200M")
    parser.add_argument("--keep", type=Path, help="run in this folder and leave it (logs)")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args)


if __name__ == "__main__":
    main()
