"""The mailbox's limits, with two real daemons and the real nats-server.

Each recipient's stream caps what one sender may leave in it (``stream_config``);
a sender over its share is refused by the server and keeps the document in its
outbox, saying why, until it can deliver it directly or the mailbox has room.
What waits longer than the retention is dropped by the server and left again
by its sender.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import wait_until
from p2p.storage import mailboxes
from tests.p2p.natsserver import (
    NatsServer,
    mailbox_pair,
    member_key,
    messages_in,
    restrict_mailbox,
)

pytestmark = pytest.mark.slow

Group = tuple[DaemonProcess, DaemonProcess, NatsServer]
#: A short mailbox retention (seconds) for the test of what the server drops.
RETENTION = 10


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    with mailbox_pair(tmp_path) as pair:
        yield pair


def letter(a: DaemonProcess, b: DaemonProcess, folder: Path, n: int) -> str:
    path = folder / f"lettre-{n}.txt"
    path.write_text(f"Cher confrère, lettre numéro {n}.\n", encoding="utf-8")
    return a.send(b, path, kind="letter")


def outbox_entry(daemon: DaemonProcess, doc_id: str) -> dict[str, object]:
    return next(e for e in daemon.client.get("/v1/outbox") if e["id"] == doc_id)


def test_a_sender_over_its_share_keeps_the_document_and_says_why(
    group: Group, tmp_path: Path
) -> None:
    a, b, server = group
    b_seed, b_box = mailboxes.nkey_seed(b.home), member_key(b).split(":")[1]
    b.stop()
    restrict_mailbox(server, b_seed, b_box, per_sender=1)  # room for one of A's messages
    first = letter(a, b, tmp_path, 1)
    wait_until(lambda: outbox_entry(a, first).get("via") == f"mailbox {server.url}", timeout=30)
    second = letter(a, b, tmp_path, 2)
    wait_until(lambda: "is full" in str(outbox_entry(a, second)["last_error"]), timeout=30)
    entry = outbox_entry(a, second)
    assert entry["state"] == "queued"
    assert entry["via"] is None
    assert f"The mailbox {server.url} is full for this colleague" in str(entry["last_error"])
    assert entry["error_code"] == "mailbox-full"  # which the page says in its words
    assert messages_in(server, b_seed) == 1  # the refused one is not stored, even in part
    shown = a.pli("outbox").stdout
    assert "is full" in shown

    b.start()  # the first comes through the mailbox or directly, the second directly
    wait_until(lambda: sorted(b.inbox_ids()) == sorted([first, second]), timeout=60)
    for doc_id in (first, second):
        wait_until(lambda d=doc_id: outbox_entry(a, d)["state"] == "delivered", timeout=30)
    assert outbox_entry(a, second)["via"] == "direct"
    wait_until(lambda: messages_in(server, b_seed) == 0, timeout=30)
    assert sorted(b.inbox_ids()) == sorted([first, second])  # once each


def test_a_letter_dropped_unread_is_left_again(tmp_path: Path) -> None:
    """The server drops what waited longer than the retention; the sender's outbox
    still has it and leaves it again, so practices never online together still meet."""
    with mailbox_pair(tmp_path, mailbox_retention=RETENTION) as (a, b, server):
        b_seed = mailboxes.nkey_seed(b.home)
        b.stop()
        doc_id = letter(a, b, tmp_path, 1)
        wait_until(lambda: messages_in(server, b_seed) == 1, timeout=30)
        a.stop()
        wait_until(lambda: messages_in(server, b_seed) == 0, timeout=4 * RETENTION)  # dropped
        a.start()
        wait_until(lambda: messages_in(server, b_seed) == 1, timeout=30)  # left again
        a.stop()
        b.start()
        wait_until(lambda: b.inbox_ids() == [doc_id], timeout=RETENTION)
        b.stop()
        a.start()
        wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=30)
        assert outbox_entry(a, doc_id)["receipt_via"] == "mailbox"
