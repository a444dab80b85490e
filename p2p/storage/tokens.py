"""The local API's tokens for other practice software: their rows, never the tokens.

A part of ``Store`` (``store.py`` inherits it). A token is shown once, when it is
made (``p2p/api/tokens.py``); what is kept is its public ``token_id``, the name a
person gave it, its scopes, its dates and the SHA-256 of its secret part. A
stolen database therefore holds nothing that opens the API: the secret is 32
random bytes, so its hash cannot be searched back.

Revoking keeps the row (``revoked_at``): ``pli api-token list`` still shows the
token, and software still presenting it is told it was revoked, not "unknown".
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from p2p.storage.database import Database

SCHEMA = """
CREATE TABLE api_tokens (
    token_id    TEXT PRIMARY KEY,             -- public part of the token (hex)
    name        TEXT NOT NULL UNIQUE,         -- the software it was made for ("LGC")
    scopes      TEXT NOT NULL,                -- comma-separated, sorted
    secret_hash BLOB NOT NULL,                -- SHA-256 of the secret part
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,                      -- NULL: until revoked
    revoked_at  INTEGER
)
"""

_COLUMNS = "token_id, name, scopes, secret_hash, created_at, expires_at, revoked_at"


@dataclass(frozen=True)
class TokenRow:
    token_id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: bytes
    created_at: int
    expires_at: int | None
    revoked_at: int | None


def _row(row: sqlite3.Row) -> TokenRow:
    return TokenRow(
        token_id=row["token_id"],
        name=row["name"],
        scopes=tuple(s for s in row["scopes"].split(",") if s),
        secret_hash=bytes(row["secret_hash"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class ApiTokenRows(Database):
    """The ``api_tokens`` table's queries."""

    def add_token(self, row: TokenRow) -> bool:
        """Store a new token; False if its name is taken by a token not revoked."""
        with self._tx() as db:
            taken = db.execute(
                "SELECT revoked_at FROM api_tokens WHERE name=?", (row.name,)
            ).fetchone()
            if taken is not None and taken[0] is None:
                return False
            db.execute("DELETE FROM api_tokens WHERE name=?", (row.name,))  # a revoked one
            db.execute(
                f"INSERT INTO api_tokens ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)",  # noqa: S608 - names
                (
                    row.token_id,
                    row.name,
                    ",".join(row.scopes),
                    row.secret_hash,
                    row.created_at,
                    row.expires_at,
                    row.revoked_at,
                ),
            )
        return True

    def token(self, token_id: str) -> TokenRow | None:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id=?",  # noqa: S608 - names
            (token_id,),
        )
        return _row(rows[0]) if rows else None

    def tokens(self) -> list[TokenRow]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, rowid"  # noqa: S608 - names
        )
        return [_row(row) for row in rows]

    def revoke_token(self, token_id: str, now: int) -> bool:
        """Mark a token revoked; False if it was already."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE api_tokens SET revoked_at=? WHERE token_id=? AND revoked_at IS NULL",
                (now, token_id),
            )
            return cursor.rowcount == 1
