"""``kill -9`` of either daemon during a mailbox transfer: nothing lost, nothing twice.

The recipient is down, so the envelope (96 MiB, 96 chunks) goes through the
mailbox. It is posted while it is sealed, and the post usually ends with the seal;
the server is paused in the middle of it so that the sender is killed with the
document queued and its post under way. The sender killed while posting posts
again when it restarts, and the server's de-duplication keeps one copy of each
chunk; the recipient killed while reading reads again what it had not
acknowledged and the inbox resumes from its quarantine. Each time the letter
arrives once, intact, and its receipt comes back.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import wait_until
from p2p.storage import mailboxes
from protocol import mailbox as frames
from tests.p2p.natsserver import NatsServer, mailbox_pair, messages_in

pytestmark = pytest.mark.slow

SIZE = 96 * 1024 * 1024

Group = tuple[DaemonProcess, DaemonProcess, NatsServer]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "irm.bin"
    with open(path, "wb") as handle:
        for _ in range(SIZE // (1024 * 1024)):
            handle.write(os.urandom(1024 * 1024))
    return path


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    with mailbox_pair(tmp_path) as pair:
        yield pair


def state(daemon: DaemonProcess, doc_id: str) -> dict[str, object]:
    return next(e for e in daemon.client.get("/v1/outbox") if e["id"] == doc_id)


def received_hash(daemon: DaemonProcess, doc_id: str) -> str:
    """SHA-256 of the file as the recipient's daemon decrypts it."""
    digest = hashlib.sha256()
    with daemon.client.download(f"/v1/documents/{doc_id}/files/0") as chunks:
        for chunk in chunks:
            digest.update(chunk)
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finish(a: DaemonProcess, b: DaemonProcess, doc_id: str, big_file: Path) -> None:
    """B reads the mailbox alone, then A alone gets the receipt: exactly once."""
    b.start()
    wait_until(lambda: b.inbox_ids() == [doc_id], timeout=120)
    assert received_hash(b, doc_id) == file_hash(big_file)
    b.stop()
    a.start()
    wait_until(lambda: state(a, doc_id)["state"] == "delivered", timeout=60)
    assert state(a, doc_id)["receipt_via"] == "mailbox"
    b.start()
    assert b.inbox_ids() == [doc_id]


def test_sender_killed_while_posting(group: Group, big_file: Path) -> None:
    a, b, server = group
    b.identity()
    b.stop()
    seed_b = mailboxes.nkey_seed(b.home)
    assert server.proc is not None
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(a.send, b, big_file)  # answers once queued (durable)
        wait_until(lambda: messages_in(server, seed_b) > 20, timeout=60, interval=0.01)
        server.proc.send_signal(signal.SIGSTOP)  # the post waits for the server
        try:
            doc_id = sending.result(timeout=30)
            a.kill9()
        finally:
            server.proc.send_signal(signal.SIGCONT)
    cut = messages_in(server, seed_b)
    a.start()
    chunks = frames.chunk_count(int(str(state(a, doc_id)["size"])))  # of the envelope
    assert cut < chunks  # the post was cut in the middle
    wait_until(lambda: str(state(a, doc_id)["via"]).startswith("mailbox"), timeout=60)
    total = messages_in(server, seed_b)
    assert chunks <= total <= chunks + 1  # each chunk once: the server dropped the copies
    a.stop()
    finish(a, b, doc_id, big_file)


def test_receiver_killed_while_reading(group: Group, big_file: Path) -> None:
    a, b, _server = group
    b.identity()
    b.stop()
    doc_id = a.send(b, big_file)
    wait_until(lambda: str(state(a, doc_id)["via"]).startswith("mailbox"), timeout=60)
    a.stop()
    b.start()
    quarantine = b.home / "quarantine"

    def reading() -> bool:
        return any(p.stat().st_size > 8 * 1024 * 1024 for p in quarantine.glob("*.part"))

    wait_until(reading, timeout=60, interval=0.01)
    b.kill9()
    assert reading(), "killed in the middle of the letter"
    finish(a, b, doc_id, big_file)  # then stored once, and A gets its receipt
