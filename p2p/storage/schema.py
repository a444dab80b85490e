"""The database's tables, as the SQL that creates them, one version at a time.

``Database`` (``database.py``) applies the migrations above the file's
``PRAGMA user_version`` in order, each in one transaction; a database from a
newer pli is refused. Version 2 adds the later receipts' tables (``later_receipts.py``),
version 3 the local API's tokens (``tokens.py``), version 4 the outbox's reason
codes (``failures.py``: rows recorded before keep their sentence, with no code).
"""

from __future__ import annotations

from p2p.storage import later_receipts, tokens

SCHEMA_VERSION = 4

MIGRATIONS: dict[int, str] = {
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
    3: tokens.SCHEMA,  # the local API's tokens for other software (tokens.py)
    # Why last_error: a code the page says in its own words (failures.Failure).
    4: "ALTER TABLE outbox ADD COLUMN error_code TEXT",
}
