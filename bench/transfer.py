"""pli end to end on loopback: two daemons, real sockets, receipts; and magic-wormhole.

Run by hand from the repository root (never in the tests)::

    .venv/bin/python -m bench.transfer                     # everything (wormhole needs root)
    .venv/bin/python -m bench.transfer --sizes 10K,100M --runs 5 --skip-wormhole
    .venv/bin/python -m bench.transfer --malloc-tuned      # daemons run with GLIBC_TUNABLES
    .venv/bin/python -m bench.transfer --profile /tmp/prof # py-spy both daemons (collapsed stacks)

One run starts two ``python -m p2p daemon`` processes (temporary homes, peer
ports on 127.0.0.1, discovery off), makes each trust the other's card
(``POST /v1/peers``) and sends one untimed warm-up letter (dial + Noise
handshake). Then, A → B:

- **files** (``--sizes``, ``--runs`` each, random data in the page cache): the
  headline, **file → receipt**, runs from the start of ``POST /v1/documents``
  until the sender's ``delivered`` count (``GET /v1/status``) shows the signed
  receipt stored: seal included. MB/s is file bytes (10^6) over that time. The
  daemon streams the envelope while it is sealing it and answers the POST once
  the envelope is durable and queued (``POST`` column), the rest is ``queued →
  receipt``;
- **seal and transfer apart** (one run per size): the seal alone, with B
  stopped (``POST`` time: nothing to stream to), then the transfer alone: B
  restarted, A told (``POST /v1/peers``), until the receipt (dial and
  handshake included);
- **``pli send FILE --wait``** (one run per size, ``--cli``): the command as a
  person runs it, from process start to exit, next to the daemon's figure;
- **letter latency**: ``--letters`` 10 KiB letters one after the other,
  queued → receipt each;
- **letters/s**, twice with ``--burst`` 10 KiB letters, posted by
  ``--clients`` clients at once (a practice software queueing a batch; each
  client one POST after the other): (1) queued while B runs, rate over (first
  POST → last receipt): queueing and delivery together; (2) queued while B is
  stopped, then B is restarted and A told so (``POST /v1/peers``, which
  retries at once); the rate is letters over (that call → last receipt
  stored): delivery alone;
- **peak RSS** of each daemon: VmHWM from ``/proc/PID/status``, reset before
  each size (``5`` written to ``/proc/PID/clear_refs``) so each row shows the
  peak of that size alone; the whole-run peak is printed at the end.

Completion is seen by polling: ``GET /v1/status`` on one kept-alive unix-socket
connection, sleeping 1 ms between polls for letters and sizes ≤ 1 MiB, 5 ms
below 1 GiB and 20 ms from 1 GiB (each poll costs the sender daemon ~0.4 ms of
CPU, which a 1 ms poll would take from a long transfer). The
bench measures one poll's round trip while idle and prints it: a receipt is
seen at most one poll period (round trip + sleep) after it is stored.

With the ``bench`` extra installed (``pip install -e '.[bench]'``) and root,
the same files go through magic-wormhole 0.24 inside a fresh network
namespace whose only interface is ``lo`` (``unshare -n``; in the host
namespace wormhole would advertise the machine's real address), with a local
mailbox and transit relay on 127.0.0.1. Its e2e time runs from starting the
sender to both processes exiting (as in ../shared/bench/anchors-2026-11-28.md,
two CLI start-ups included); its data phase is the receiver's ``rx file``
span. Ratios are pli's figure over wormhole's.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2p.cli.client import UnixHTTPConnection
from p2p.daemon import harness
from p2p.storage.config import API_SOCKET

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MB = 1e6
SIZES = {"10K": 10 * KiB, "100M": 100 * MiB, "1G": GiB}
LABELS = {10 * KiB: "10 KiB", 100 * MiB: "100 MiB", GiB: "1 GiB"}

GOAL_MBPS = {GiB: 600.0, 100 * MiB: 500.0}  # file → receipt, seal included (issue 10)
GOAL_WORMHOLE = 2.0  # 1 GiB: pli's file → receipt at least this many times wormhole's speed
GOAL_CLI = 0.10  # pli send --wait within 10 % of the daemon's file → receipt
GOAL_LATENCY_MS = 5.0  # median, 10 KiB letter POST → receipt
GOAL_LETTERS = 1000.0  # per second, queued and delivered at once, with receipts
GOAL_RSS_MB = 64.0  # peak per daemon
CLIENTS = 16  # clients posting letters at once (--clients)
ANCHORS = "anchors: wormhole ~280 MB/s here, scp ~390, in shared/bench/anchors-2026-11-28.md"

TUNABLES = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728"
POLL_LETTER = 0.001
POLL_FILE = 0.005
POLL_LARGE = 0.02  # 1 GiB: a poll costs the sender ~0.4 ms of CPU; ≤ 1 % of the time
HOST = "127.0.0.1"
#: The bench sends thousands of letters in minutes: above the receiver's default
#: hourly allowance from one peer (1,000), which would refuse the rest.
SETTINGS = {**harness.TEST_SETTINGS, "peer_documents_per_hour": 1_000_000}


def label(size: int) -> str:
    return LABELS.get(size, f"{size} B")


def parse_size(text: str) -> int:
    if text in SIZES:
        return SIZES[text]
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text} (10K, 100M, 1G ...)")
    return int(match.group(1)) * {"": 1, "K": KiB, "M": MiB, "G": GiB}[match.group(2)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- the local API, kept alive --------------------------------------------------------------


class Api:
    """JSON over the daemon's unix socket; one kept-alive connection for GETs (the polls)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: UnixHTTPConnection | None = None

    def _exchange(self, conn: UnixHTTPConnection, method: str, route: str, body: Any) -> Any:
        headers = {"Host": "pli", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, route, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {route}: HTTP {response.status} {data[:400]!r}")
        return json.loads(data) if data else None

    def get(self, route: str) -> Any:
        for attempt in range(2):
            if self._conn is None:
                self._conn = UnixHTTPConnection(self.path, timeout=60)
            try:
                return self._exchange(self._conn, "GET", route, None)
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def post(self, route: str, body: Any, timeout: float = 600.0) -> Any:
        """A fresh connection: a POST is never retried (it would queue twice)."""
        conn = UnixHTTPConnection(self.path, timeout=timeout)
        try:
            return self._exchange(conn, "POST", route, body)
        finally:
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- one daemon process ---------------------------------------------------------------------


class Daemon(harness.DaemonProcess):
    """One practice: a temporary home, a loopback port, a ``python -m p2p daemon`` process."""

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        super().__init__(
            root / name,
            listen=f"{HOST}:{harness.free_port(HOST)}",
            log=root / f"{name}.log",
            env=env,
        )
        self.name = name
        harness.prepare_home(self.home, f"Dr {name.title()} Bench", settings=SETTINGS, env=env)
        self.api = Api(self.home / API_SOCKET)
        self.identity: dict[str, Any] = {}

    def start(self, timeout: float = 30.0) -> harness.Ready:
        ready = super().start(timeout)
        self.identity = self.api.get("/v1/identity")
        return ready

    def stop(self, timeout: float = 15.0) -> int | None:
        self.api.close()
        return super().stop(timeout)

    def trust(self, other: Daemon) -> None:
        self.api.post("/v1/peers", {"card": other.identity["card"], "address": other.address})

    def delivered(self) -> int:
        count: int = self.api.get("/v1/status")["delivered"]
        return count

    def _status_kib(self, key: str) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
        return float("nan")

    def peak_rss_mb(self) -> float:
        return self._status_kib("VmHWM") * 1024 / MB

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where not allowed."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def forget(self, doc_id: str) -> None:
        """Delete a delivered envelope's files (the bench's disk, not the daemon's state)."""
        for path in self.home.glob(f"documents/*/*{doc_id}.pli"):
            path.unlink(missing_ok=True)


# --- pli measurements -----------------------------------------------------------------------


@dataclass
class Sent:
    doc_id: str
    seal: float
    transfer: float  # queued → receipt stored
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)  # A sealing, A sending, B


@dataclass
class SizeResult:
    size: int
    runs: list[Sent] = field(default_factory=list)
    rss: tuple[float, float] = (0.0, 0.0)
    rss_reset: bool = True
    apart: tuple[float, float] | None = None  # seal alone (B down), transfer alone
    cli: float | None = None  # pli send FILE --wait, process start to exit

    def whole(self) -> float:
        """Median file → receipt seconds (POST start → receipt stored)."""
        return statistics.median(run.seal + run.transfer for run in self.runs)

    def transfer(self) -> float:
        return statistics.median(run.transfer for run in self.runs)

    def seal(self) -> float:
        return statistics.median(run.seal for run in self.runs)

    def mbps(self) -> list[float]:
        return [self.size / run.transfer / MB for run in self.runs]

    def cpu(self) -> tuple[float, float, float]:
        """Median CPU seconds: A sealing, A sending (incl. the status polls), B receiving."""
        return (
            statistics.median(run.cpu[0] for run in self.runs),
            statistics.median(run.cpu[1] for run in self.runs),
            statistics.median(run.cpu[2] for run in self.runs),
        )

    def mbps_with_seal(self) -> list[float]:
        return [self.size / (run.seal + run.transfer) / MB for run in self.runs]


class Pair:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.a = Daemon(root, "alice", env)
        self.b = Daemon(root, "bruno", env)

    def start(self) -> None:
        self.a.start()
        self.b.start()
        self.a.trust(self.b)
        self.b.trust(self.a)

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()

    def queue(self, path: Path, kind: str) -> str:
        body = {"to": [self.b.identity["peer_id"]], "kind": kind, "files": [{"path": str(path)}]}
        doc_id: str = self.a.api.post("/v1/documents", body)["id"]
        return doc_id

    def wait_delivered(self, count: int, interval: float, timeout: float) -> float:
        """Poll until A's delivered count reaches ``count``; the time it was seen."""
        deadline = time.perf_counter() + timeout
        while True:
            if self.a.delivered() >= count:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise RuntimeError(
                    f"no receipt in {timeout:.0f} s; see the logs next to {self.a.home}"
                )
            time.sleep(interval)

    def send(self, path: Path, kind: str, interval: float, timeout: float) -> Sent:
        base = self.a.delivered()
        cpu_a, cpu_b = self.a.cpu_seconds(), self.b.cpu_seconds()
        started = time.perf_counter()
        doc_id = self.queue(path, kind)
        queued = time.perf_counter()
        cpu_sealed = self.a.cpu_seconds()
        done = self.wait_delivered(base + 1, interval, timeout)
        cpu = (cpu_sealed - cpu_a, self.a.cpu_seconds() - cpu_sealed, self.b.cpu_seconds() - cpu_b)
        return Sent(doc_id, queued - started, done - queued, cpu)

    def poll_round_trip(self) -> float:
        times = []
        for _ in range(200):
            started = time.perf_counter()
            self.a.delivered()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def files(self, path: Path, size: int, runs: int) -> SizeResult:
        result = SizeResult(size)
        result.rss_reset = self.a.reset_peak() and self.b.reset_peak()
        interval = POLL_LETTER if size <= MiB else POLL_FILE if size < GiB else POLL_LARGE
        timeout = 120 + size / 20e6
        for index in range(runs):
            sent = self.send(path, "file", interval, timeout)
            result.runs.append(sent)
            log(
                f"# {label(size)} run {index + 1}: seal {sent.seal:.3f} s, queued → receipt "
                f"{sent.transfer:.3f} s ({size / sent.transfer / MB:.0f} MB/s)"
            )
            if size >= MiB:
                self.a.forget(sent.doc_id)
                self.b.forget(sent.doc_id)
        result.rss = (self.a.peak_rss_mb(), self.b.peak_rss_mb())
        return result

    def latency(self, path: Path, count: int) -> list[Sent]:
        return [self.send(path, "letter", POLL_LETTER, 60) for _ in range(count)]

    def queue_many(self, path: Path, count: int, clients: int) -> None:
        """``count`` letters posted by ``clients`` threads, each one POST after the other."""
        errors: list[BaseException] = []

        def client(share: int) -> None:
            try:
                for _ in range(share):
                    self.queue(path, "letter")
            except BaseException as exc:  # reported by the caller
                errors.append(exc)

        shares = [count // clients + (i < count % clients) for i in range(clients)]
        threads = [threading.Thread(target=client, args=(n,)) for n in shares if n]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def burst(self, path: Path, count: int, clients: int) -> Burst:
        """Queue ``count`` letters while B is running, then wait for the last receipt."""
        base = self.a.delivered()
        cpu = self.a.cpu_seconds(), self.b.cpu_seconds()
        started = time.perf_counter()
        self.queue_many(path, count, clients)
        queued = time.perf_counter()
        done = self.wait_delivered(base + count, POLL_FILE, 60 + count)
        used = self.a.cpu_seconds() - cpu[0], self.b.cpu_seconds() - cpu[1]
        return Burst(count, done - started, queued - started, done - queued, used)

    def drain(self, path: Path, count: int, clients: int) -> Burst:
        """Queue ``count`` letters while B is stopped; restart B; time the delivery alone.

        The clock starts when A is told B is back (``POST /v1/peers`` wakes its
        outbox at once, as discovery does) and stops at the last receipt seen.
        """
        self.b.stop()
        base = self.a.delivered()
        started = time.perf_counter()
        self.queue_many(path, count, clients)
        queued = time.perf_counter()
        self.b.start()
        self.b.reset_peak()
        self.a.reset_peak()
        woken = time.perf_counter()
        cpu = self.a.cpu_seconds(), self.b.cpu_seconds()
        self.a.trust(self.b)
        done = self.wait_delivered(base + count, POLL_FILE, 60 + count)
        used = self.a.cpu_seconds() - cpu[0], self.b.cpu_seconds() - cpu[1]
        return Burst(count, done - woken, queued - started, done - woken, used)

    def apart(self, path: Path, size: int) -> tuple[float, float]:
        """The seal alone (B stopped), then the transfer alone (B back → receipt)."""
        self.b.stop()
        base = self.a.delivered()
        started = time.perf_counter()
        doc_id = self.queue(path, "file")
        sealed = time.perf_counter()
        self.b.start()
        woken = time.perf_counter()
        self.a.trust(self.b)
        interval = POLL_FILE if size < GiB else POLL_LARGE
        done = self.wait_delivered(base + 1, interval, 120 + size / 20e6)
        self.a.forget(doc_id)
        self.b.forget(doc_id)
        log(f"# {label(size)} apart: seal {sealed - started:.3f} s, transfer {done - woken:.3f} s")
        return sealed - started, done - woken

    def cli_send(self, path: Path, size: int) -> float:
        """``pli send B FILE --wait`` as a person runs it: process start → exit."""
        command = harness.pli_command(
            self.a.home, "--json", "send", self.b.identity["peer_id"], str(path), "--wait"
        )
        base = self.a.delivered()
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, env=self.a.env)
        elapsed = time.perf_counter() - started
        if self.a.delivered() != base + 1:
            raise RuntimeError("pli send --wait returned before the receipt was stored")
        doc_id = json.loads(done.stdout.splitlines()[0])["id"]
        self.a.forget(doc_id)
        self.b.forget(doc_id)
        log(f"# {label(size)} pli send --wait: {elapsed:.3f} s")
        return elapsed


@dataclass
class Burst:
    count: int
    total: float  # the rate's denominator
    queueing: float  # first POST → last POST answered
    drain: float  # → last receipt
    cpu: tuple[float, float] = (0.0, 0.0)  # CPU seconds of A and B over ``total``

    def cpu_per_letter(self) -> str:
        """CPU per letter, each daemon: steadier than wall-clock time on a shared machine."""
        a, b = (1000 * seconds / self.count for seconds in self.cpu)
        return f"CPU per letter A {a:.2f} ms, B {b:.2f} ms"

    @property
    def rate(self) -> float:
        return self.count / self.total


@contextlib.contextmanager
def profiled(pair: Pair, folder: Path | None) -> Iterator[None]:
    """py-spy record both daemons (collapsed stacks, all threads)."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(daemon.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--threads",
                "-o",
                str(folder / f"{daemon.name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for daemon in (pair.a, pair.b)
    ]
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(60)


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            out.write(block)
            left -= len(block)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- magic-wormhole (inside a lo-only network namespace) ---------------------------------


def wormhole_available() -> str | None:
    """None if the wormhole side can run, else why not."""
    bindir = Path(sys.executable).parent
    if not (bindir / "wormhole").exists() or not (bindir / "twist").exists():
        return "the bench extra is not installed (pip install -e '.[bench]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is missing (util-linux, iproute2)"
    if os.geteuid() != 0:
        return "unshare -n needs root"
    return None


def run_wormhole(
    files: dict[int, Path], runs: int, small: Path, small_runs: int, work: Path
) -> dict[str, Any]:
    """Run the wormhole side in a fresh lo-only network namespace; its JSON result."""
    spec = {
        "files": {str(size): str(path) for size, path in files.items()},
        "runs": runs,
        "small": str(small),
        "small_runs": small_runs,
        "work": str(work),
    }
    command = [
        "unshare",
        "-n",
        "--",
        "sh",
        "-c",
        'ip link set lo up && exec "$@"',
        "_",
        sys.executable,
        str(Path(__file__).resolve()),
        "--wormhole-worker",
        json.dumps(spec),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"the wormhole side failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check_lo_only() -> None:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    addresses = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out.stdout)
    if addresses != [HOST]:
        sys.exit(f"refusing to run wormhole: IPv4 addresses {addresses} (want only {HOST})")


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


@contextlib.contextmanager
def _relays(work: Path) -> Iterator[list[str]]:
    """A mailbox and a transit relay on 127.0.0.1; the wormhole base arguments."""
    twist = str(Path(sys.executable).parent / "twist")
    mailbox, transit = harness.free_port(HOST), harness.free_port(HOST)
    procs = []
    with open(work / "relays.log", "wb") as out:
        for command in (
            [
                twist,
                "wormhole-mailbox",
                "--port",
                f"tcp:{mailbox}:interface={HOST}",
                "--channel-db",
                str(work / "mailbox.sqlite"),
            ],
            [twist, "transitrelay", "--port", f"tcp:{transit}:interface={HOST}"],
        ):
            procs.append(subprocess.Popen(command, cwd=work, stdout=out, stderr=out))
    try:
        _wait_port(mailbox)
        _wait_port(transit)
        wormhole = str(Path(sys.executable).parent / "wormhole")
        yield [
            wormhole,
            "--relay-url",
            f"ws://{HOST}:{mailbox}/v1",
            "--transit-helper",
            f"tcp:{HOST}:{transit}",
        ]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _reap(proc: subprocess.Popen[bytes], ends: dict[str, tuple[float, float]], key: str) -> None:
    """Wait for a child with wait4: its end time and its own peak RSS (MB)."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    ends[key] = (time.perf_counter(), usage.ru_maxrss * 1024 / MB)


def _rx_file_span(path: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for event in json.loads(path.read_text()):
            if event["name"] == "rx file" and event.get("stop"):
                return float(event["stop"] - event["start"])
    return None


def _wormhole_once(base: list[str], source: Path, work: Path) -> dict[str, float | None]:
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    ends: dict[str, tuple[float, float]] = {}
    with open(run / "send.log", "wb") as send_log, open(run / "recv.log", "wb") as recv_log:
        started = time.perf_counter()
        sender = subprocess.Popen(
            [*base, "send", "--hide-progress", "--no-qr", str(source)],
            stdout=send_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        reapers = [threading.Thread(target=_reap, args=(sender, ends, "send"))]
        reapers[0].start()
        code = None
        while code is None:
            if time.perf_counter() - started > 60 or "send" in ends:
                raise RuntimeError(f"no code from the sender: {(run / 'send.log').read_text()}")
            found = re.search(r"Wormhole code is: (\S+)", (run / "send.log").read_text())
            code = found.group(1) if found else None
            if code is None:
                time.sleep(0.002)
        receiver = subprocess.Popen(
            [
                *base,
                "--dump-timing",
                str(run / "recv.json"),
                "receive",
                "--accept-file",
                "--hide-progress",
                "-o",
                str(run / "out.bin"),
                code,
            ],
            stdout=recv_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        reapers.append(threading.Thread(target=_reap, args=(receiver, ends, "recv")))
        reapers[1].start()
        for reaper in reapers:
            reaper.join(1800)
    if sender.returncode or receiver.returncode:
        raise RuntimeError(
            "wormhole failed:\n" + (run / "send.log").read_text() + (run / "recv.log").read_text()
        )
    if (run / "out.bin").stat().st_size != source.stat().st_size:
        raise RuntimeError("wormhole delivered the wrong size")
    result = {
        "e2e": max(ends["send"][0], ends["recv"][0]) - started,
        "rx_file": _rx_file_span(run / "recv.json"),
        "rss_send": ends["send"][1],
        "rss_recv": ends["recv"][1],
    }
    shutil.rmtree(run, ignore_errors=True)
    return result


def wormhole_worker(spec_text: str) -> None:
    """Inside the namespace: run the transfers, print one JSON line."""
    _check_lo_only()
    spec = json.loads(spec_text)
    work = Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"sizes": {}, "small": []}
    with _relays(work) as base:
        for size, path in spec["files"].items():
            rows = []
            for index in range(spec["runs"]):
                row = _wormhole_once(base, Path(path), work)
                rows.append(row)
                log(f"# wormhole {label(int(size))} run {index + 1}: e2e {row['e2e']:.3f} s")
            out["sizes"][size] = rows
        for _ in range(spec["small_runs"]):
            out["small"].append(_wormhole_once(base, Path(spec["small"]), work)["e2e"])
    print(json.dumps(out))


# --- report ------------------------------------------------------------------------------------


def goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


def spread(values: list[float], digits: int = 0) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (
        f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / "
        f"{max(values):.{digits}f}"
    )


def _verdicts(res: SizeResult) -> list[str]:
    verdicts = []
    goal_mbps = GOAL_MBPS.get(res.size)
    if goal_mbps is not None:
        ok = res.size / res.whole() / MB >= goal_mbps
        verdicts.append(f"≥ {goal_mbps:.0f} MB/s: {goal(ok)}")
    if res.cli is not None and res.size == GiB:
        verdicts.append(f"CLI ≤ +{GOAL_CLI:.0%}: {goal(res.cli <= res.whole() * (1 + GOAL_CLI))}")
    verdicts.append(f"RSS ≤ {GOAL_RSS_MB:.0f}: {goal(max(res.rss) <= GOAL_RSS_MB)}")
    return verdicts


def _size_row(res: SizeResult) -> str:
    digits = 0 if res.size > MiB else 2
    whole = [res.size / (run.seal + run.transfer) / MB for run in res.runs]
    apart = f"{res.apart[0]:.3f} / {res.apart[1]:.3f}" if res.apart else "–"
    cli = "–"
    if res.cli is not None:
        cli = f"{res.cli:.3f} ({(res.cli / res.whole() - 1) * 100:+.0f} %)"
    rss_note = "" if res.rss_reset else " (lifetime)"
    return (
        f"| {label(res.size)} | {len(res.runs)} | {res.whole():.3f} | {spread(whole, digits)} "
        f"| {res.seal():.3f} | {res.transfer():.3f} | {apart} | {cli} "
        f"| {res.rss[0]:.1f} / {res.rss[1]:.1f}{rss_note} "
        f"| {' / '.join(f'{cpu:.2f}' for cpu in res.cpu())} | {'; '.join(_verdicts(res))} |"
    )


def report(
    results: list[SizeResult],
    letters: list[Sent],
    burst: Burst | None,
    drain: Burst | None,
    worm: dict[str, Any] | None,
    whole_rss: tuple[float, float],
    poll: float,
    clients: int,
) -> None:
    print()
    print("## pli, A → B on 127.0.0.1 (two daemon processes)")
    print()
    print(
        "| size | runs | file → receipt s (median) | file → receipt MB/s min / median / max "
        "| POST (sealed, queued) s | queued → receipt s | apart: seal alone / transfer alone s "
        "| pli send --wait s | peak RSS A / B MB | CPU s: A until queued / A after / B | goal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for res in results:
        print(_size_row(res))
    print()
    if letters:
        ms = [(sent.seal + sent.transfer) * 1000 for sent in letters]
        median = statistics.median(ms)
        print(
            f"10 KiB letter, POST → receipt (n={len(ms)}, one after the other): "
            f"median {median:.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
            f"min {min(ms):.2f} ms, max {max(ms):.2f} ms; of which the POST (sealed, queued) "
            f"median {statistics.median(s.seal for s in letters) * 1000:.2f} ms — goal median "
            f"≤ {GOAL_LATENCY_MS:.0f} ms: {goal(median <= GOAL_LATENCY_MS)}"
        )
    if drain is not None:
        print(
            f"{drain.count} × 10 KiB letters queued ({clients} clients) while B was down, then "
            "delivered with "
            f"receipts: {drain.rate:.0f} letters/s (B back → last receipt {drain.total:.2f} s; "
            f"queueing took {drain.queueing:.2f} s = {drain.count / drain.queueing:.0f} POST/s; "
            f"delivery: {drain.cpu_per_letter()}) "
            f"— goal ≥ {GOAL_LETTERS:.0f}/s: {goal(drain.rate >= GOAL_LETTERS)}"
        )
    if burst is not None:
        print(
            f"{burst.count} × 10 KiB letters queued ({clients} clients) and delivered at once "
            "(B up): "
            f"{burst.rate:.0f} letters/s (first POST → last receipt {burst.total:.2f} s; "
            f"queueing {burst.queueing:.2f} s = {burst.count / burst.queueing:.0f} POST/s; "
            f"last POST → last receipt {burst.drain:.2f} s; {burst.cpu_per_letter()}) "
            f"— goal ≥ {GOAL_LETTERS:.0f}/s: {goal(burst.rate >= GOAL_LETTERS)}"
        )
    print(
        f"peak RSS, highest of all the sections (the letters' included): "
        f"A {whole_rss[0]:.1f} MB, B {whole_rss[1]:.1f} MB "
        f"— goal ≤ {GOAL_RSS_MB:.0f} MB: {goal(max(whole_rss) <= GOAL_RSS_MB)}"
    )
    print(
        f"completion polling: GET /v1/status, kept-alive unix socket, one poll "
        f"{poll * 1000:.2f} ms (idle median), sleeping {POLL_LETTER * 1000:.0f} ms (letters) / "
        f"{POLL_FILE * 1000:.0f} ms (files < 1 GiB) / {POLL_LARGE * 1000:.0f} ms (1 GiB) "
        "between polls"
    )
    print(
        f"load average now {os.getloadavg()[0]:.2f} (2 vCPUs shared by both daemons, the bench "
        "and anything else running: wall-clock figures vary from run to run)"
    )
    print(
        f"goals (issue 10), file → receipt with the seal: 1 GiB ≥ {GOAL_MBPS[GiB]:.0f} MB/s "
        f"and ≥ {GOAL_WORMHOLE:.0f}× wormhole, 100 MiB ≥ {GOAL_MBPS[100 * MiB]:.0f} MB/s "
        f"({ANCHORS}); pli send --wait within {GOAL_CLI:.0%}; letter median ≤ "
        f"{GOAL_LATENCY_MS:.0f} ms; ≥ {GOAL_LETTERS:.0f} letters/s; peak RSS ≤ "
        f"{GOAL_RSS_MB:.0f} MB per daemon"
    )
    if worm is None:
        return
    print()
    print("## magic-wormhole 0.24, same files, lo-only namespace, local mailbox + transit relay")
    print()
    print(
        "| size | runs | e2e s (median) | e2e MB/s (median) | data-phase MB/s (median) "
        "| peak RSS send / recv MB | speed ratio: pli file → receipt ÷ wormhole e2e "
        "| pli queued → receipt ÷ wormhole e2e |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    by_size = {res.size: res for res in results}
    for size_text, rows in worm["sizes"].items():
        size = int(size_text)
        e2e = statistics.median(row["e2e"] for row in rows)
        spans = [row["rx_file"] for row in rows if row["rx_file"]]
        data = f"{size / statistics.median(spans) / MB:.1f}" if spans else "–"
        rss = (
            statistics.median(r["rss_send"] for r in rows),
            statistics.median(r["rss_recv"] for r in rows),
        )
        ours = by_size.get(size)
        ratio = ratio_queued = "–"
        if ours is not None:
            ratio = f"{e2e / ours.whole():.1f}×"
            if size == GiB:
                ratio += f" (≥ {GOAL_WORMHOLE:.0f}×: {goal(e2e / ours.whole() >= GOAL_WORMHOLE)})"
            ratio_queued = f"{e2e / ours.transfer():.1f}×"
        digits = 1 if size >= MiB else 3
        print(
            f"| {label(size)} | {len(rows)} | {e2e:.3f} | {size / e2e / MB:.{digits}f} | {data} "
            f"| {rss[0]:.1f} / {rss[1]:.1f} | {ratio} | {ratio_queued} |"
        )
    small = worm["small"]
    if small and letters:
        per = statistics.median(small)
        ours_ms = statistics.median(sent.seal + sent.transfer for sent in letters)
        print()
        print(
            f"10 KiB one after the other: wormhole {per * 1000:.0f} ms per transfer "
            f"(n={len(small)}, {1 / per:.2f} transfers/s) vs pli letter median "
            f"{ours_ms * 1000:.2f} ms ({per / ours_ms:.0f}× faster)"
        )
        best = drain or burst
        if best is not None:
            print(
                f"letters/s: pli {best.rate:.0f}/s vs wormhole {1 / per:.2f}/s one after the "
                f"other ({best.rate * per:.0f}×)"
            )


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10K,100M,1G", help="comma-separated: 10K,100M,1G")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument(
        "--letters",
        type=int,
        default=200,
        help="10 KiB letters for the latency figure (default 200; 0 skips)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=1000,
        help="letters queued at once for letters/s (default 1000; 0 skips)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=CLIENTS,
        help=f"clients posting the burst's letters at once (default {CLIENTS})",
    )
    parser.add_argument("--skip-wormhole", action="store_true")
    parser.add_argument(
        "--skip-cli", action="store_true", help="do not time `pli send FILE --wait`"
    )
    parser.add_argument(
        "--wormhole-runs",
        type=int,
        default=None,
        help="runs per size on the wormhole side (default: --runs)",
    )
    parser.add_argument(
        "--malloc-tuned",
        action="store_true",
        help=f"run the daemons with GLIBC_TUNABLES={TUNABLES} (the daemons set similar "
        "values themselves at start, see p2p.daemon.process.tune_malloc: kept to compare)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="py-spy record both daemons during the measurements (collapsed "
        "stacks in DIR/alice.txt, DIR/bruno.txt; needs py-spy and ptrace)",
    )
    parser.add_argument("--wormhole-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wormhole_worker:
        wormhole_worker(args.wormhole_worker)
        return
    sizes = [parse_size(text) for text in args.sizes.split(",") if text]
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if args.malloc_tuned:
        env["GLIBC_TUNABLES"] = TUNABLES
    import aiohttp

    malloc = f"GLIBC_TUNABLES={TUNABLES}" if args.malloc_tuned else "default environment"
    print(
        f"# bench/transfer.py — {time.strftime('%Y-%m-%d %H:%M:%S')}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, aiohttp "
        f"{aiohttp.__version__}, daemons' malloc: {malloc}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    root = Path(tempfile.mkdtemp(prefix="pli-bench-"))
    pair = Pair(root, env)
    results: list[SizeResult] = []
    letters: list[Sent] = []
    burst = drain = None
    worm = None
    try:
        source = root / "src"
        source.mkdir()
        files = {}
        for size in sizes:
            files[size] = source / f"{label(size).replace(' ', '')}.bin"
            make_file(files[size], size)
        letter = source / "letter-10KiB.bin"
        make_file(letter, 10 * KiB)
        pair.start()
        cold = pair.send(letter, "letter", POLL_LETTER, 60)
        log(f"# warm-up letter (dial + handshake): {cold.transfer * 1000:.1f} ms")
        poll = pair.poll_round_trip()
        with profiled(pair, args.profile):
            for size in sizes:
                result = pair.files(files[size], size, args.runs)
                if size >= MiB:
                    result.apart = pair.apart(files[size], size)
                    if not args.skip_cli:
                        result.cli = pair.cli_send(files[size], size)
                results.append(result)
            if args.letters or args.burst:
                pair.a.reset_peak()
                pair.b.reset_peak()
            if args.letters:
                letters = pair.latency(letter, args.letters)
            if args.burst:
                burst = pair.burst(letter, args.burst, args.clients)
                drain = pair.drain(letter, args.burst, args.clients)
        letters_rss = (pair.a.peak_rss_mb(), pair.b.peak_rss_mb())
        whole = (
            max([letters_rss[0], *(res.rss[0] for res in results)]),
            max([letters_rss[1], *(res.rss[1] for res in results)]),
        )
        if any(not res.rss_reset for res in results):
            log("# note: VmHWM could not be reset; per-size RSS is the lifetime peak")
        pair.stop()
        why = None if not args.skip_wormhole else "--skip-wormhole"
        why = why or wormhole_available()
        if why is None:
            runs = args.wormhole_runs or args.runs
            worm = run_wormhole(files, runs, letter, min(max(args.runs, 3), 10), root / "wormhole")
        else:
            log(f"# wormhole side skipped: {why}")
        report(results, letters, burst, drain, worm, whole, poll, args.clients)
    finally:
        pair.stop()
        if args.keep:
            log(f"# kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
