"""Storm: many paired daemons send to one practice at the same moment.

    .venv/bin/python -m bench.storm [--senders 50] [--letters 20]

One receiving ``pli daemon`` and ``--senders`` sending daemons, all separate
processes on loopback, each sender paired with the receiver. Every sender
queues ``--letters`` letters of 10 KiB at once (one thread per sender), while
a probe asks the receiver's local API for its status every 20 ms, as the
practice's own page or software would. The bench waits for every signed
receipt and prints: letters delivered, the time the storm took, the
receiver's API latency (count, p50, p95, p99, max) during the storm, the receiver's
peak RSS, and any failed API call. Bounded: the senders and letters given,
and ``--timeout`` seconds of waiting.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.p2p.procs import DaemonProcess, kill_all, wait_until

LETTER = 10 * 1024
PROBE_INTERVAL = 0.02


class Probe(threading.Thread):
    """Times ``GET /v1/status`` on the receiver until stopped."""

    def __init__(self, daemon: DaemonProcess) -> None:
        super().__init__(daemon=True)
        self.target = daemon
        self.latencies: list[float] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        client = self.target.client
        while not self.done.is_set():
            started = time.perf_counter()
            try:
                client.get("/v1/status")
                self.latencies.append(time.perf_counter() - started)
            except Exception:  # any failure counts; the bench reports them
                self.failures += 1
            time.sleep(PROBE_INTERVAL)


def peak_rss_mb(daemon: DaemonProcess) -> float:
    assert daemon.proc is not None
    for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def surname(number: int) -> str:
    """A distinct name without digits (a name that looks like a key is refused)."""
    first, second = divmod(number, 26)
    return "Sender " + chr(ord("a") + first).upper() + chr(ord("a") + second) + "ville"


def start_practices(root: Path, senders: int) -> tuple[DaemonProcess, list[DaemonProcess]]:
    receiver = DaemonProcess(root / "receiver", "Dr Rose Lefebvre").start()
    team = []
    for number in range(senders):
        sender = DaemonProcess(root / f"s{number}", f"Dr {surname(number)}").start()
        sender.trust(receiver)
        receiver.trust(sender)
        team.append(sender)
        print(f"\r  {number + 1}/{senders} senders started and paired", end="", flush=True)
    print()
    return receiver, team


def send_all(
    sender: DaemonProcess, receiver: DaemonProcess, folder: Path, letters: int
) -> list[str]:
    ids = []
    for number in range(letters):
        path = folder / f"{sender.home.name}-{number}.txt"
        path.write_bytes(f"Lettre {number}\n".encode() + bytes(LETTER))
        ids.append(sender.send(receiver, path, kind="letter"))
    return ids


def delivered(sender: DaemonProcess, ids: list[str]) -> bool:
    states = {entry["id"]: entry["state"] for entry in sender.client.get("/v1/outbox")}
    return all(states.get(doc_id) == "delivered" for doc_id in ids)


def storm(
    receiver: DaemonProcess, team: list[DaemonProcess], folder: Path, letters: int, timeout: float
) -> tuple[float, Probe, dict[int, list[str]]]:
    probe = Probe(receiver)
    probe.start()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(team)) as pool:
        futures = [pool.submit(send_all, s, receiver, folder, letters) for s in team]
        sent = {index: future.result() for index, future in enumerate(futures)}
    for index, sender in enumerate(team):
        wait_until(lambda s=sender, i=index: delivered(s, sent[i]), timeout=timeout, interval=0.2)
    elapsed = time.monotonic() - started
    probe.done.set()
    probe.join()
    return elapsed, probe, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--letters", type=int, default=20, help="letters per sender")
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-storm-") as tmp:
        root = Path(tmp)
        (root / "files").mkdir()
        receiver, team = start_practices(root, options.senders)
        try:
            elapsed, probe, sent = storm(
                receiver, team, root / "files", options.letters, options.timeout
            )
            inbox = receiver.inbox_ids()
            rss = peak_rss_mb(receiver)
        finally:
            for daemon in (receiver, *team):
                daemon.stop()
            kill_all(receiver, *team)
    expected = {doc_id for ids in sent.values() for doc_id in ids}
    latencies = sorted(probe.latencies)
    missing = len(expected - set(inbox))
    print(f"\n{options.senders} senders x {options.letters} letters of 10 KiB -> one receiver")
    print(f"{'figure':<34} {'value':>10}  goal")
    print(f"{'letters delivered':<34} {len(expected) - missing:>10}  {len(expected)}")
    print(f"{'duplicates in the inbox':<34} {len(inbox) - len(set(inbox)):>10}  0")
    print(f"{'storm, first POST -> last receipt':<34} {elapsed:>9.1f}s")
    print(f"{'letters/s':<34} {len(expected) / elapsed:>10.0f}")
    print(f"{'receiver API calls during storm':<34} {len(latencies):>10}")
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        goal = "  < 100 ms" if name == "p99" else ""
        value = percentile(latencies, fraction) * 1000
        print(f"{'receiver API ' + name:<34} {value:>8.1f}ms{goal}")
    print(f"{'receiver API max':<34} {latencies[-1] * 1000:>8.1f}ms")
    print(f"{'receiver API failures':<34} {probe.failures:>10}  0")
    print(f"{'receiver peak RSS':<34} {rss:>8.1f}MB")
    p99 = percentile(latencies, 0.99)
    sys.exit(1 if missing or probe.failures or p99 >= 0.1 else 0)


def percentile(ordered: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``ordered`` (sorted) lies (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


if __name__ == "__main__":
    main()
