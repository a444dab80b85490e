"""The inbox index: each received document's description, sealed, next to its row.

Listing the inbox used to decrypt the inner header of every envelope on every
call (1.2 s for 3,000 documents). The description a listing shows (kind,
files, and the clinical metadata: patient name, birth date, subject) is now
written once, when the document is committed, into ``inbox_index`` — sealed,
so that ``pli.db``, its ``-wal`` file and their backups hold no patient data
in clear, as before.

Why an AEAD with a derived key:

- The key is BLAKE2b keyed with the practice's document key (the X25519
  secret that opens the envelopes) and a label of its own. Whoever can open
  the index could already open every envelope: no new secret to store, back
  up or lose, and no weaker place for patient data than the envelopes. The
  label keeps the two uses apart (the index key opens nothing else).
- ChaCha20-Poly1305 (``cryptography``'s AEAD, about 1 µs a row where PyNaCl's
  secretbox call costs 2.3 µs) with a random 96-bit nonce per row: a row is
  sealed once per received document (again only if damaged), far below the
  2^32 rows one key may seal with random nonces. The row's document id and
  sender are the associated data: a sealed row moved to another row, or
  damaged, does not open, and is described again from its envelope.
- SQLCipher (the whole database encrypted) would need a crypto library
  outside PyNaCl / ``cryptography``, and would hide nothing more that matters
  here: the rows' other columns (ids, sizes, times) are not clinical.

Listing (``listing_json``) is one query that returns, for each row, its nonce,
its box, its associated data and the clear part of its JSON already written
by SQLite (integers through ``printf('%d')``, the peer's name through
``json_quote``); Python opens each box and joins bytes. No per-row object is
built but the query's tuple and the row's JSON (``bench/inbox_listing.py``).
A page of a search (``matching``, ``GET /v1/inbox/page``) opens the rows of its
date range, matches their search keys and lists only the page's (``search.py``).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import nacl.hash
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl.encoding import RawEncoder

from p2p.storage.search import InboxQuery, folded, key_of_members, search_key, split_sealed

#: BLAKE2b personalisation of the index key (≤ 16 bytes).
INDEX_KEY_LABEL = b"pli/1/index-key"
NONCE_SIZE = 12
#: One row of ``Store.inbox_listing``: nonce, box (None if the row has no index
#: entry), associated data (``doc_id:sender``), the clear JSON members that
#: follow the sealed ones (with the closing brace unless the sender is revoked),
#: and when this practice learned the sender was revoked (None: not revoked).
ListingRow = tuple[bytes | None, bytes | None, bytes, bytes, int | None]
#: A row of ``Store.inbox_ids``: row id, document id, sender.
IdRow = tuple[int, str, str]
#: Search keys kept in memory at most (about 150 bytes each); then they are read again.
MAX_KEYS = 200_000


class IndexKey:
    """Seals and opens index rows with a key derived from the document key.

    A sealed row's plaintext is its search key (``search.search_key``: kind and
    folded text, what a search matches) then the JSON members
    ``"id":…,"from":…,"kind":…`` (no braces) that ``GET /v1/inbox`` shows for
    the document (rows sealed before search keys have the members only); its associated
    data is ``doc_id:sender``. The listing splices the members into its answer
    without parsing them again (they are our own JSON, authenticated by the
    AEAD: nobody without the key can make one).
    """

    def __init__(self, doc_secret: bytes) -> None:
        key = nacl.hash.blake2b(
            b"", digest_size=32, key=doc_secret, person=INDEX_KEY_LABEL, encoder=RawEncoder
        )
        self._aead = ChaCha20Poly1305(key)
        #: (doc id, sender) -> search key, of the rows opened by a search (memory only:
        #: on disk they stay sealed). Written by one worker thread at a time or the same
        #: value by two: a dict's item assignment is atomic.
        self._keys: dict[tuple[str, str], bytes] = {}

    def seal(self, doc_id: str, sender: str, described: dict[str, Any]) -> bytes:
        """Seal ``described`` (``documents.describe.describe`` of the document): nonce + box."""
        members = _members(doc_id, sender) + json.dumps(described)[1:-1].encode()
        plain = search_key(described) + members
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plain, associated(doc_id, sender))

    def members(self, doc_id: str, sender: str, sealed: bytes) -> bytes | None:
        """The JSON members sealed for (doc_id, sender); None if not that, or damaged."""
        plain = self._open(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated(doc_id, sender))
        return None if plain is None else split_sealed(plain)[1]

    def _open(self, nonce: bytes | None, box: bytes | None, aad: bytes) -> bytes | None:
        try:
            return self._aead.decrypt(nonce, box, aad)  # type: ignore[arg-type]
        except (InvalidTag, TypeError, ValueError):  # damaged, moved, short, or no row (None)
            return None

    def open(self, doc_id: str, sender: str, sealed: bytes) -> dict[str, Any] | None:
        """The description sealed for (doc_id, sender), as a dict; None if not that."""
        members = self.members(doc_id, sender, sealed)
        return None if members is None else dict(json.loads(b"{" + members + b"}"))

    def listing_json(self, rows: list[ListingRow], again: Callable[[str, str], bytes]) -> bytes:
        """The ``GET /v1/inbox`` answer from ``Store.inbox_listing``'s rows.

        ``again(doc_id, sender)``: the members of a row whose index entry is
        missing or does not open, described again from its envelope (rare).
        """
        parts = []
        with gc_paused():
            for nonce, box, aad, tail, revoked in rows:
                members = self._row(nonce, box, aad, again)[1]
                parts.append(_entry(members, tail, revoked))
            return b"[" + b",".join(parts) + b"]"

    def matching(
        self,
        rows: list[IdRow],
        query: InboxQuery,
        names: Mapping[str, str],
        sealed_of: Callable[[list[int]], dict[int, bytes]],
        again: Callable[[str, str], bytes],
    ) -> tuple[list[int], int]:
        """The row ids of ``query``'s page and how many rows match, from
        ``Store.inbox_ids``'s rows (the date range, newest first), each matched on its
        search key (``search.py``). The keys are kept in memory once opened
        (``sealed_of`` reads the sealed rows not seen yet): a document's key never
        changes, and a search then opens no box."""
        self._remember(
            [row for row in rows if (row[1], row[2]) not in self._keys], sealed_of, again
        )
        page, found, first, last = [], 0, query.offset, query.offset + query.limit
        senders = {sender: folded(name).encode() for sender, name in names.items()}
        match, keys = query.matcher(), self._keys
        for rowid, doc_id, sender in rows:
            key = keys.get((doc_id, sender))
            if key is None or not match(key, senders.get(sender, b"")):
                continue
            if first <= found < last:
                page.append(rowid)
            found += 1
        return page, found

    def _remember(
        self,
        rows: list[IdRow],
        sealed_of: Callable[[list[int]], dict[int, bytes]],
        again: Callable[[str, str], bytes],
    ) -> None:
        """Open the index rows of ``rows`` and keep their search keys."""
        if len(self._keys) + len(rows) > MAX_KEYS:
            self._keys.clear()
        for start in range(0, len(rows), 500):
            batch = rows[start : start + 500]
            sealed = sealed_of([rowid for rowid, _doc, _sender in batch])
            for rowid, doc_id, sender in batch:
                box = sealed.get(rowid, b"")
                aad = associated(doc_id, sender)
                key, members = self._row(box[:NONCE_SIZE], box[NONCE_SIZE:], aad, again)
                self._keys[doc_id, sender] = key or key_of_members(members)

    def _row(
        self,
        nonce: bytes | None,
        box: bytes | None,
        aad: bytes,
        again: Callable[[str, str], bytes],
    ) -> tuple[bytes | None, bytes]:
        """(search key, JSON members) of one listed row, described again if damaged."""
        try:
            plain = self._aead.decrypt(nonce, box, aad)  # type: ignore[arg-type]
        except (InvalidTag, TypeError, ValueError):
            doc_id, _, sender = aad.decode().partition(":")
            return None, again(doc_id, sender)
        return split_sealed(plain)


def _entry(members: bytes, tail: bytes, revoked: int | None) -> bytes:
    """One entry of a listing: sealed members, clear members, the revocation if any."""
    if revoked is None:
        return b"{" + members + tail
    return b"{" + members + tail + _revocation_members(members, revoked)


def associated(doc_id: str, sender: str) -> bytes:
    """An index row's associated data: the row it belongs to."""
    return f"{doc_id}:{sender}".encode()


def _members(doc_id: str, sender: str) -> bytes:
    """The members every sealed row starts with (ids are hex: nothing to escape)."""
    return b'"id":"%s","from":"%s",' % (doc_id.encode(), sender.encode())


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a listing builds its rows.

    10,000 rows allocate tens of thousands of objects that all live until the
    answer is sent and hold no cycle: without the pause, the collector scans
    them again and again (it was half of the listing's time, measured by
    ``bench/inbox_listing.py``). Collection resumes as it was afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _revocation_members(members: bytes, revoked_since: int) -> bytes:
    """``sender_revoked_since`` and ``signed_after_revocation`` (see api/revocations.py)."""
    created_at = json.loads(b"{" + members + b"}")["created_at"]
    after = b"true" if created_at > revoked_since else b"false"
    return b',"sender_revoked_since":%d,"signed_after_revocation":%s}' % (revoked_since, after)
