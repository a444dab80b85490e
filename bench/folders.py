"""Folders: N letters dropped at once into the outbox folder, to the other inbox folder.

    .venv/bin/python -m bench.folders [--letters 1000] [--formats hprim,xdm] [--timeout 600]

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
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

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


def through_folders(root: Path, count: int, formats: list[str], timeout: float) -> dict[str, float]:
    inbox = root / "in"
    a, b = pair(root, inbox=str(inbox), inbox_formats=formats)
    try:
        started = drop(root / "out", count)
        wait_until(lambda: count_files(root / "out" / "sent", ".pli.json") >= count, timeout, 0.05)
        claimed = time.monotonic() - started
        wait_until(lambda: len(b.inbox_ids()) >= count, timeout, 0.2)
        delivered = time.monotonic() - started
        wait_until(lambda: count_files(inbox, ".hpr") >= count, timeout, 0.05)
        written = time.monotonic() - started
        return {"claimed": claimed, "delivered": delivered, "written": written}
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


def through_api(root: Path, count: int, timeout: float) -> float:
    a, b = pair(root)
    try:
        letters = root / "letters"
        letters.mkdir()
        paths = []
        for n in range(count):
            path = letters / f"lettre-{n:05d}.txt"
            path.write_bytes(n.to_bytes(8, "big") * (LETTER // 8))
            paths.append(path)
        started = time.monotonic()
        for path in paths:
            a.send(b, path, kind="letter")
        wait_until(lambda: len(b.inbox_ids()) >= count, timeout, 0.2)
        return time.monotonic() - started
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--formats", default="hprim,xdm")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    count = max(1, min(args.letters, 10_000))  # bounded, as the brief asks of load tests
    formats = [f for f in args.formats.split(",") if f]
    with tempfile.TemporaryDirectory(prefix="pli-bench-folders-") as tmp:
        folders = through_folders(Path(tmp) / "folders", count, formats, args.timeout)
        api = through_api(Path(tmp) / "api", count, args.timeout)
    print(f"{count} letters of {LETTER} B, inbox formats {','.join(formats)}")
    print(f"{'path':<44} {'seconds':>8} {'letters/s':>10}")
    rows = [
        ("outbox folder → all claimed (in sent/)", folders["claimed"]),
        ("outbox folder → all delivered (B's inbox)", folders["delivered"]),
        ("outbox folder → all in B's inbox folder", folders["written"]),
        ("anchor: POST /v1/documents → all delivered", api),
    ]
    for label, seconds in rows:
        print(f"{label:<44} {seconds:>8.2f} {count / seconds:>10.1f}")


if __name__ == "__main__":
    main()
