"""Separate ``pli daemon`` processes: big files, kill -9 at bad moments, peers down.

Nothing lost, nothing twice: whatever is killed and when, every document ends
delivered exactly once, with a receipt at the sender.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, paired, wait_until

BIG = 200 * 1024 * 1024

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "imagerie.bin"
    with open(path, "wb") as handle:
        block = os.urandom(1024 * 1024)
        for index in range(BIG // len(block)):
            handle.write(index.to_bytes(8, "big") + block[8:])
    return path


@pytest.fixture
def practices(tmp_path: Path) -> Iterator[tuple[PracticeProcess, PracticeProcess]]:
    a = PracticeProcess(tmp_path / "a", "Dr Alice Martin")
    b = PracticeProcess(tmp_path / "b", "Dr Bob Durand")
    with paired(a, b):
        yield a, b


def sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def exported_hash(daemon: PracticeProcess, doc_id: str) -> bytes:
    digest = hashlib.sha256()
    with daemon.client.download(f"/v1/documents/{doc_id}/files/0") as chunks:
        for chunk in chunks:
            digest.update(chunk)
    return digest.digest()


def test_200mb_both_ways(
    practices: tuple[PracticeProcess, PracticeProcess], big_file: Path
) -> None:
    a, b = practices
    for sender, recipient in ((a, b), (b, a)):
        doc_id = sender.send(recipient, big_file)
        wait_until(lambda s=sender, d=doc_id: s.outbox_state(d) == "delivered", timeout=120)
        assert exported_hash(recipient, doc_id) == sha256(big_file)
        (receipt,) = sender.client.get(f"/v1/documents/{doc_id}/receipts")
        assert receipt["status"] == "delivered"
        assert receipt["recipient"] == recipient.identity()["peer_id"]


def test_receiver_killed_mid_transfer_resumes(
    practices: tuple[PracticeProcess, PracticeProcess], big_file: Path
) -> None:
    a, b = practices
    doc_id = a.send(b, big_file)
    partial = b.home / "quarantine"

    def halfway() -> bool:
        return any(p.stat().st_size > BIG // 3 for p in partial.glob("*.part"))

    wait_until(halfway, timeout=60, interval=0.005)
    b.kill9()
    kept = max(p.stat().st_size for p in partial.glob("*.part"))
    b.start()
    wait_until(lambda: a.outbox_state(doc_id) == "delivered", timeout=120)
    assert b.inbox_ids().count(doc_id) == 1
    assert exported_hash(b, doc_id) == sha256(big_file)
    resumed = [int(m) for m in re.findall(r"resumed a transfer at (\d+) of", a.logs())]
    assert resumed, "the sender should have resumed, not restarted"
    sent_again = BIG - resumed[-1]
    assert resumed[-1] >= kept - 2 * 1024 * 1024  # at most what was in flight is lost
    assert sent_again < 0.8 * BIG


def test_sender_killed_right_after_queueing(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = practices
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère, je vous adresse Mme D. pour avis.\n" * 100)
    doc_id = a.send(b, letter, kind="letter")
    a.kill9()
    a.start()
    wait_until(lambda: a.outbox_state(doc_id) == "delivered", timeout=30)
    assert b.inbox_ids().count(doc_id) == 1
    assert exported_hash(b, doc_id) == sha256(letter)


def test_sender_killed_while_sealing_and_sending(
    practices: tuple[PracticeProcess, PracticeProcess], big_file: Path, tmp_path: Path
) -> None:
    """kill -9 while the envelope is both being sealed and already travelling."""
    a, b = practices
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    first = a.send(b, letter, kind="letter")  # the connection is up
    wait_until(lambda: a.outbox_state(first) == "delivered", timeout=30)
    body = {"to": [b.identity()["peer_id"]], "kind": "file", "files": [{"path": str(big_file)}]}
    answer: dict[str, object] = {}

    def post() -> None:
        try:
            answer["id"] = a.client.post("/v1/documents", body)["id"]
        except Exception as exc:  # the daemon died under the request
            answer["error"] = exc

    poster = threading.Thread(target=post)
    poster.start()
    sealing = a.home / "documents" / "sent"
    partial = b.home / "quarantine"

    def both_under_way() -> bool:
        arrived = any(p.stat().st_size > 0 for p in partial.glob("*.part"))
        return arrived and any(sealing.glob(".*.tmp"))

    wait_until(both_under_way, timeout=60, interval=0.002)
    a.kill9()
    poster.join(30)
    a.start()
    assert not list(sealing.glob(".*.tmp"))  # the half-sealed envelope is gone
    if "id" in answer:  # answered "queued" just before the kill: it must arrive, once
        doc_id = str(answer["id"])
        wait_until(lambda: a.outbox_state(doc_id) == "delivered", timeout=120)
        assert b.inbox_ids().count(doc_id) == 1
    else:  # never answered: nothing was queued, nothing was delivered
        assert [e["id"] for e in a.client.get("/v1/outbox")] == [first]
        assert b.inbox_ids() == [first]
    again = a.send(b, big_file)  # the next one goes, whole
    wait_until(lambda: a.outbox_state(again) == "delivered", timeout=120)
    assert b.inbox_ids().count(again) == 1
    assert exported_hash(b, again) == sha256(big_file)


def test_sender_killed_during_a_burst_of_letters(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    """kill -9 while 8 clients queue letters at once (the group commit under way)."""
    a, b = practices
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère, je vous adresse M. R. pour avis.\n" * 40)
    body = {"to": [b.identity()["peer_id"]], "kind": "letter", "files": [{"path": str(letter)}]}
    answered: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                answered.append(a.client.post("/v1/documents", body)["id"])
            except Exception:  # the daemon died under the request: not queued, or not told
                return

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    wait_until(lambda: len(answered) >= 40, timeout=60, interval=0.002)
    a.kill9()
    stop.set()
    for thread in clients:
        thread.join(30)
    told = list(answered)
    a.start()
    queued = {e["id"] for e in a.client.get("/v1/outbox")}
    assert set(told) <= queued  # every "queued" answer held, even those of the last group
    wait_until(lambda: all(a.outbox_state(d) == "delivered" for d in queued), timeout=120)
    received = b.inbox_ids()
    assert sorted(received) == sorted(queued)  # each exactly once, nothing unknown
    sent = a.home / "documents" / "sent"
    assert not list(sent.glob(".*.tmp"))
    assert {p.stem for p in sent.glob("*.pli")} == queued  # no envelope left unqueued


def test_receiver_killed_during_a_burst_of_letters(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    """kill -9 of the receiver while it commits letters in groups (fsyncs at once)."""
    a, b = practices
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère, je vous adresse Mme L. pour avis.\n" * 40)
    body = {"to": [b.identity()["peer_id"]], "kind": "letter", "files": [{"path": str(letter)}]}
    queued: list[str] = []

    def client() -> None:
        for _ in range(20):
            queued.append(a.client.post("/v1/documents", body)["id"])

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    received = b.home / "documents" / "received"
    wait_until(lambda: len(list(received.glob("*.pli"))) >= 10, timeout=60, interval=0.002)
    b.kill9()
    for thread in clients:
        thread.join(60)
    b.start()
    wait_until(lambda: all(a.outbox_state(d) == "delivered" for d in queued), timeout=120)
    assert sorted(b.inbox_ids()) == sorted(queued)  # each exactly once
    stored = {p.stem.rpartition("-")[2] for p in received.glob("*.pli")}
    assert stored == set(queued)  # no envelope without its row, none twice
    assert not list(received.glob(".*.tmp"))
    assert exported_hash(b, queued[-1]) == sha256(letter)


def test_receiver_down_then_back(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = practices
    b.identity()
    b.stop()
    letter = tmp_path / "lettre.txt"
    letter.write_text("Compte rendu de consultation.\n")
    doc_id = a.send(b, letter, kind="letter")
    wait_until(lambda: any(e["attempts"] > 0 for e in a.client.get("/v1/outbox")), timeout=10)
    assert a.outbox_state(doc_id) in ("queued", "sending")  # kept, retried
    b.start()
    wait_until(lambda: a.outbox_state(doc_id) == "delivered", timeout=30)
    assert b.inbox_ids() == [doc_id]


def test_unpaired_daemon_is_refused(
    practices: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    _a, b = practices
    intruder = PracticeProcess(tmp_path / "c", "Dr Mallory").start()
    try:
        intruder.trust(b)  # the intruder knows B's public card, B never paired with it
        letter = tmp_path / "spam.txt"
        letter.write_text("not for you")
        doc_id = intruder.send(b, letter)
        wait_until(lambda: "not a paired peer" in b.logs(), timeout=20)
        # "sending" until the intruder records the refused attempt, then queued: not lost
        wait_until(lambda: intruder.outbox_state(doc_id) == "queued", timeout=20)
        assert b.inbox_ids() == []
        assert list((b.home / "quarantine").iterdir()) == []
        assert b.logs().count("refused a handshake") >= 1
        assert "spam" not in b.logs()
        assert "not for you" not in b.logs()
    finally:
        intruder.stop()
