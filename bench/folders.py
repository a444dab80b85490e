"""Folders: N letters dropped at once into the outbox folder, to the other inbox folder.

    .venv/bin/python -m bench.folders [--letters 1000] [--formats hprim,xdm] [--timeout 600]
    .venv/bin/python -m bench.folders --fsyncs [--letters 200]
    .venv/bin/python -m bench.folders --large 1024 [--large 1]

Two ``pli daemon`` processes on loopback, paired. A watches an outbox folder, B
writes an inbox folder (``--formats``). ``--letters`` letters of 1 KiB, each with
its JSON sidecar, are written as ``.part`` and renamed into A's folder all at once
(as a practice software flushing its queue). The bench times, from the rename of
the last one:

- **claimed**: every letter moved out of A's folder into ``sent/`` (queued);
- **delivered**: every letter in B's inbox (``GET /v1/inbox``), receipts back;
- **written**: every letter's HPRIM file in B's inbox folder.

The anchor is pli's own API path on a fresh pair: the same letters queued by
``POST /v1/documents`` one after the other, timed to the last one in B's inbox;
the folder's overhead is the difference. Counts and time are bounded
(``--timeout``). Run it under the suite lock:
``flock /work/locks/suite .venv/bin/python -m bench.folders``.

``--fsyncs`` counts instead of timing: ``strace -f -c -e trace=fsync,fdatasync``
attached to each daemon while the letters go through the folders, then while the
same letters go through the API (the anchor), per letter: the difference is what
the folders cost in fsyncs.

``--large MIB`` (repeatable) sends one file of that size (random bytes: it does
not compress, as a scanned PDF) through A's outbox folder into B's inbox folder
in every format (its file, HPRIM, XDM zip, FHIR bundle) and reports each daemon's
peak RSS (VmHWM) and the time: memory must not grow with the size, so give a small
size too (``--large 1 --large 1024``) as the anchor of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.storm import peak_rss_mb
from p2p.cli.practice import PracticeProcess, kill_all, wait_until

LETTER = 1024


def pair(root: Path, **b_folders: object) -> tuple[PracticeProcess, PracticeProcess]:
    folders = {"stable_seconds": 0, "poll_seconds": 0.2}
    a = PracticeProcess(
        root / "a", "Dr Alice Martin", folders={**folders, "outbox": str(root / "out")}
    )
    b = PracticeProcess(root / "b", "Dr Bob Durand", folders={**folders, **b_folders})
    a.start()
    b.start()
    a.trust(b)
    b.trust(a)
    return a, b


def drop(out: Path, count: int) -> float:
    """Write every letter as .part with its sidecar, then rename them all; the time after."""
    out.mkdir(exist_ok=True)
    for n in range(count):
        sidecar = {"colleague": "Dr Bob Durand", "subject": f"Courrier {n}"}
        (out / f"lettre-{n:05d}.txt.json").write_text(json.dumps(sidecar), encoding="utf-8")
        (out / f"lettre-{n:05d}.txt.part").write_bytes(n.to_bytes(8, "big") * (LETTER // 8))
    for n in range(count):
        (out / f"lettre-{n:05d}.txt.part").rename(out / f"lettre-{n:05d}.txt")
    return time.monotonic()


def count_files(folder: Path, suffix: str) -> int:
    return sum(1 for _ in folder.glob(f"*{suffix}")) if folder.exists() else 0


#: What a run does around the letters' journey (``counting`` below: fsyncs).
Around = Callable[[PracticeProcess, PracticeProcess], contextlib.AbstractContextManager[object]]


def untouched(_a: PracticeProcess, _b: PracticeProcess) -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()


def through_folders(
    root: Path, count: int, formats: list[str], timeout: float, around: Around = untouched
) -> dict[str, float]:
    inbox = root / "in"
    a, b = pair(root, inbox=str(inbox), inbox_formats=formats)
    try:
        with around(a, b):
            return _journey(root, a, b, count, timeout)
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


def _journey(
    root: Path, a: PracticeProcess, b: PracticeProcess, count: int, timeout: float
) -> dict[str, float]:
    inbox = root / "in"
    started = drop(root / "out", count)
    wait_until(lambda: count_files(root / "out" / "sent", ".pli.json") >= count, timeout, 0.05)
    claimed = time.monotonic() - started
    wait_until(lambda: len(b.inbox_ids()) >= count, timeout, 0.2)
    delivered = time.monotonic() - started
    wait_until(lambda: count_files(inbox, ".hpr") >= count, timeout, 0.05)
    written = time.monotonic() - started
    wait_until(lambda: delivered_states(root / "out" / "sent") >= count, timeout, 0.2)
    settled = time.monotonic() - started
    return {"claimed": claimed, "delivered": delivered, "written": written, "settled": settled}


def delivered_states(sent: Path) -> int:
    """How many state files in ``sent/`` say "delivered" (the receipt is back)."""
    return sum(1 for p in sent.glob("*.pli.json") if '"delivered"' in p.read_text("utf-8"))


def through_api(root: Path, count: int, timeout: float, around: Around = untouched) -> float:
    a, b = pair(root)
    try:
        letters = root / "letters"
        letters.mkdir()
        paths = []
        for n in range(count):
            path = letters / f"lettre-{n:05d}.txt"
            path.write_bytes(n.to_bytes(8, "big") * (LETTER // 8))
            paths.append(path)
        with around(a, b):
            started = time.monotonic()
            for path in paths:
                a.send(b, path, kind="letter")
            wait_until(lambda: len(b.inbox_ids()) >= count, timeout, 0.2)
            return time.monotonic() - started
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


# --- counting fsyncs ---------------------------------------------------------------------


class Fsyncs:
    """``strace -c`` attached to both daemons: fsync and fdatasync calls, by daemon."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls: dict[str, int] = {}

    @contextlib.contextmanager
    def __call__(self, a: PracticeProcess, b: PracticeProcess) -> Iterator[None]:
        tracers = {}
        for name, daemon in (("A", a), ("B", b)):
            out = self.folder / f"strace-{name}.txt"
            command = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(out)]
            tracers[name] = (subprocess.Popen([*command, "-p", str(daemon.pid)]), out)
        time.sleep(1.0)  # attached to every thread
        try:
            yield
        finally:
            for name, (tracer, out) in tracers.items():
                tracer.send_signal(signal.SIGINT)
                tracer.wait(30)
                self.calls[name] = _calls(out.read_text(encoding="utf-8"))


def _calls(summary: str) -> int:
    """The calls column of ``strace -c``'s fsync and fdatasync lines."""
    total = 0
    for line in summary.splitlines():
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync") and len(fields) >= 5:
            total += int(fields[3])
    return total


def count_fsyncs(root: Path, count: int, formats: list[str], timeout: float) -> None:
    folders, api = Fsyncs(root), Fsyncs(root)
    through_folders(root / "folders", count, formats, timeout, around=folders)
    through_api(root / "api", count, timeout, around=api)
    print(f"{count} letters of {LETTER} B, inbox formats {','.join(formats)}: fsync + fdatasync")
    print(f"{'path':<36} {'A (sender)':>11} {'B (recipient)':>14} {'per letter':>11}")
    for label, calls in (
        ("outbox folder → inbox folder", folders),
        ("anchor: POST /v1/documents", api),
    ):
        a, b = calls.calls["A"], calls.calls["B"]
        print(f"{label:<36} {a:>11} {b:>14} {(a + b) / count:>11.1f}")
    own_a = (folders.calls["A"] - api.calls["A"]) / count
    own_b = (folders.calls["B"] - api.calls["B"]) / count
    print(f"the folders' own, per letter: A {own_a:.1f}, B {own_b:.1f}")


# --- one large file ----------------------------------------------------------------------


def write_file(path: Path, size: int) -> None:
    """``size`` bytes that do not compress (as a scanned PDF), written 1 MiB at a time."""
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as out:
        for n in range(size // len(block)):
            out.write(n.to_bytes(8, "big") + block[8:])
        out.write(block[: size % len(block)])


def large_file(root: Path, size: int, timeout: float) -> dict[str, float]:
    """One file of ``size`` bytes through both folders in every format; time and peak RSS."""
    inbox = root / "in"
    a, b = pair(root, inbox=str(inbox), inbox_formats=["hprim", "xdm", "fhir"])
    try:
        out = root / "out"
        out.mkdir(exist_ok=True)
        sidecar = {"colleague": "Dr Bob Durand", "subject": "Imagerie", "kind": "file"}
        (out / "scan.pdf.json").write_text(json.dumps(sidecar), encoding="utf-8")
        write_file(out / "scan.pdf.part", size)
        started = time.monotonic()
        (out / "scan.pdf.part").rename(out / "scan.pdf")
        suffixes = ("-scan.pdf", ".hpr", ".xdm.zip", ".fhir.json")
        wait_until(lambda: all(count_files(inbox, s) == 1 for s in suffixes), timeout, 0.2)
        return {"seconds": time.monotonic() - started, "a": peak_rss_mb(a), "b": peak_rss_mb(b)}
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


def large_files(root: Path, sizes: list[int], timeout: float) -> None:
    print("one file through A's outbox folder into B's inbox folder (file, HPRIM, XDM, FHIR)")
    print(f"{'size MiB':>9} {'seconds':>8} {'A peak RSS MiB':>15} {'B peak RSS MiB':>15}")
    for n, mib in enumerate(sizes):
        run = large_file(root / f"large-{n}", mib * 1024 * 1024, timeout)
        print(f"{mib:>9} {run['seconds']:>8.1f} {run['a']:>15.0f} {run['b']:>15.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--formats", default="hprim,xdm")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--fsyncs", action="store_true", help="count fsyncs (strace)")
    parser.add_argument("--large", type=int, action="append", metavar="MIB", help="one file")
    args = parser.parse_args()
    count = max(1, min(args.letters, 10_000))  # bounded, as the brief asks of load tests
    formats = [f for f in args.formats.split(",") if f]
    if args.large:
        with tempfile.TemporaryDirectory(prefix="pli-bench-folders-") as tmp:
            large_files(Path(tmp), [max(1, min(m, 4096)) for m in args.large], args.timeout)
        return
    if args.fsyncs:
        with tempfile.TemporaryDirectory(prefix="pli-bench-folders-") as tmp:
            count_fsyncs(Path(tmp), count, formats, args.timeout)
        return
    with tempfile.TemporaryDirectory(prefix="pli-bench-folders-") as tmp:
        folders = through_folders(Path(tmp) / "folders", count, formats, args.timeout)
        api = through_api(Path(tmp) / "api", count, args.timeout)
    print(f"{count} letters of {LETTER} B, inbox formats {','.join(formats)}")
    print(f"{'path':<44} {'seconds':>8} {'letters/s':>10}")
    rows = [
        ("outbox folder → all claimed (in sent/)", folders["claimed"]),
        ("outbox folder → all delivered (B's inbox)", folders["delivered"]),
        ("outbox folder → all in B's inbox folder", folders["written"]),
        ("outbox folder → every sent/ state delivered", folders["settled"]),
        ("anchor: POST /v1/documents → all delivered", api),
    ]
    for label, seconds in rows:
        print(f"{label:<44} {seconds:>8.2f} {count / seconds:>10.1f}")


if __name__ == "__main__":
    main()
