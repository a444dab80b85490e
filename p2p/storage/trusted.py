"""The identity keys a home knows, read without the daemon and without writing anything.

``pli verify`` must work offline, with or without the daemon running, and must
never change the home it reads. So it reads:

- this practice's own public identity key: ``keys/public.json`` (written with the
  key file, no secret in it), or the key file itself when it is not protected by a
  passphrase (homes made before ``public.json`` existed);
- the peers from the database, opened **read-only** (SQLite ``mode=ro``: a running
  daemon's WAL is read as of its last commit; with no daemon, ``immutable=1`` too,
  so not even a ``-wal``/``-shm`` file is created; nothing is ever migrated): peer
  id, identity key, the local name the practice addresses the peer by, its
  state (``paired``, ``removed``, ``revoked``...) and, for a revoked key, when
  this home learned of the revocation (table ``revocations``).

Nothing here decides what is trusted: ``p2p.documents.trust`` does, from these rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from p2p.errors import StorageError
from p2p.storage import keystore

DATABASE = "pli.db"


@dataclass(frozen=True)
class StoredKey:
    peer_id: str  # hex
    identity: bytes  # Ed25519 public key
    name: str  # the name this practice addresses the key's owner by
    state: str  # "self", or the peer's state in the database: paired | removed | revoked ...
    revoked_since: int | None = None  # when this home learned the key is revoked


def known_keys(home: Path) -> list[StoredKey]:
    """This practice's own key (if found) and every peer row of its database."""
    keys = []
    own = own_identity(home)
    if own is not None:
        keys.append(own)
    return keys + _peers(home / DATABASE)


def own_identity(home: Path) -> StoredKey | None:
    """Our public identity, without the passphrase: ``keys/public.json``, else the key file."""
    from p2p.storage.config import load_profile
    from protocol import PublicIdentity

    key = keystore.public_key(home)
    if key is None:
        return None
    peer_hex = PublicIdentity(key).peer_id.hex
    name = ""
    with contextlib.suppress(Exception):  # a damaged profile: the key is still ours
        name = str(load_profile(home).get("name") or "")
    return StoredKey(peer_hex, key, name, "self")


def _peers(path: Path) -> list[StoredKey]:
    if not path.is_file():
        return []
    # No daemon has the database open (no WAL file): read it as an immutable file, so that
    # SQLite creates no -wal/-shm next to it. Otherwise share the daemon's WAL, read-only.
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(str(path))}?{mode}"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            rows = db.execute(
                "SELECT p.peer_id, p.identity, p.name, p.state, r.learned_at FROM peers p "
                "LEFT JOIN revocations r ON r.peer_id = p.peer_id"
            ).fetchall()
    except sqlite3.Error as exc:
        raise StorageError(
            f"pli could not read the list of paired peers in {path} ({exc}), so it cannot "
            "tell whose key signed this document. Check the home folder, or restore it from "
            "its backup."
        ) from exc
    return [
        StoredKey(str(peer_id), bytes(identity), str(name), str(state), _since(since))
        for peer_id, identity, name, state, since in rows
        if isinstance(identity, bytes) and len(identity) == 32
    ]


def _since(value: object) -> int | None:
    return value if isinstance(value, int) else None
