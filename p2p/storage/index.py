"""The inbox index: each received document's description, sealed, next to its row.

Listing the inbox used to decrypt the inner header of every envelope on every
call (1.2 s for 3,000 documents). The description a listing shows (kind,
files, and the clinical metadata: patient name, birth date, subject) is now
written once, when the document is committed, into ``inbox_index`` — sealed,
so that ``pli.db``, its ``-wal`` file and their backups hold no patient data
in clear, as before.

Why a secretbox with a derived key:

- The key is BLAKE2b keyed with the practice's document key (the X25519
  secret that opens the envelopes) and a label of its own. Whoever can open
  the index could already open every envelope: no new secret to store, back
  up or lose, and no weaker place for patient data than the envelopes. The
  label keeps the two uses apart (the index key opens nothing else).
- XSalsa20-Poly1305 (libsodium ``crypto_secretbox``) with a random nonce per
  row: a few microseconds per row, so 10,000 rows list in well under 100 ms.
  Each sealed row names its document and sender inside the box, and opening
  checks them: rows cannot be swapped by someone who can write the database.
- SQLCipher (the whole database encrypted) would need a crypto library
  outside PyNaCl / ``cryptography``, and would hide nothing more that matters
  here: the rows' other columns (ids, sizes, times) are not clinical.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl import bindings
from nacl.encoding import RawEncoder

from p2p.storage.rows import InboxSummary

#: BLAKE2b personalisation of the index key (≤ 16 bytes).
INDEX_KEY_LABEL = b"pli/1/index-key"
NONCE_SIZE = bindings.crypto_secretbox_NONCEBYTES


class IndexKey:
    """Seals and opens index rows with a key derived from the document key.

    A sealed row's plaintext is the JSON members ``"id":…,"from":…,"kind":…``
    (no braces) that ``GET /v1/inbox`` shows for the document: opening checks
    the id and sender it starts with, and the listing splices the members into
    its answer without parsing them again (they are our own JSON, authenticated
    by the box: nobody without the key can make one).
    """

    def __init__(self, doc_secret: bytes) -> None:
        self._key = nacl.hash.blake2b(
            b"", digest_size=32, key=doc_secret, person=INDEX_KEY_LABEL, encoder=RawEncoder
        )

    def seal(self, doc_id: str, sender: str, described: dict[str, Any]) -> bytes:
        """Seal ``described`` (``documents.describe.describe`` of the document)."""
        plain = _members(doc_id, sender) + json.dumps(described)[1:-1].encode()
        nonce = nacl.utils.random(NONCE_SIZE)
        return nonce + bindings.crypto_secretbox(plain, nonce, self._key)

    def members(self, doc_id: str, sender: str, sealed: bytes) -> bytes | None:
        """The JSON members sealed for (doc_id, sender); None if not that, or damaged."""
        try:
            plain = bindings.crypto_secretbox_open(sealed[NONCE_SIZE:], sealed[:NONCE_SIZE],
                                                   self._key)  # fmt: skip
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            return None
        return plain if plain.startswith(_members(doc_id, sender)) else None

    def open(self, doc_id: str, sender: str, sealed: bytes) -> dict[str, Any] | None:
        """The description sealed for (doc_id, sender), as a dict; None if not that."""
        members = self.members(doc_id, sender, sealed)
        return None if members is None else dict(json.loads(b"{" + members + b"}"))


def _members(doc_id: str, sender: str) -> bytes:
    """The members every sealed row starts with (ids are hex: nothing to escape)."""
    return b'"id":"%s","from":"%s",' % (doc_id.encode(), sender.encode())


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a listing builds its rows.

    10,000 rows allocate some 30,000 objects that all live until the answer is
    sent and hold no cycle: without the pause, the collector scans them again
    and again (about half of the listing's time, measured by
    ``bench/inbox_listing.py``). Collection resumes as it was afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def listing_json(
    entries: Iterable[tuple[InboxSummary, bytes]],
    names: dict[str, str],
    revoked: dict[str, int] | None = None,
) -> bytes:
    """The ``GET /v1/inbox`` answer: each row's sealed members plus its clear columns.

    ``revoked``: sender → when this practice learned its key was revoked; only
    for those (rare) rows is the document's creation time read back from the JSON.
    """
    quoted = {peer: json.dumps(name).encode() for peer, name in names.items()}
    unknown = json.dumps("?").encode()
    revoked = revoked or {}
    parts = [
        b'{%s,"from_name":%s,"size":%d,"received_at":%d,"exported_at":%s,%s}' % (
            members, quoted.get(row.sender, unknown), row.size, row.received_at,
            b"null" if row.exported_at is None else b"%d" % row.exported_at,
            _revocation_members(members, revoked.get(row.sender)))
        for row, members in entries
    ]  # fmt: skip
    return b"[" + b",".join(parts) + b"]"


def _revocation_members(members: bytes, revoked_since: int | None) -> bytes:
    """``sender_revoked_since`` and ``signed_after_revocation`` (see api/revocations.py)."""
    if revoked_since is None:
        return b'"sender_revoked_since":null,"signed_after_revocation":false'
    created_at = json.loads(b"{" + members + b"}")["created_at"]
    after = b"true" if created_at > revoked_since else b"false"
    return b'"sender_revoked_since":%d,"signed_after_revocation":%s' % (revoked_since, after)
