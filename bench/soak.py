"""Soak: letters in flight between two daemons while either is killed with SIGKILL.

    .venv/bin/python -m bench.soak [--letters 1000] [--kills 50] [--seed 1]

Two ``pli daemon`` processes on loopback, paired. The letters are queued at A
in batches, one batch between two kills, so that every batch is still being
delivered when the next SIGKILL lands on A or on B (chosen at random, at a
random moment up to a few hundred milliseconds later); the killed daemon is
started again at once. No letter is queued while a kill can land, so each
``POST`` has an unambiguous answer. Once the kills are done the bench waits
for every receipt, then checks, against what it queued:

- delivered: each letter in B's inbox exactly once, with a receipt at A;
- corrupt: B's copy, downloaded through its API, hashes to what was sent;
- leftovers: nothing left in B's quarantine, nothing left queued at A.

It prints one table and exits non-zero if any count is off. Bounded: at most
``--kills`` kills and ``--timeout`` seconds of waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

from p2p.cli.practice import PracticeProcess, kill_all, wait_until

LETTER = 10 * 1024


def queue_batch(
    a: PracticeProcess,
    b: PracticeProcess,
    folder: Path,
    start: int,
    count: int,
    sent: dict[str, bytes],
) -> None:
    for number in range(start, start + count):
        body = f"Lettre {number}\n".encode() + random.randbytes(LETTER)
        path = folder / f"lettre-{number}.txt"
        path.write_bytes(body)
        sent[a.send(b, path, kind="letter")] = hashlib.sha256(body).digest()


def chaos(
    a: PracticeProcess,
    b: PracticeProcess,
    folder: Path,
    letters: int,
    kills: int,
    rng: random.Random,
) -> tuple[dict[str, bytes], dict[str, int]]:
    sent: dict[str, bytes] = {}
    killed = {"A": 0, "B": 0}
    batch = -(-letters // kills)
    for round_ in range(kills):
        queue_batch(a, b, folder, len(sent), min(batch, letters - len(sent)), sent)
        time.sleep(rng.uniform(0.0, 0.3))
        victim, name = (a, "A") if rng.random() < 0.5 else (b, "B")
        victim.kill9()
        killed[name] += 1
        victim.start()
        print(f"\r  kill {round_ + 1}/{kills}: {name}, {len(sent)} letters queued", end="")
    print()
    return sent, killed


def downloaded_sha256(daemon: PracticeProcess, doc_id: str) -> bytes:
    digest = hashlib.sha256()
    with daemon.client.download(f"/v1/documents/{doc_id}/files/0") as chunks:
        for chunk in chunks:
            digest.update(chunk)
    return digest.digest()


def check(a: PracticeProcess, b: PracticeProcess, sent: dict[str, bytes]) -> dict[str, int]:
    inbox = b.inbox_ids()
    outbox = {entry["id"]: entry["state"] for entry in a.client.get("/v1/outbox")}
    corrupt = sum(
        1 for doc_id in set(inbox) & set(sent) if downloaded_sha256(b, doc_id) != sent[doc_id]
    )
    quarantine = b.home / "quarantine"
    return {
        "queued": len(sent),
        "delivered once": sum(1 for doc_id in sent if inbox.count(doc_id) == 1),
        "missing": sum(1 for doc_id in sent if doc_id not in inbox),
        "duplicated": len(inbox) - len(set(inbox)),
        "unexpected": len(set(inbox) - set(sent)),
        "corrupt": corrupt,
        "receipt at A": sum(1 for doc_id in sent if outbox.get(doc_id) == "delivered"),
        "left in quarantine": sum(1 for p in quarantine.rglob("*") if p.is_file())
        if quarantine.exists()
        else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    random.seed(options.seed)
    with tempfile.TemporaryDirectory(prefix="pli-soak-") as tmp:
        root = Path(tmp)
        (root / "files").mkdir()
        a = PracticeProcess(root / "a", "Dr Alice Martin").start()
        b = PracticeProcess(root / "b", "Dr Bob Durand").start()
        try:
            a.trust(b)
            b.trust(a)
            started = time.monotonic()
            sent, killed = chaos(a, b, root / "files", options.letters, options.kills, rng)
            wait_until(lambda: all_delivered(a, sent), timeout=options.timeout, interval=0.5)
            elapsed = time.monotonic() - started
            counts = check(a, b, sent)
        finally:
            a.stop()
            b.stop()
            kill_all(a, b)
    print(
        f"\n{options.letters} letters of {LETTER // 1024} KiB, SIGKILL x{options.kills} "
        f"(A {killed['A']}, B {killed['B']}), seed {options.seed}, {elapsed:.1f} s"
    )
    print(f"{'count':<22} {'value':>7}  {'expected':>8}")
    expected = {"queued": len(sent), "delivered once": len(sent), "receipt at A": len(sent)}
    bad = False
    for name, value in counts.items():
        want = expected.get(name, 0)
        bad |= value != want
        print(f"{name:<22} {value:>7}  {want:>8}{'' if value == want else '  <-- WRONG'}")
    sys.exit(1 if bad else 0)


def all_delivered(a: PracticeProcess, sent: dict[str, bytes]) -> bool:
    states = {entry["id"]: entry["state"] for entry in a.client.get("/v1/outbox")}
    return all(states.get(doc_id) == "delivered" for doc_id in sent)


if __name__ == "__main__":
    main()
