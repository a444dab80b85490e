"""The sent documents' rows: the outbox (one row per document and recipient) and the
documents left in a peer's mailbox.

A part of ``Store`` (``store.py`` inherits it): queueing, what is due for each
peer, receipts and failed attempts in one commit each, cancelling what can no
longer be sent (a peer removed or revoked), and the mailbox posts that
``pli status`` and the page show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict

from p2p.storage.database import Database, prefix_range
from p2p.storage.failures import Failed
from p2p.storage.rows import OutboxRow, OutboxState, PeerState, StoredReceipt, columns, from_row

_OUTBOX = columns(OutboxRow)


class SentDocuments(Database):
    """The outbox and the mailbox posts (see the module's docstring)."""

    def queue(self, doc_id: str, peer_ids: list[str], size: int, digest: bytes, now: int) -> None:
        self.queue_many([OutboxRow.new(doc_id, peer_id, size, digest, now) for peer_id in peer_ids])

    def queue_many(self, rows: Sequence[OutboxRow]) -> None:
        """New outbox rows (``OutboxRow.new``), several documents' at once, in one commit."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO outbox (doc_id, peer_id, size, digest, created_at, state) "
                "VALUES (?,?,?,?,?,?)",
                [(r.doc_id, r.peer_id, r.size, r.digest, r.created_at, r.state) for r in rows],
            )

    def outbox(
        self, *, state: OutboxState | None = None, peer_id: str | None = None
    ) -> list[OutboxRow]:
        sql, args = f"SELECT {_OUTBOX} FROM outbox WHERE 1=1", list[str]()  # noqa: S608
        if state:
            sql, args = sql + " AND state=?", [*args, state]
        if peer_id:
            sql, args = sql + " AND peer_id=?", [*args, peer_id]
        rows = self._query(sql + " ORDER BY created_at, doc_id", tuple(args))
        return [from_row(OutboxRow, row) for row in rows]

    def outbox_ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` sent documents' ids that start with ``prefix`` (the primary
        key's index: O(log n))."""
        rows = self._query(
            "SELECT DISTINCT doc_id FROM outbox WHERE doc_id >= ? AND doc_id < ? "
            "ORDER BY doc_id LIMIT ?",
            (*prefix_range(prefix), limit),
        )
        return [str(row["doc_id"]) for row in rows]

    def outbox_entry(self, doc_id: str, peer_id: str) -> OutboxRow | None:
        rows = self._query(
            f"SELECT {_OUTBOX} FROM outbox WHERE doc_id=? AND peer_id=?",  # noqa: S608
            (doc_id, peer_id),
        )
        return from_row(OutboxRow, rows[0]) if rows else None

    def delivered_many(self, receipts: list[StoredReceipt]) -> None:
        """Store several verified receipts in one commit, with the way each came: a
        reader never sees a document delivered before it knows its receipt's path."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state=:state, receipt=:receipt, receipt_time=:time, "
                "receipt_status=:status, last_error=NULL, error_code=NULL "
                "WHERE doc_id=:doc_id AND peer_id=:peer_id",
                [{**asdict(receipt), "state": receipt.state} for receipt in receipts],
            )
            db.executemany(
                "UPDATE mailbox_posts SET receipt_via='mailbox' WHERE doc_id=? AND peer_id=?",
                [(r.doc_id, r.peer_id) for r in receipts if r.by_mailbox],
            )

    def due(self, peer_id: str, now: float) -> list[OutboxRow]:
        """The documents queued for ``peer_id`` whose next attempt is due, oldest first."""
        rows = self._query(
            f"SELECT {_OUTBOX} FROM outbox WHERE state=? AND peer_id=? "  # noqa: S608
            "AND next_attempt<=? ORDER BY created_at, doc_id",
            (OutboxState.QUEUED, peer_id, now),
        )
        return [from_row(OutboxRow, row) for row in rows]

    def next_attempt(self, peer_id: str) -> float | None:
        """The earliest next attempt of the documents queued for ``peer_id``; None if none."""
        rows = self._query(
            "SELECT min(next_attempt) FROM outbox WHERE state=? AND peer_id=?",
            (OutboxState.QUEUED, peer_id),
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def due_peers(self) -> list[tuple[str, float]]:
        """(peer, earliest next attempt) for every peer with queued documents."""
        rows = self._query(
            "SELECT peer_id, min(next_attempt) FROM outbox WHERE state=? GROUP BY peer_id",
            (OutboxState.QUEUED,),
        )
        return [(str(peer), float(due)) for peer, due in rows]

    def attempts_failed(
        self, rows: list[tuple[str, str]], failed: Failed, next_attempt: Callable[[int], float]
    ) -> None:
        """One failed attempt for each queued (doc, peer), in one commit, and why.

        ``next_attempt(attempts)`` gives each row's retry time from its attempts so far.
        """
        with self._tx() as db:
            for doc_id, peer_id in rows:
                found = db.execute(
                    "SELECT attempts FROM outbox WHERE doc_id=? AND peer_id=? AND state=?",
                    (doc_id, peer_id, OutboxState.QUEUED),
                ).fetchone()
                if found is None:
                    continue
                db.execute(
                    "UPDATE outbox SET attempts=attempts+1, last_error=?, error_code=?, "
                    "next_attempt=? WHERE doc_id=? AND peer_id=?",
                    (failed.text, failed.code, next_attempt(int(found[0])), doc_id, peer_id),
                )

    @staticmethod
    def _cancel(db: sqlite3.Connection, peer_id: str, reason: Failed) -> int:
        cursor = db.execute(
            "UPDATE outbox SET state=?, last_error=?, error_code=? WHERE peer_id=? AND state=?",
            (OutboxState.CANCELLED, reason.text, reason.code, peer_id, OutboxState.QUEUED),
        )
        return cursor.rowcount

    def cancel_unpaired(self, reason: Failed) -> int:
        """Cancel what is queued to peers that are no longer paired (kept from an old run)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET state=?, last_error=?, error_code=? WHERE state=? AND "
                "peer_id NOT IN (SELECT peer_id FROM peers WHERE state=?)",
                (
                    OutboxState.CANCELLED,
                    reason.text,
                    reason.code,
                    OutboxState.QUEUED,
                    PeerState.PAIRED,
                ),
            )
            return cursor.rowcount

    def retry_now(self, peer_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET next_attempt=0 WHERE peer_id=? AND state=?",
                (peer_id, OutboxState.QUEUED),
            )

    def cancel_queued(self, doc_id: str, peer_id: str, reason: Failed) -> bool:
        """A queued row ends ``cancelled`` (never sent); False if it was not queued."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET state=?, last_error=?, error_code=? "
                "WHERE doc_id=? AND peer_id=? AND state=?",
                (
                    OutboxState.CANCELLED,
                    reason.text,
                    reason.code,
                    doc_id,
                    peer_id,
                    OutboxState.QUEUED,
                ),
            )
            return cursor.rowcount == 1

    def mailbox_posted(self, doc_id: str, peer_id: str, url: str, now: int) -> None:
        """The whole envelope of ``doc_id`` is in ``peer_id``'s mailbox at ``url``."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO mailbox_posts (doc_id, peer_id, url, posted_at) "
                "VALUES (?,?,?,?)",
                (doc_id, peer_id, url, now),
            )

    def mailbox_posted_since(self, peer_id: str, since: int) -> set[str]:
        """The documents left in ``peer_id``'s mailbox at ``since`` or later."""
        rows = self._query(
            "SELECT doc_id FROM mailbox_posts WHERE peer_id=? AND posted_at>=?", (peer_id, since)
        )
        return {r["doc_id"] for r in rows}

    def mailbox_posts(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """(doc, peer) -> (mailbox URL, how its receipt came) for every document posted."""
        rows = self._query("SELECT doc_id, peer_id, url, receipt_via FROM mailbox_posts")
        return {(r["doc_id"], r["peer_id"]): (r["url"], r["receipt_via"]) for r in rows}
