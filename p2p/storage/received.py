"""The received documents' rows: the inbox, its sealed index, what a peer has stored.

A part of ``Store`` (``store.py`` inherits it): the inbox's queries, among them
the listing that ``GET /v1/inbox`` turns into JSON (``index.py``), and the sums
the quota admits offers by (``quota.py``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict

from p2p.errors import StorageError
from p2p.storage.database import Database
from p2p.storage.index import ListingRow
from p2p.storage.rows import InboxRow, PeerState, columns, from_row, marks

_INBOX = columns(InboxRow)
#: Peers whose names documents are shown with.
KNOWN_STATES = (PeerState.PAIRED, PeerState.REMOVED, PeerState.REVOKED)
_LISTING = """
SELECT substr(x.sealed, 1, 12), substr(x.sealed, 13), CAST(i.doc_id || ':' || i.sender AS BLOB),
    CAST(',"from_name":' || coalesce(json_quote(p.name), '"?"')
        || ',"size":' || printf('%d', i.size)
        || ',"received_at":' || printf('%d', i.received_at)
        || ',"exported_at":'
        || CASE WHEN i.exported_at IS NULL THEN 'null' ELSE printf('%d', i.exported_at) END
        || CASE WHEN r.learned_at IS NULL
            THEN ',"sender_revoked_since":null,"signed_after_revocation":false}' ELSE '' END
        AS BLOB),
    r.learned_at
FROM inbox i
LEFT JOIN inbox_index x ON x.doc_id = i.doc_id AND x.sender = i.sender
LEFT JOIN peers p ON p.peer_id = i.sender AND p.state IN (?, ?, ?)
LEFT JOIN revocations r ON r.peer_id = i.sender
ORDER BY i.received_at
"""
_INDEX_ROW = "INSERT OR REPLACE INTO inbox_index (doc_id, sender, sealed) VALUES (?,?,?)"


class ReceivedDocuments(Database):
    """The queries of the ``inbox`` and ``inbox_index`` tables."""

    def received_many(self, rows: list[InboxRow], sealed: list[bytes]) -> list[bool]:
        """Record received documents and their sealed index rows in one commit.

        For each, False if it was already there (stored once).
        """
        new = []
        with self._tx() as db:
            for row, index in zip(rows, sealed, strict=True):
                cursor = db.execute(
                    f"INSERT OR IGNORE INTO inbox ({_INBOX}) VALUES ({marks(InboxRow)})",  # noqa: S608
                    asdict(row),
                )
                new.append(cursor.rowcount == 1)
                if cursor.rowcount == 1:
                    db.execute(_INDEX_ROW, (row.doc_id, row.sender, index))
        return new

    def index_inbox(self, doc_id: str, sender: str, sealed: bytes) -> None:
        """(Re)write one document's sealed index row."""
        with self._tx() as db:
            db.execute(_INDEX_ROW, (doc_id, sender, sealed))

    def inbox_listing(self) -> list[ListingRow]:
        """Every received document, oldest first, as ``index.ListingRow`` tuples.

        One query: SQLite writes each row's clear JSON members (the peer's name
        by ``json_quote``, numbers by ``printf('%d')`` whatever a column holds),
        so Python only opens the boxes and joins bytes.
        """
        try:
            with self._read_lock:
                cursor = self._reader.cursor()
                cursor.row_factory = None  # plain tuples: 10,000 rows, a hot path
                return cursor.execute(_LISTING, KNOWN_STATES).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"The database could not be read ({exc}).") from exc

    def peer_stored_bytes(self, sender: str) -> int:
        """Bytes of the envelopes stored from ``sender``."""
        row = self._query("SELECT coalesce(sum(size), 0) AS n FROM inbox WHERE sender=?", (sender,))
        return int(row[0]["n"])

    def received_since(self, sender: str, since: int) -> dict[str, float]:
        """Documents received from ``sender`` since ``since``: doc id -> when."""
        rows = self._query(
            "SELECT doc_id, received_at FROM inbox WHERE sender=? AND received_at>=?",
            (sender, since),
        )
        return {str(row["doc_id"]): float(row["received_at"]) for row in rows}

    def stored_bytes(self) -> dict[str, int]:
        """Bytes of envelopes the database points at: received, and sent (each once)."""
        received = self._query("SELECT coalesce(sum(size), 0) AS n FROM inbox")[0]["n"]
        sent = self._query(
            "SELECT coalesce(sum(size), 0) AS n FROM (SELECT max(size) AS size FROM outbox "
            "GROUP BY doc_id)"
        )[0]["n"]
        return {"received": int(received), "sent": int(sent)}

    def inbox_entry(self, doc_id: str, sender: str) -> InboxRow | None:
        rows = self._query(
            f"SELECT {_INBOX} FROM inbox WHERE doc_id=? AND sender=?",  # noqa: S608
            (doc_id, sender),
        )
        return from_row(InboxRow, rows[0]) if rows else None

    def inbox(self) -> list[InboxRow]:
        rows = self._query(f"SELECT {_INBOX} FROM inbox ORDER BY received_at")  # noqa: S608
        return [from_row(InboxRow, row) for row in rows]

    def mark_exported(self, doc_id: str, sender: str, now: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE inbox SET exported_at=? WHERE doc_id=? AND sender=?", (now, doc_id, sender)
            )
