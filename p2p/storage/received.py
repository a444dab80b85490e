"""The received documents' rows: the inbox, its sealed index, what a peer has stored.

A part of ``Store`` (``store.py`` inherits it): the inbox's queries, among them
the listing that ``GET /v1/inbox`` turns into JSON (``index.py``), and the sums
the quota admits offers by (``quota.py``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from typing import Any

from p2p.errors import StorageError
from p2p.storage.database import Database, prefix_range
from p2p.storage.index import IdRow, ListingRow
from p2p.storage.rows import InboxRow, PeerState, columns, from_row, marks
from p2p.storage.search import InboxQuery

_INBOX = columns(InboxRow)
#: Peers whose names documents are shown with.
KNOWN_STATES = (PeerState.PAIRED, PeerState.REMOVED, PeerState.REVOKED)
_COLUMNS = """
SELECT substr(x.sealed, 1, 12), substr(x.sealed, 13), CAST(i.doc_id || ':' || i.sender AS BLOB),
    CAST(',"from_name":' || coalesce(json_quote(p.name), '"?"')
        || ',"size":' || printf('%d', i.size)
        || ',"received_at":' || printf('%d', i.received_at)
        || ',"exported_at":'
        || CASE WHEN i.exported_at IS NULL THEN 'null' ELSE printf('%d', i.exported_at) END
        || CASE WHEN r.learned_at IS NULL
            THEN ',"sender_revoked_since":null,"signed_after_revocation":false}' ELSE '' END
        AS BLOB),
    r.learned_at"""
_JOINS = """
FROM inbox i
LEFT JOIN inbox_index x ON x.doc_id = i.doc_id AND x.sender = i.sender
LEFT JOIN peers p ON p.peer_id = i.sender AND p.state IN (?, ?, ?)
LEFT JOIN revocations r ON r.peer_id = i.sender
"""
_LISTING = _COLUMNS + _JOINS + "ORDER BY i.received_at"
#: One page of a date range, newest first (when nothing sealed is asked).
_PAGE = (
    _COLUMNS
    + _JOINS
    + "WHERE i.received_at >= ? AND i.received_at < ? "
    + "ORDER BY i.received_at DESC, i.rowid DESC LIMIT ? OFFSET ?"
)
#: Every row of a date range, newest first, to be matched on its search key.
_IDS = """
SELECT rowid, doc_id, sender FROM inbox
WHERE received_at >= ? AND received_at < ? ORDER BY received_at DESC, rowid DESC
"""
_COUNT = (
    "SELECT count(*) FROM inbox WHERE received_at >= ? AND received_at < ? "
    "UNION ALL SELECT count(*) FROM inbox WHERE exported_at IS NULL"
)
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

    def inbox_page(self, query: InboxQuery) -> list[ListingRow]:
        """``query``'s page of its date range, newest first, cut by SQLite (a query that
        asks nothing sealed: ``InboxQuery.sealed`` is False)."""
        values = (*KNOWN_STATES, query.since, query.until, query.limit, query.offset)
        return self._tuples(_PAGE, values)

    def inbox_ids(self, query: InboxQuery) -> list[IdRow]:
        """Every row of ``query``'s date range, newest first, as ``index.IdRow``."""
        return self._tuples(_IDS, (query.since, query.until))

    def inbox_sealed(self, rowids: list[int]) -> dict[int, bytes]:
        """The sealed index rows of the inbox rows ``rowids`` (those that have one)."""
        holes = ",".join("?" * len(rowids))
        sql = (
            "SELECT i.rowid, x.sealed FROM inbox i JOIN inbox_index x "  # noqa: S608 - "?" marks
            f"ON x.doc_id = i.doc_id AND x.sender = i.sender WHERE i.rowid IN ({holes})"
        )
        return dict(self._tuples(sql, tuple(rowids)))

    def inbox_rows(self, rowids: list[int]) -> list[ListingRow]:
        """The listing rows of ``rowids`` (a page found by a search), in that order."""
        if not rowids:
            return []
        holes = ",".join("?" * len(rowids))
        sql = f"{_COLUMNS}, i.rowid {_JOINS} WHERE i.rowid IN ({holes})"
        found = {row[-1]: row[:-1] for row in self._tuples(sql, (*KNOWN_STATES, *rowids))}
        return [found[rowid] for rowid in rowids if rowid in found]

    def _tuples(self, sql: str, values: tuple[Any, ...]) -> list[Any]:
        """The rows of a read as plain tuples (hot paths: thousands of rows)."""
        try:
            with self._read_lock:
                cursor = self._reader.cursor()
                cursor.row_factory = None
                return cursor.execute(sql, values).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"The database could not be read ({exc}).") from exc

    def inbox_counts(self, query: InboxQuery) -> tuple[int, int]:
        """(documents received in ``query``'s date range, documents not yet read)."""
        rows = self._query(_COUNT, (query.since, query.until))
        return int(rows[0][0]), int(rows[1][0])

    def inbox_index_rows(self, doc_id: str) -> list[tuple[str, bytes]]:
        """(sender, sealed index row) of a received document, by its full id."""
        rows = self._query("SELECT sender, sealed FROM inbox_index WHERE doc_id=?", (doc_id,))
        return [(str(row["sender"]), bytes(row["sealed"])) for row in rows]

    def stored_by_sender(self) -> dict[str, int]:
        """Bytes of the envelopes stored from each sender (the quota's counters, at start)."""
        rows = self._query("SELECT sender, sum(size) AS n FROM inbox GROUP BY sender")
        return {str(row["sender"]): int(row["n"]) for row in rows}

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

    def inbox_with_prefix(self, prefix: str, limit: int) -> list[InboxRow]:
        """Up to ``limit`` received documents whose id starts with ``prefix`` (the
        primary key's index: O(log n), however many documents are stored)."""
        rows = self._query(
            f"SELECT {_INBOX} FROM inbox WHERE doc_id >= ? AND doc_id < ? "  # noqa: S608
            "ORDER BY doc_id LIMIT ?",
            (*prefix_range(prefix), limit),
        )
        return [from_row(InboxRow, row) for row in rows]

    def inbox(self) -> list[InboxRow]:
        rows = self._query(f"SELECT {_INBOX} FROM inbox ORDER BY received_at")  # noqa: S608
        return [from_row(InboxRow, row) for row in rows]

    def mark_exported(self, doc_id: str, sender: str, now: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE inbox SET exported_at=? WHERE doc_id=? AND sender=?", (now, doc_id, sender)
            )
