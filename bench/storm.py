"""Storm: many paired daemons send to one practice at the same moment.

    .venv/bin/python -m bench.storm [--senders 50] [--letters 20] [--sender-nice 19]

One receiving ``pli daemon`` and ``--senders`` sending daemons, all separate
processes on loopback, each sender paired with the receiver. Every sender
queues ``--letters`` letters of 10 KiB at once (one thread per sender), while
a probe process asks the receiver's local API for its status every 20 ms, as
the practice's own page or software would. The bench waits for every signed
receipt and prints: letters delivered, the time the storm took, the
receiver's API latency (count, p50, p95, p99, max) during the storm, the CPU
time the receiver and the senders used, the receiver's peak RSS, and any
failed API call. Bounded: the senders and letters given, and ``--timeout``
seconds of waiting.

In the field each sender is another practice's computer. Here they all share
the receiver's CPUs, so by default they run at ``nice 19``: they get the CPU
time the receiver leaves, which is as close to "their own machines" as one
computer gets. ``--sender-nice 0`` shows the receiver competing with all of
them on equal terms (its latency is then the kernel's run queue, see
../docs/threat-model.md §7.4).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from p2p.cli.client import Client
from p2p.cli.practice import PracticeProcess, kill_all, wait_until

LETTER = 10 * 1024
PROBE_INTERVAL = 0.02


def probe_loop(home: Path, answers: Connection) -> None:
    """In its own process: time ``GET /v1/status`` until told to stop, then send the times.

    Each call is (when it started on the system-wide monotonic clock, seconds it
    took, whether it failed), so the bench keeps the calls made during the storm.
    """
    client = Client(home)
    calls: list[tuple[float, float, bool]] = []
    while not answers.poll():
        started = time.monotonic()
        try:
            client.get("/v1/status")
            failed = False
        except Exception:  # any failure counts; the bench reports them
            failed = True
        calls.append((started, time.monotonic() - started, failed))
        time.sleep(PROBE_INTERVAL)
    answers.send(calls)


class Probe:
    """The probe process, apart from the bench's sending threads (no shared GIL)."""

    def __init__(self, daemon: PracticeProcess) -> None:
        self.latencies: list[float] = []
        self.failures = 0
        context = multiprocessing.get_context("spawn")
        self._ours, theirs = context.Pipe()
        self._process = context.Process(target=probe_loop, args=(daemon.home, theirs))
        self._process.start()

    def stop(self, start: float, end: float) -> None:
        """Stop the probe; keep the calls it started between ``start`` and ``end``."""
        self._ours.send("stop")
        calls: list[tuple[float, float, bool]] = self._ours.recv()
        self._process.join(10)
        during = [(took, failed) for at, took, failed in calls if start <= at <= end]
        self.latencies = [took for took, failed in during if not failed]
        self.failures = sum(failed for _, failed in during)


def cpu_seconds(*daemons: PracticeProcess) -> float:
    """User and system CPU time the daemons' processes have used so far."""
    total = 0
    for daemon in daemons:
        fields = Path(f"/proc/{daemon.pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(daemon: PracticeProcess) -> float:
    for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def surname(number: int) -> str:
    """A distinct name without digits (a name that looks like a key is refused)."""
    first, second = divmod(number, 26)
    return "Sender " + chr(ord("a") + first).upper() + chr(ord("a") + second) + "ville"


def start_practices(
    root: Path, senders: int, nice: int
) -> tuple[PracticeProcess, list[PracticeProcess]]:
    receiver = PracticeProcess(root / "receiver", "Dr Rose Lefebvre").start()
    team = []
    for number in range(senders):
        sender = PracticeProcess(root / f"s{number}", f"Dr {surname(number)}").start()
        os.setpriority(os.PRIO_PROCESS, sender.pid, nice)
        sender.trust(receiver)
        receiver.trust(sender)
        team.append(sender)
        print(f"\r  {number + 1}/{senders} senders started and paired", end="", flush=True)
    print()
    return receiver, team


def send_all(
    sender: PracticeProcess, receiver: PracticeProcess, folder: Path, letters: int
) -> list[str]:
    ids = []
    for number in range(letters):
        path = folder / f"{sender.home.name}-{number}.txt"
        path.write_bytes(f"Lettre {number}\n".encode() + bytes(LETTER))
        ids.append(sender.send(receiver, path, kind="letter"))
    return ids


def delivered(sender: PracticeProcess, ids: list[str]) -> bool:
    states = {entry["id"]: entry["state"] for entry in sender.client.get("/v1/outbox")}
    return all(states.get(doc_id) == "delivered" for doc_id in ids)


@dataclass
class Storm:
    """What one storm measured."""

    elapsed: float
    probe: Probe
    sent: dict[int, list[str]]
    receiver_cpu: float
    senders_cpu: float


def storm(
    receiver: PracticeProcess,
    team: list[PracticeProcess],
    folder: Path,
    letters: int,
    timeout: float,
) -> Storm:
    probe = Probe(receiver)
    time.sleep(0.5)  # the probe process is up before the first letter
    cpu_before = cpu_seconds(receiver), cpu_seconds(*team)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(team)) as pool:
        futures = [pool.submit(send_all, s, receiver, folder, letters) for s in team]
        sent = {index: future.result() for index, future in enumerate(futures)}
    deadline = started + timeout
    for index, sender in enumerate(team):
        left = max(0.1, deadline - time.monotonic())
        try:
            wait_until(lambda s=sender, i=index: delivered(s, sent[i]), timeout=left, interval=0.2)
        except AssertionError:  # out of time: the table says how many arrived
            break
    elapsed = time.monotonic() - started
    receiver_cpu = cpu_seconds(receiver) - cpu_before[0]
    senders_cpu = cpu_seconds(*team) - cpu_before[1]
    probe.stop(started, started + elapsed)
    return Storm(elapsed, probe, sent, receiver_cpu, senders_cpu)


def percentile(ordered: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``ordered`` (sorted) lies (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def report(options: argparse.Namespace, run: Storm, inbox: list[str], rss: float) -> bool:
    """Print the table; whether every goal was met."""
    expected = {doc_id for ids in run.sent.values() for doc_id in ids}
    latencies = sorted(run.probe.latencies) or [float("inf")]  # no answer at all: fail
    missing = len(expected - set(inbox))
    print(
        f"\n{options.senders} senders (nice {options.sender_nice}) x {options.letters} "
        f"letters of 10 KiB -> one receiver, {os.cpu_count()} CPUs"
    )
    print(f"{'figure':<34} {'value':>10}  goal")
    print(f"{'letters delivered':<34} {len(expected) - missing:>10}  {len(expected)}")
    print(f"{'duplicates in the inbox':<34} {len(inbox) - len(set(inbox)):>10}  0")
    print(f"{'storm, first POST -> last receipt':<34} {run.elapsed:>9.1f}s")
    print(f"{'letters/s':<34} {len(expected) / run.elapsed:>10.0f}")
    print(f"{'receiver API calls during storm':<34} {len(latencies):>10}")
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        goal = "  < 100 ms" if name == "p99" else ""
        value = percentile(latencies, fraction) * 1000
        print(f"{'receiver API ' + name:<34} {value:>8.1f}ms{goal}")
    print(f"{'receiver API max':<34} {latencies[-1] * 1000:>8.1f}ms")
    print(f"{'receiver API failures':<34} {run.probe.failures:>10}  0")
    print(f"{'receiver CPU during storm':<34} {run.receiver_cpu:>9.1f}s")
    print(f"{'senders CPU during storm':<34} {run.senders_cpu:>9.1f}s")
    print(f"{'receiver peak RSS':<34} {rss:>8.1f}MB")
    return not missing and not run.probe.failures and percentile(latencies, 0.99) < 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--letters", type=int, default=20, help="letters per sender")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--sender-nice", type=int, default=19, help="niceness of the senders")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-storm-") as tmp:
        root = Path(tmp)
        (root / "files").mkdir()
        receiver, team = start_practices(root, options.senders, options.sender_nice)
        try:
            run = storm(receiver, team, root / "files", options.letters, options.timeout)
            inbox = receiver.inbox_ids()
            rss = peak_rss_mb(receiver)
        finally:
            for daemon in (receiver, *team):
                daemon.stop()
            kill_all(receiver, *team)
    sys.exit(0 if report(options, run, inbox, rss) else 1)


if __name__ == "__main__":
    main()
