"""The sent documents' table: what one commit stores together."""

from __future__ import annotations

from pathlib import Path

from p2p.storage.rows import StoredReceipt
from p2p.storage.store import Store


def test_a_receipt_by_mailbox_is_stored_with_the_way_it_came(tmp_path: Path) -> None:
    """Delivered and "its receipt came by the mailbox" are one commit: a reader in between
    once saw the document delivered with its receipt said to have come directly."""
    store = Store(tmp_path / "pli.db")
    by_mailbox, direct, peer = "ab" * 16, "ef" * 16, "cd" * 32
    for doc in (by_mailbox, direct):
        store.queue(doc, [peer], 100, b"d" * 32, 1)
        store.mailbox_posted(doc, peer, "nats://127.0.0.1:4222", 1)
    store.delivered_many(
        [
            StoredReceipt(by_mailbox, peer, b"receipt", 2, "delivered", by_mailbox=True),
            StoredReceipt(direct, peer, b"receipt", 2, "delivered"),
        ]
    )
    posts = store.mailbox_posts()
    assert posts[(by_mailbox, peer)] == ("nats://127.0.0.1:4222", "mailbox")
    assert posts[(direct, peer)] == ("nats://127.0.0.1:4222", None)
    assert store.outbox_entry(by_mailbox, peer).state == "delivered"  # type: ignore[union-attr]
    store.close()
