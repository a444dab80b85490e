"""Envelope throughput and memory, against this machine's raw secretstream speed.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python -m bench.envelope                 # 1 MiB, 100 MiB, 1 GiB
    .venv/bin/python -m bench.envelope --sizes 1M,100M # a subset
    .venv/bin/python -m bench.envelope --malloc-tuned  # children run with GLIBC_TUNABLES

Every measurement runs in a fresh child process so that its peak RSS
(VmHWM, see ``peak_rss_mb``) belongs to that one operation and size:

- ``raw``: PyNaCl secretstream push, then pull, of 256 MiB in 64 KiB chunks
  (pli/1's record cipher; same method as the anchors file), kept as the
  ceiling the goals below were set against;
- ``primitives``: the AEADs and hashes pli/2 chose from (``bench/primitives.py``:
  AEGIS-256, AEGIS-128L, ChaCha20-Poly1305, AES-256-GCM, SHA-256, BLAKE2b),
  so the choice can be re-checked on another machine;
- ``seal``: ``protocol.seal`` of one file from a generator that yields one
  random 1 MiB block over and over (a source that costs nothing); the pieces
  are discarded;
- ``open``: ``protocol.open_envelope`` of an envelope file in /tmp (made by a
  separate child beforehand, so it is in the page cache), plaintext sink
  discarding.

Throughput is the median over several runs (MB = 10^6 bytes of plaintext per
second). Goals: seal and open at ≥ 70 % of raw push / pull; peak RSS < 64 MB
while handling 1 GiB. The machine is a shared 2-vCPU VM, so the load average is
printed with the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nacl.bindings as sodium

from bench import primitives
from protocol import DocumentMeta, FileEntry, LocalIdentity, open_envelope, seal

MiB = 1024 * 1024
CHUNK = 64 * 1024
RAW_SIZE = 256 * MiB
SIZES = {"1M": MiB, "100M": 100 * MiB, "1G": 1024 * MiB}
RUNS = {MiB: 30, 100 * MiB: 9, 1024 * MiB: 4}
SPEED_GOAL = 0.70
RSS_GOAL_MB = 64
NOT_AFTER = 2_000_000_000


def person(n: int) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=NOT_AFTER
    )


SENDER, RECIPIENT = person(10), person(20)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM).

    Not ``ru_maxrss``: Linux carries that over from the parent across
    fork + exec, so every child would report at least the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


# --- children ------------------------------------------------------------------------


def child_raw() -> dict[str, object]:
    block = os.urandom(CHUNK)
    count = RAW_SIZE // CHUNK
    key = os.urandom(32)
    pushes, pulls = [], []
    for _ in range(1 + 5):  # one warm-up run, then five timed; the output is discarded
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
        started = time.perf_counter()
        for _ in range(count):
            sodium.crypto_secretstream_xchacha20poly1305_push(state, block)
        pushes.append(mbps(RAW_SIZE, time.perf_counter() - started))
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    ciphertexts = [
        sodium.crypto_secretstream_xchacha20poly1305_push(state, block) for _ in range(count)
    ]
    for _ in range(1 + 5):
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
        started = time.perf_counter()
        for ciphertext in ciphertexts:
            sodium.crypto_secretstream_xchacha20poly1305_pull(state, ciphertext)
        pulls.append(mbps(RAW_SIZE, time.perf_counter() - started))
    return {"push": pushes[1:], "pull": pulls[1:]}


_PROBE = os.urandom(MiB)  # small, so it barely moves a child's peak RSS


def capacity() -> float:
    """Two threads hashing at once against one: 2.0 when two CPUs are really free.

    This VM's second vCPU is sometimes taken by the host; the hashing thread
    only helps when it is free, so each child probes before and after its runs.
    """

    def work() -> None:
        digest = hashlib.sha256()
        for _ in range(100):
            digest.update(_PROBE)

    started = time.perf_counter()
    work()
    single = time.perf_counter() - started
    threads = [threading.Thread(target=work) for _ in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 2 * single / (time.perf_counter() - started)


def document(size: int) -> DocumentMeta:
    return DocumentMeta(
        document_id=bytes(16),
        created_at=1_764_000_000,
        kind="file",
        sender=SENDER.public,
        recipients=(RECIPIENT.public,),
        files=(FileEntry("scan.bin", size),),
        metadata={"patient": "Bench, Test"},
    )


def source(size: int, block: bytes) -> Iterator[bytes]:
    for start in range(0, size, len(block)):
        yield block[: size - start]


def sealed_pieces(size: int, block: bytes) -> Iterator[bytes]:
    card = RECIPIENT.card(1, name="Dr Bench")
    return seal(SENDER, [card], document(size), [source(size, block)])


def timed_runs(size: int, operation: Callable[[], object]) -> dict[str, object]:
    """Capacity probe, one warm-up, RUNS[size] timed runs, capacity probe."""
    before = capacity()
    operation()
    runs = []
    for _ in range(RUNS[size]):
        started = time.perf_counter()
        operation()
        runs.append(mbps(size, time.perf_counter() - started))
    return {"runs": runs, "capacity": [before, capacity()], "rss": peak_rss_mb()}


def child_seal(size: int) -> dict[str, object]:
    block = os.urandom(MiB)

    def run() -> None:
        for _piece in sealed_pieces(size, block):
            pass

    return timed_runs(size, run)


def child_prepare(size: int, path: str) -> dict[str, object]:
    block = os.urandom(MiB)
    with open(path, "wb") as out:
        for piece in sealed_pieces(size, block):
            out.write(piece)
    return {"bytes": os.path.getsize(path)}


def child_open(size: int, path: str) -> dict[str, object]:
    def discard(_index: int, _data: bytes) -> None:
        return None

    def run() -> None:
        with open(path, "rb", buffering=0) as envelope:
            verified = open_envelope(envelope, RECIPIENT, discard)
        assert verified.meta.files[0].size == size

    return timed_runs(size, run)


def child(argv: list[str]) -> None:
    kind, *rest = argv
    if kind == "raw":
        result = child_raw()
    elif kind == "primitives":
        result = primitives.measure()
    elif kind == "seal":
        result = child_seal(int(rest[0]))
    elif kind == "prepare":
        result = child_prepare(int(rest[0]), rest[1])
    else:
        result = child_open(int(rest[0]), rest[1])
    print(json.dumps(result))


# --- parent ----------------------------------------------------------------------------


def run_child(env: dict[str, str], *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.envelope", "--child", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(runs: list[float]) -> str:
    return f"{min(runs):.0f} / {statistics.median(runs):.0f} / {max(runs):.0f}"


def table_row(operation: str, label: str, result: dict[str, Any], ceiling: float) -> str:
    runs: list[float] = result["runs"]
    share = statistics.median(runs) / ceiling
    speed_ok = label == "1M" or share >= SPEED_GOAL
    rss_ok = label != "1G" or result["rss"] < RSS_GOAL_MB
    before, after = result["capacity"]
    return (
        f"| {operation} | {label} | {spread(runs)} | {share:.0%} | {result['rss']:.1f} "
        f"| {before:.2f} / {after:.2f} | {'met' if speed_ok and rss_ok else 'MISSED'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,100M,1G")
    parser.add_argument("--malloc-tuned", action="store_true")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    env = dict(os.environ)
    if args.malloc_tuned:
        env["GLIBC_TUNABLES"] = (
            "glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=134217728"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    raw = run_child(env, "raw")
    push, pull = statistics.median(raw["push"]), statistics.median(raw["pull"])
    lines = []
    for label in args.sizes.split(","):
        size = SIZES[label]
        sealed = run_child(env, "seal", str(size))
        lines.append(table_row("seal", label, sealed, push))
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "envelope.bin")
            run_child(env, "prepare", str(size), path)
            opened = run_child(env, "open", str(size), path)
        lines.append(table_row("open", label, opened, pull))
    print()
    print(
        f"raw secretstream, 64 KiB chunks, 256 MiB (MB/s min / median / max): "
        f"push {spread(raw['push'])}, pull {spread(raw['pull'])}"
    )
    print()
    print(
        "| operation | size | MB/s min / median / max | median % of raw | peak RSS (MB) "
        "| 2-thread capacity before / after | goal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))
    print()
    print("pli/2's candidate primitives (one thread, bytes in and out, as pli calls them):")
    print(primitives.table(run_child(env, "primitives")))
    print()
    print(f"goals: seal and open ≥ {SPEED_GOAL:.0%} of raw push / pull at 100 MiB and 1 GiB")
    print(f"       (needs the 2nd CPU free: capacity ≈ 2); peak RSS < {RSS_GOAL_MB} MB at 1 GiB")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
