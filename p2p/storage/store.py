"""The daemon's durable state: SQLite in WAL mode, schema versioned from day one.

Tables: ``peers`` (who we are paired with), ``outbox`` (one row per document
and recipient, kept until a signed receipt is stored), ``inbox`` (documents
received, one row per sender and document id), ``revocations`` (signed
statements that an identity is revoked, see ``protocol.Revocation``),
``peer_names`` (a new name a peer's card proposes, until the person accepts it:
``peers.name`` is the name the practice addresses the peer by), ``inbox_index``
(each received document's description, sealed: see ``index.py``), ``later_out``
and ``later_in`` (integrated and read receipts: ``later_receipts.py``), ``api_tokens``
(the local API's tokens for other software, hashed: see ``tokens.py``). Envelopes
themselves live in files (see ``files.Layout``); rows only point at them. No
clinical metadata is stored in clear here.

The queries of received documents are in ``received.py``, the connections,
locks and transactions under them in ``database.py``.

Rows are selected by column name into the dataclasses of ``rows.py``
(``from_row``), and states are ``StrEnum`` members, so a new column or state cannot shift
what a field means.

Every write is one transaction with ``synchronous=FULL``: once a method
returns, the change survives ``kill -9`` and a power cut.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

from p2p.storage import later_receipts
from p2p.storage.later_receipts import LaterReceiptRows
from p2p.storage.received import ReceivedDocuments
from p2p.storage.rows import (
    InboxRow,
    OutboxRow,
    OutboxState,
    PeerRow,
    PeerState,
    ProposedName,
    RevocationRow,
    StoredReceipt,
    columns,
    from_row,
    marks,
)
from p2p.storage.tokens import SCHEMA as TOKENS_SCHEMA
from p2p.storage.tokens import ApiTokenRows, TokenRow
from protocol import limits

__all__ = [
    "InboxRow",
    "OutboxRow",
    "OutboxState",
    "PeerRow",
    "PeerState",
    "ProposedName",
    "RevocationRow",
    "Store",
    "StoredReceipt",
    "TokenRow",
]

_PEER = columns(PeerRow)
_OUTBOX = columns(OutboxRow)
_REVOCATION = columns(RevocationRow)

SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE peers (
        peer_id          TEXT PRIMARY KEY,        -- hex of the 32-byte peer id
        identity         BLOB NOT NULL,           -- Ed25519 public key
        card             BLOB NOT NULL,           -- signed profile card as received
        name             TEXT NOT NULL,
        fingerprint      TEXT NOT NULL,
        discovery_secret BLOB,
        addresses        TEXT NOT NULL DEFAULT '[]',
        state            TEXT NOT NULL,           -- paired | pending | removed | revoked
        paired_at        INTEGER NOT NULL,
        last_seen        INTEGER
    );
    CREATE TABLE outbox (
        doc_id       TEXT NOT NULL,
        peer_id      TEXT NOT NULL,
        size         INTEGER NOT NULL,
        digest       BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        state        TEXT NOT NULL,               -- queued | delivered | rejected | cancelled
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL DEFAULT 0,
        last_error   TEXT,
        receipt      BLOB,
        receipt_time INTEGER,
        receipt_status TEXT,
        PRIMARY KEY (doc_id, peer_id)
    );
    CREATE INDEX outbox_due ON outbox (state, peer_id, created_at);
    CREATE TABLE inbox (
        doc_id      TEXT NOT NULL,
        sender      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        digest      BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        receipt     BLOB NOT NULL,
        exported_at INTEGER,
        PRIMARY KEY (doc_id, sender)
    );
    CREATE TABLE revocations (
        peer_id     TEXT PRIMARY KEY,             -- hex peer id of the revoked identity
        identity    BLOB NOT NULL,                -- its Ed25519 public key
        statement   BLOB NOT NULL,                -- the 105-byte signed statement
        revoked_at  INTEGER NOT NULL,             -- when it was signed (its own clock)
        learned_at  INTEGER NOT NULL,             -- when this daemon first stored it
        source      TEXT NOT NULL,                -- who brought it (an IP, or "local")
        known_peer  INTEGER NOT NULL              -- 1 if it was one of our peers then
    );
    CREATE TABLE peer_names (
        peer_id     TEXT PRIMARY KEY REFERENCES peers (peer_id),
        proposed    TEXT NOT NULL,                -- the new name the peer's signed card carries
        proposed_at INTEGER NOT NULL              -- when that card arrived
    );
    CREATE TABLE inbox_index (
        doc_id      TEXT NOT NULL,
        sender      TEXT NOT NULL,
        sealed      BLOB NOT NULL,                -- kind, files, clinical metadata (index.py)
        PRIMARY KEY (doc_id, sender)
    );
    CREATE INDEX inbox_by_sender ON inbox (sender, received_at);
    CREATE INDEX inbox_by_time ON inbox (received_at);
    CREATE TABLE mailbox_posts (
        doc_id      TEXT NOT NULL,                -- an outbox document left in a mailbox
        peer_id     TEXT NOT NULL,
        url         TEXT NOT NULL,                -- the mailbox server it was left on
        posted_at   INTEGER NOT NULL,
        receipt_via TEXT,                         -- 'mailbox' when its receipt came that way
        PRIMARY KEY (doc_id, peer_id)
    );
    """,
    2: later_receipts.SCHEMA,
    3: TOKENS_SCHEMA,  # the local API's tokens for other software (tokens.py)
}


class Store(ReceivedDocuments, LaterReceiptRows, ApiTokenRows):
    """The daemon's database: peers, outbox and revocations here, the received
    documents in ``received.py``, connections, locks and transactions (and the
    lock discipline every method follows) in ``database.py``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _MIGRATIONS)

    # --- peers -------------------------------------------------------------------

    def save_peer(self, row: PeerRow) -> None:
        values = {f.name: getattr(row, f.name) for f in fields(PeerRow)}
        values["addresses"] = json.dumps(list(row.addresses))
        with self._tx() as db:
            db.execute(
                f"INSERT INTO peers ({_PEER}) VALUES ({marks(PeerRow)}) "  # noqa: S608 - field names
                "ON CONFLICT(peer_id) DO UPDATE SET "
                "identity=excluded.identity, card=excluded.card, name=excluded.name, "
                "fingerprint=excluded.fingerprint, "
                "discovery_secret=coalesce(excluded.discovery_secret, discovery_secret), "
                "addresses=excluded.addresses, state=excluded.state, paired_at=excluded.paired_at",
                values,
            )
            db.execute("DELETE FROM peer_names WHERE peer_id=?", (row.peer_id,))

    def peer(self, peer_id: str) -> PeerRow | None:
        rows = self._query(f"SELECT {_PEER} FROM peers WHERE peer_id=?", (peer_id,))  # noqa: S608
        return from_row(PeerRow, rows[0]) if rows else None

    def peers(self, *, states: tuple[PeerState, ...] = (PeerState.PAIRED,)) -> list[PeerRow]:
        holes = ",".join("?" * len(states))
        rows = self._query(
            f"SELECT {_PEER} FROM peers WHERE state IN ({holes}) ORDER BY name",  # noqa: S608 - only field names and "?" marks
            tuple(states),
        )
        return [from_row(PeerRow, row) for row in rows]

    def count_peers(self, *, states: tuple[PeerState, ...] = (PeerState.PAIRED,)) -> int:
        """How many peers are in ``states`` (counted by SQLite: no row is decoded)."""
        marks = ",".join("?" * len(states))
        rows = self._query(
            f"SELECT count(*) FROM peers WHERE state IN ({marks})",  # noqa: S608 - only "?" marks
            tuple(states),
        )
        return int(rows[0][0])

    def set_peer_state(self, peer_id: str, state: PeerState) -> None:
        with self._tx() as db:
            db.execute("UPDATE peers SET state=? WHERE peer_id=?", (state, peer_id))

    def update_card(self, peer_id: str, card: bytes, proposed: ProposedName | None) -> None:
        """A newer signed card; the name used stays, ``proposed`` is what now waits (or none)."""
        with self._tx() as db:
            db.execute("UPDATE peers SET card=? WHERE peer_id=?", (card, peer_id))
            db.execute("DELETE FROM peer_names WHERE peer_id=?", (peer_id,))
            if proposed is not None:
                db.execute(
                    "INSERT INTO peer_names VALUES (?,?,?)", (peer_id, proposed.name, proposed.at)
                )

    def rename_peer(self, peer_id: str, name: str) -> None:
        """The name the practice addresses a peer by, chosen or accepted: nothing waits then."""
        with self._tx() as db:
            db.execute("UPDATE peers SET name=? WHERE peer_id=?", (name, peer_id))
            db.execute("DELETE FROM peer_names WHERE peer_id=?", (peer_id,))

    def proposed_names(self) -> dict[str, ProposedName]:
        """Paired peers' new names waiting for the person, by peer id."""
        rows = self._query(
            "SELECT n.peer_id, n.proposed, n.proposed_at FROM peer_names n "
            "JOIN peers p ON p.peer_id = n.peer_id WHERE p.state=?",
            (PeerState.PAIRED,),
        )
        return {row[0]: ProposedName(row[1], row[2]) for row in rows}

    def peer_seen(self, peer_id: str, now: int, address: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE peers SET last_seen=? WHERE peer_id=?", (now, peer_id))
            if address:
                row = db.execute("SELECT addresses FROM peers WHERE peer_id=?", (peer_id,))
                found = row.fetchone()
                if found is not None:
                    addresses = [a for a in json.loads(found[0]) if a != address]
                    addresses.insert(0, address)
                    db.execute(
                        "UPDATE peers SET addresses=? WHERE peer_id=?",
                        (json.dumps(addresses[:8]), peer_id),
                    )

    # --- outbox ------------------------------------------------------------------

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

    def outbox_entry(self, doc_id: str, peer_id: str) -> OutboxRow | None:
        rows = self._query(
            f"SELECT {_OUTBOX} FROM outbox WHERE doc_id=? AND peer_id=?",  # noqa: S608
            (doc_id, peer_id),
        )
        return from_row(OutboxRow, rows[0]) if rows else None

    def delivered_many(self, receipts: list[StoredReceipt]) -> None:
        """Store several verified receipts in one commit."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state=:state, receipt=:receipt, receipt_time=:time, "
                "receipt_status=:status, last_error=NULL WHERE doc_id=:doc_id AND peer_id=:peer_id",
                [{**asdict(receipt), "state": receipt.state} for receipt in receipts],
            )

    def due(self, peer_id: str, now: float) -> list[OutboxRow]:
        """The documents queued for ``peer_id`` whose next attempt is due, oldest first."""
        rows = self._query(
            f"SELECT {_OUTBOX} FROM outbox WHERE state=? AND peer_id=? "  # noqa: S608
            "AND next_attempt<=? ORDER BY created_at, doc_id",
            (OutboxState.QUEUED, peer_id, now),
        )
        return [from_row(OutboxRow, row) for row in rows]

    def due_peers(self) -> list[tuple[str, float]]:
        """(peer, earliest next attempt) for every peer with queued documents."""
        rows = self._query(
            "SELECT peer_id, min(next_attempt) FROM outbox WHERE state=? GROUP BY peer_id",
            (OutboxState.QUEUED,),
        )
        return [(str(peer), float(due)) for peer, due in rows]

    def attempts_failed(
        self, rows: list[tuple[str, str]], error: str, next_attempt: Callable[[int], float]
    ) -> None:
        """One failed attempt for each queued (doc, peer), in one commit.

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
                    "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt=? "
                    "WHERE doc_id=? AND peer_id=?",
                    (error, next_attempt(int(found[0])), doc_id, peer_id),
                )

    def remove_peer(self, peer_id: str, reason: str) -> int:
        """Mark the peer removed and cancel what was queued to it, in one commit."""
        with self._tx() as db:
            db.execute("UPDATE peers SET state=? WHERE peer_id=?", (PeerState.REMOVED, peer_id))
            return self._cancel(db, peer_id, reason)

    @staticmethod
    def _cancel(db: sqlite3.Connection, peer_id: str, reason: str) -> int:
        cursor = db.execute(
            "UPDATE outbox SET state=?, last_error=? WHERE peer_id=? AND state=?",
            (OutboxState.CANCELLED, reason, peer_id, OutboxState.QUEUED),
        )
        return cursor.rowcount

    def cancel_unpaired(self, reason: str) -> int:
        """Cancel what is queued to peers that are no longer paired (kept from an old run)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET state=?, last_error=? WHERE state=? AND peer_id NOT IN "
                "(SELECT peer_id FROM peers WHERE state=?)",
                (OutboxState.CANCELLED, reason, OutboxState.QUEUED, PeerState.PAIRED),
            )
            return cursor.rowcount

    def retry_now(self, peer_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET next_attempt=0 WHERE peer_id=? AND state=?",
                (peer_id, OutboxState.QUEUED),
            )

    def cancel_queued(self, doc_id: str, peer_id: str, reason: str) -> bool:
        """A queued row ends ``cancelled`` (never sent); False if it was not queued."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET state=?, last_error=? WHERE doc_id=? AND peer_id=? AND state=?",
                (OutboxState.CANCELLED, reason, doc_id, peer_id, OutboxState.QUEUED),
            )
            return cursor.rowcount == 1

    # --- revocations -------------------------------------------------------------

    def revoke(self, row: RevocationRow) -> bool:
        """Store a verified revocation; False if it was already known.

        In the same commit: the identity's peer row becomes ``revoked`` and its
        queued letters ``cancelled`` (they will never be sent). Received and sent
        documents stay. Revocations of unknown identities are capped.
        """
        values = asdict(row)
        values["source"], values["known_peer"] = row.source[:64], int(row.known_peer)
        with self._tx() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO revocations ({_REVOCATION}) "  # noqa: S608 - field names
                f"VALUES ({marks(RevocationRow)})",
                values,
            )
            if cursor.rowcount != 1:
                return False
            db.execute("UPDATE peers SET state=? WHERE peer_id=?", (PeerState.REVOKED, row.peer_id))
            self._cancel(db, row.peer_id, "the recipient's key was revoked")
            db.execute(
                "DELETE FROM revocations WHERE known_peer=0 AND peer_id IN (SELECT peer_id "
                "FROM revocations WHERE known_peer=0 ORDER BY learned_at DESC LIMIT -1 OFFSET ?)",
                (limits.MAX_UNKNOWN_REVOCATIONS,),
            )
        return True

    def revocation(self, peer_id: str) -> RevocationRow | None:
        rows = self._query(
            f"SELECT {_REVOCATION} FROM revocations WHERE peer_id=?",  # noqa: S608 - field names
            (peer_id,),
        )
        return from_row(RevocationRow, rows[0]) if rows else None

    def revocations(self) -> list[RevocationRow]:
        rows = self._query(
            f"SELECT {_REVOCATION} FROM revocations ORDER BY learned_at, peer_id"  # noqa: S608
        )
        return [from_row(RevocationRow, row) for row in rows]

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        by_state: dict[str, int] = {row["state"]: row["n"] for row in rows}
        inbox = self._query(
            "SELECT count(*) AS n, count(*) FILTER (WHERE exported_at IS NULL) AS new FROM inbox"
        )[0]
        return {
            "queued": by_state.get(OutboxState.QUEUED, 0),
            "delivered": by_state.get(OutboxState.DELIVERED, 0),
            "inbox": inbox["n"],
            "inbox_new": inbox["new"],
        }

    # --- mailbox posts ---------------------------------------------------------------

    def mailbox_posted(self, doc_id: str, peer_id: str, url: str, now: int) -> None:
        """The whole envelope of ``doc_id`` is in ``peer_id``'s mailbox at ``url``."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO mailbox_posts (doc_id, peer_id, url, posted_at) "
                "VALUES (?,?,?,?)",
                (doc_id, peer_id, url, now),
            )

    def mailbox_receipt(self, doc_id: str, peer_id: str) -> None:
        """Its receipt came back through the mailbox."""
        with self._tx() as db:
            db.execute(
                "UPDATE mailbox_posts SET receipt_via='mailbox' WHERE doc_id=? AND peer_id=?",
                (doc_id, peer_id),
            )

    def mailbox_posts(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """(doc, peer) -> (mailbox URL, how its receipt came) for every document posted."""
        rows = self._query("SELECT doc_id, peer_id, url, receipt_via FROM mailbox_posts")
        return {(r["doc_id"], r["peer_id"]): (r["url"], r["receipt_via"]) for r in rows}
