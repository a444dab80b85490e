"""kill -9 of either side while the watched folders work: nothing lost, nothing twice.

Two ``pli daemon`` processes: A watches an outbox folder, B writes an inbox folder.
Letters are dropped in A's folder at once; A is killed (SIGKILL) while it claims
and queues them, then B while it writes them out. After both restart, every
letter is in B's inbox folder exactly once (its own file and its HPRIM), A's
folder is empty but for sent/ (one state file per letter), and no claim or staged
document is left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, paired, wait_until

LETTERS = 60
FOLDERS = {"stable_seconds": 0, "poll_seconds": 0.05}


@pytest.fixture
def practices(tmp_path: Path) -> Iterator[tuple[PracticeProcess, PracticeProcess]]:
    out, inbox = tmp_path / "out", tmp_path / "in"
    a = PracticeProcess(tmp_path / "a", "Dr Alice Martin", folders={**FOLDERS, "outbox": str(out)})
    b = PracticeProcess(
        tmp_path / "b",
        "Dr Bob Durand",
        folders={**FOLDERS, "inbox": str(inbox), "inbox_formats": ["hprim"]},
    )
    with paired(a, b):
        yield a, b


def drop_letters(out: Path) -> None:
    out.mkdir(exist_ok=True)
    for n in range(LETTERS):
        sidecar = {"colleague": "Dr Bob Durand", "subject": f"Courrier {n}"}
        (out / f"lettre-{n:03d}.txt.json").write_text(json.dumps(sidecar), encoding="utf-8")
        (out / f"lettre-{n:03d}.txt.part").write_text(f"Lettre numéro {n}\n", encoding="utf-8")
    for n in range(LETTERS):  # all at once, as a practice software flushing its queue
        (out / f"lettre-{n:03d}.txt.part").rename(out / f"lettre-{n:03d}.txt")


def count(folder: Path, suffix: str) -> int:
    return sum(1 for p in folder.glob(f"*{suffix}")) if folder.exists() else 0


def test_kill9_of_either_side_loses_and_duplicates_nothing(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = practices
    out, inbox = tmp_path / "out", tmp_path / "in"
    drop_letters(out)
    wait_until(lambda: count(out / "sent", ".pli.json") >= 5, timeout=60, interval=0.005)
    a.kill9()  # in the middle of claiming and queueing
    a.start()
    wait_until(lambda: count(inbox, ".hpr") >= 5, timeout=60, interval=0.005)
    b.kill9()  # in the middle of writing the inbox folder
    b.start()
    wait_until(lambda: len(b.inbox_ids()) == LETTERS, timeout=120)
    wait_until(lambda: count(inbox, ".hpr") >= LETTERS, timeout=60)
    texts = sorted(p.read_text(encoding="utf-8") for p in inbox.glob("*-lettre-*.txt"))
    assert texts == sorted(f"Lettre numéro {n}\n" for n in range(LETTERS))  # once each
    assert count(inbox, ".hpr") == LETTERS
    assert sorted(p.name for p in out.iterdir()) == [".pli", "errors", "sent"]
    assert count(out / "sent", ".pli.json") == LETTERS
    assert list((out / "errors").iterdir()) == []
    assert list((out / ".pli" / "claims").iterdir()) == []
    wait_until(lambda: list((inbox / ".pli").iterdir()) == [], timeout=30)
    sent = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "sent").glob("*.pli.json")]
    assert len({state["document"] for state in sent}) == LETTERS
    assert sorted(b.inbox_ids()) == sorted(state["document"] for state in sent)
