"""The later receipts' rows: integrated, not integrated, read (``protocol.receipt_layers``).

A part of ``Store`` (``store.py`` inherits it), on two tables:

- ``later_out``, as the **recipient**: the later receipts this practice signed
  about documents it received, one per (document, sender, layer), kept until the
  sender acknowledged it (``noted``) or a mailbox stored it, then kept as a record
  (``sent_at``, ``sent_via``). Signed and committed before anything is sent, so a
  receipt survives a restart or ``kill -9`` and is signed once: a second request
  for the same layer finds the row and signs nothing.
- ``later_in``, as the **sender**: the later receipts of its recipients, verified,
  one per (document, recipient, layer): ``via`` says how it came.

One layer may be signed again only in one case: a document the practice software
could not integrate (``not-integrated:NNN``) that it integrates later.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass

from p2p.storage.database import Database

SCHEMA = """
CREATE TABLE later_out (
    doc_id    TEXT NOT NULL,                  -- a received document
    sender    TEXT NOT NULL,                  -- its sender's peer id (hex)
    layer     TEXT NOT NULL,                  -- integrated | read
    status    TEXT NOT NULL,                  -- integrated | not-integrated:NNN | read
    receipt   BLOB NOT NULL,                  -- the signed receipt, as sent
    signed_at INTEGER NOT NULL,
    sent_at   INTEGER,                        -- when the sender noted it, or a mailbox stored it
    sent_via  TEXT,                           -- direct | mailbox
    PRIMARY KEY (doc_id, sender, layer)
);
CREATE INDEX later_out_unsent ON later_out (sent_at, sender);
CREATE TABLE later_in (
    doc_id    TEXT NOT NULL,                  -- a sent document
    peer_id   TEXT NOT NULL,                  -- the recipient who signed it
    layer     TEXT NOT NULL,
    status    TEXT NOT NULL,
    receipt   BLOB NOT NULL,                  -- verified when it was stored
    time      INTEGER NOT NULL,               -- the recipient's signed time
    via       TEXT NOT NULL,                  -- direct | mailbox
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (doc_id, peer_id, layer)
);
"""

_NOT_INTEGRATED = "not-integrated:%"


@dataclass(frozen=True)
class LaterOut:
    """A later receipt this practice signed, as recipient (``sent_at`` None: still to send)."""

    doc_id: str
    sender: str
    layer: str
    status: str
    receipt: bytes
    signed_at: int
    sent_at: int | None = None
    sent_via: str | None = None


@dataclass(frozen=True)
class LaterIn:
    """A recipient's later receipt, verified and stored by this practice as sender."""

    doc_id: str
    peer_id: str
    layer: str
    status: str
    receipt: bytes
    time: int
    via: str
    stored_at: int


_OUT = "doc_id, sender, layer, status, receipt, signed_at, sent_at, sent_via"
_IN = "doc_id, peer_id, layer, status, receipt, time, via, stored_at"


def _out(row: sqlite3.Row) -> LaterOut:
    return LaterOut(**{name: row[name] for name in _OUT.split(", ")})


def _in(row: sqlite3.Row) -> LaterIn:
    return LaterIn(**{name: row[name] for name in _IN.split(", ")})


class LaterReceiptRows(Database):
    """The queries of ``later_out`` and ``later_in``."""

    # --- as recipient ------------------------------------------------------------------

    def senders_of(self, doc_id: str) -> list[str]:
        """Who sent us a document of this id (one peer, unless two chose the same id)."""
        rows = self._query("SELECT sender FROM inbox WHERE doc_id=? ORDER BY sender", (doc_id,))
        return [row["sender"] for row in rows]

    def later_signed(self, row: LaterOut) -> bool:
        """Keep a newly signed receipt to send; False if that layer is signed already.

        A success replaces a failure to integrate that is not superseded yet.
        """
        with self._tx() as db:
            cursor = db.execute(
                f"INSERT INTO later_out ({_OUT}) VALUES (?,?,?,?,?,?,NULL,NULL) "  # noqa: S608 - column names
                "ON CONFLICT (doc_id, sender, layer) DO UPDATE SET status=excluded.status, "
                "receipt=excluded.receipt, signed_at=excluded.signed_at, sent_at=NULL, "
                "sent_via=NULL WHERE excluded.status='integrated' AND later_out.status LIKE ?",
                (*astuple(row)[:6], _NOT_INTEGRATED),
            )
            return cursor.rowcount == 1

    def later_outgoing(self, doc_id: str, sender: str, layer: str) -> LaterOut | None:
        rows = self._query(
            f"SELECT {_OUT} FROM later_out WHERE doc_id=? AND sender=? AND layer=?",  # noqa: S608
            (doc_id, sender, layer),
        )
        return _out(rows[0]) if rows else None

    def later_signed_for(self, doc_id: str) -> list[LaterOut]:
        """The later receipts this practice signed about a received document."""
        rows = self._query(f"SELECT {_OUT} FROM later_out WHERE doc_id=?", (doc_id,))  # noqa: S608
        return [_out(row) for row in rows]

    def integrated_documents(self) -> set[str]:
        """The received documents this practice signed "integrated" for (their ids)."""
        rows = self._query(
            "SELECT DISTINCT doc_id FROM later_out WHERE layer='integrated' AND status='integrated'"
        )
        return {row["doc_id"] for row in rows}

    def later_unsent(self) -> list[LaterOut]:
        """The later receipts still to send, oldest first."""
        rows = self._query(
            f"SELECT {_OUT} FROM later_out WHERE sent_at IS NULL ORDER BY signed_at",  # noqa: S608
        )
        return [_out(row) for row in rows]

    def later_sent(self, doc_id: str, sender: str, status: str, via: str, now: int) -> bool:
        """The sender holds it (it noted it, or a mailbox stored it); False if not ours."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE later_out SET sent_at=?, sent_via=? "
                "WHERE doc_id=? AND sender=? AND status=? AND sent_at IS NULL",
                (now, via, doc_id, sender, status),
            )
            return cursor.rowcount == 1

    def later_dropped(self, sender: str) -> int:
        """Forget what was still to send to ``sender`` (its key was revoked): never sent."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM later_out WHERE sender=? AND sent_at IS NULL", (sender,)
            )
            return cursor.rowcount

    # --- as sender -----------------------------------------------------------------------

    def later_held(self, doc_id: str, peer_id: str) -> dict[str, bytes]:
        """Layer -> the stored receipt, for one sent document and recipient."""
        rows = self._query(
            "SELECT layer, receipt FROM later_in WHERE doc_id=? AND peer_id=?", (doc_id, peer_id)
        )
        return {row["layer"]: row["receipt"] for row in rows}

    def later_stored(self, row: LaterIn) -> None:
        """Store a verified later receipt (it replaces the one of its layer, if any)."""
        with self._tx() as db:
            db.execute(
                f"INSERT OR REPLACE INTO later_in ({_IN}) VALUES (?,?,?,?,?,?,?,?)",  # noqa: S608
                astuple(row),
            )

    def later_received(self, doc_id: str | None = None) -> list[LaterIn]:
        """The later receipts of sent documents (of one document, if given)."""
        if doc_id is None:
            rows = self._query(f"SELECT {_IN} FROM later_in")  # noqa: S608
        else:
            rows = self._query(f"SELECT {_IN} FROM later_in WHERE doc_id=?", (doc_id,))  # noqa: S608
        return [_in(row) for row in rows]

    # --- counted, for ``pli status`` ------------------------------------------------------

    def later_counts(self) -> dict[str, int]:
        """As sender: the recipients that said integrated, not integrated, read; as
        recipient: the later receipts this practice signed that its senders do not hold yet."""
        rows = self._query(
            "SELECT CASE WHEN status LIKE ? THEN 'not_integrated' ELSE status END AS said, "
            "count(*) AS n FROM later_in GROUP BY said",
            (_NOT_INTEGRATED,),
        )
        said = {row["said"]: row["n"] for row in rows}
        unsent = self._query("SELECT count(*) AS n FROM later_out WHERE sent_at IS NULL")[0]
        return {
            "integrated": said.get("integrated", 0),
            "not_integrated": said.get("not_integrated", 0),
            "read": said.get("read", 0),
            "receipts_unsent": unsent["n"],
        }
