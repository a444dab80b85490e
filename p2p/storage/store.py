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

The tables are created by ``schema.py``; the queries of received documents are
in ``received.py``, those of sent documents (the outbox, mailbox posts) in
``sent.py``, the connections, locks and transactions under them in ``database.py``.

Rows are selected by column name into the dataclasses of ``rows.py``
(``from_row``), and states are ``StrEnum`` members, so a new column or state cannot shift
what a field means.

Every write is one transaction with ``synchronous=FULL``: once a method
returns, the change survives ``kill -9`` and a power cut.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from p2p.storage.failures import Failed, Failure
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
from p2p.storage.schema import MIGRATIONS, SCHEMA_VERSION
from p2p.storage.sent import SentDocuments
from p2p.storage.tokens import ApiTokenRows, TokenRow
from protocol import limits

__all__ = [
    "SCHEMA_VERSION",
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


class Store(SentDocuments, ReceivedDocuments, LaterReceiptRows, ApiTokenRows):
    """The daemon's database: peers and revocations here, the sent documents in
    ``sent.py``, the received documents in ``received.py``, the later receipts in
    ``later_receipts.py``, the API tokens in ``tokens.py``; connections, locks and
    transactions (and the lock discipline every method follows) in ``database.py``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, MIGRATIONS)

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

    def remove_peer(self, peer_id: str, reason: Failed) -> int:
        """Mark the peer removed and cancel what was queued to it, in one commit."""
        with self._tx() as db:
            db.execute("UPDATE peers SET state=? WHERE peer_id=?", (PeerState.REMOVED, peer_id))
            return self._cancel(db, peer_id, reason)

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
            self._cancel(db, row.peer_id, Failed.of(Failure.CANCELLED_REVOKED))
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
            **self.later_counts(),
        }
