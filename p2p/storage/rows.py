"""The rows of the daemon's database, as typed dataclasses; states as enums.

``Store`` selects columns by name (``columns``) and builds these with
``from_row``, so adding a column or a state cannot shift what a field means.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TypeVar

from p2p.storage.failures import Failure, failure


class PeerState(StrEnum):
    """A peer's row: trusted, waiting for the person's confirmation, removed, or revoked."""

    PAIRED = "paired"
    PENDING = "pending"
    REMOVED = "removed"
    REVOKED = "revoked"


class OutboxState(StrEnum):
    """One (document, recipient) of the outbox.

    ``queued`` is retried until a signed receipt moves it to ``delivered`` or
    ``rejected``; ``cancelled`` ends it without a receipt (the recipient was
    removed or revoked) and it is never offered again.
    """

    QUEUED = "queued"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PeerRow:
    peer_id: str
    identity: bytes
    card: bytes
    name: str
    fingerprint: str
    discovery_secret: bytes | None
    addresses: tuple[str, ...]
    state: PeerState
    paired_at: int
    last_seen: int | None = None


@dataclass(frozen=True)
class ProposedName:
    """A new name from a peer's signed card, waiting for the person to accept it."""

    name: str
    at: int


@dataclass(frozen=True)
class OutboxRow:
    doc_id: str
    peer_id: str
    size: int
    digest: bytes
    created_at: int
    state: OutboxState
    attempts: int
    next_attempt: float
    last_error: str | None
    receipt: bytes | None
    receipt_time: int | None
    receipt_status: str | None
    #: Why ``last_error`` (pli's English sentence): None for a row from before the codes.
    error_code: Failure | None = None

    @classmethod
    def new(cls, doc_id: str, peer_id: str, size: int, digest: bytes, created_at: int) -> OutboxRow:
        """A document just queued for one recipient, as ``Store.queue_many`` stores it."""
        state = OutboxState.QUEUED
        return cls(doc_id, peer_id, size, digest, created_at, state, 0, 0.0, None, None, None, None)


@dataclass(frozen=True)
class InboxRow:
    doc_id: str
    sender: str
    size: int
    digest: bytes
    received_at: int
    receipt: bytes
    exported_at: int | None = None


@dataclass(frozen=True)
class RevocationRow:
    peer_id: str
    identity: bytes
    statement: bytes
    revoked_at: int
    learned_at: int
    source: str
    known_peer: bool


@dataclass(frozen=True)
class StoredReceipt:
    """A recipient's verified receipt for one outbox row, ready to be stored."""

    doc_id: str
    peer_id: str
    receipt: bytes
    time: int
    status: str
    #: The receipt came through a mailbox (shown as the way it came back).
    by_mailbox: bool = False

    @property
    def state(self) -> OutboxState:
        rejected = self.status.startswith("rejected")
        return OutboxState.REJECTED if rejected else OutboxState.DELIVERED


Row = TypeVar("Row", PeerRow, OutboxRow, InboxRow, RevocationRow)


_NAMES: dict[type, tuple[str, ...]] = {}


def names(cls: type[Row]) -> tuple[str, ...]:
    """The fields of ``cls``, in order: its columns."""
    found = _NAMES.get(cls)
    if found is None:
        found = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return found


def columns(cls: type[Row]) -> str:
    """The SELECT list for ``cls``: its fields, by name, in its order."""
    return ", ".join(names(cls))


def marks(cls: type[Row]) -> str:
    """Named parameters for every field of ``cls``: ``:doc_id, :sender, ...``."""
    return ", ".join(f":{name}" for name in names(cls))


def from_row(cls: type[Row], row: sqlite3.Row) -> Row:
    """Build ``cls`` from a row by column name, typing the columns that need it."""
    values = {name: row[name] for name in names(cls)}
    if cls is PeerRow:
        values["addresses"] = tuple(json.loads(values["addresses"]))
        values["state"] = PeerState(values["state"])
    elif cls is OutboxRow:
        values["state"] = OutboxState(values["state"])
        values["error_code"] = failure(values["error_code"])
    elif cls is RevocationRow:
        values["known_peer"] = bool(values["known_peer"])
    return cls(**values)
