"""The archive: the documents this practice sent and received, as stored.

A document is an envelope under the home (``Layout``) and its rows in the store. The
archive finds one from what a person typed (its id, or a unique prefix of it, of four
characters at least), describes it (the inner header, verified when it was stored),
proves it (``Evidence``, which ``pli verify`` checks offline), and decrypts one of its
files into a private temporary file, released only after the whole envelope verified.
It also gives the local API its JSON views of the inbox, the outbox and one document.

Reading an envelope is blocking file work: the async views run it on a worker thread
(``asyncio.to_thread``); ``describe``, ``evidence`` and ``decrypt_file`` themselves
are plain functions, safe on any thread. The archive only reads the store, except
``mark_exported``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from p2p.documents import integration
from p2p.documents.describe import describe
from p2p.errors import BadInput, DocumentUnknown, StorageError
from p2p.storage.files import Layout
from p2p.storage.index import IndexKey
from p2p.storage.later_receipts import LaterIn
from p2p.storage.search import InboxQuery
from p2p.storage.store import OutboxRow, PeerState, Store
from protocol import (
    DocumentMeta,
    EnvelopeReader,
    Evidence,
    LocalIdentity,
    MetaReceived,
    Receipt,
    Verified,
    open_envelope,
)

_Event = TypeVar("_Event", MetaReceived, Verified)
MIN_PREFIX = 4  # characters of a document id a person must type
PREFIX_MATCHES = 20  # documents an ambiguous prefix is counted up to
_HEX = re.compile(r"[0-9a-f]+")
_FULL_ID = re.compile(r"[0-9a-f]{32,64}")
#: Peers whose names documents are shown with.
KNOWN_STATES = (PeerState.PAIRED, PeerState.REMOVED, PeerState.REVOKED)


@dataclass(frozen=True)
class StoredDocument:
    direction: str  # "in" (received) or "out" (sent)
    doc_id: str
    path: Path  # its envelope


class Archive:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        me: LocalIdentity,
        sending: Mapping[tuple[str, str], int],
    ) -> None:
        self.store = store
        self.layout = layout
        self.me = me
        self.sending = sending  # (doc id, peer id) -> bytes sent, while a transfer runs
        self.index_key = IndexKey(me.doc_secret)

    # --- reading a stored envelope (blocking) -----------------------------------------

    def describe(self, path: Path) -> DocumentMeta:
        """The inner header of a stored envelope (it was verified when it was stored)."""
        return self._read_stored(path, MetaReceived, 64 * 1024).meta

    def evidence(self, path: Path) -> Evidence:
        """Verify a stored envelope from end to end (no plaintext) and return its proof."""
        return Evidence.of(self._read_stored(path, Verified, 1024 * 1024).envelope)

    def _read_stored(self, path: Path, wanted: type[_Event], chunk_size: int) -> _Event:
        """Feed a stored envelope to a verify-only reader until the event ``wanted``."""
        reader = EnvelopeReader(self.me, want_plaintext=False)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(chunk_size):
                    for event in reader.feed(chunk):
                        if isinstance(event, wanted):
                            return event
        except OSError as exc:
            raise StorageError(f"The stored document {path.name} could not be read.") from exc
        raise StorageError(f"The stored document {path.name} is damaged.")

    def decrypt_file(self, path: Path, index: int) -> Path:
        """Decrypt file ``index`` of a stored envelope into a private temporary file.

        The plaintext is released (the temporary file returned) only after the
        whole envelope verified; on any failure the temporary file is removed.
        """
        tmp = self.layout.exports_tmp / f"{path.stem}-{index}-{secrets.token_hex(4)}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, open(path, "rb") as source:

                def keep(file_index: int, data: bytes) -> None:
                    if file_index == index:
                        out.write(data)

                verified = open_envelope(source, self.me, keep)
            if not 0 <= index < len(verified.meta.files):
                raise BadInput(f"This document has {len(verified.meta.files)} file(s).")
        except FileNotFoundError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"The stored document {path.name} is missing.") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    # --- finding a document -------------------------------------------------------------

    def find(self, text: str) -> StoredDocument:
        """A document by its id or a unique prefix of it (received ones first): two range
        queries on the tables' primary keys, O(log n) however many documents are kept."""
        needle = text.strip().lower()
        found: dict[str, StoredDocument] = {}
        if len(needle) >= MIN_PREFIX and _HEX.fullmatch(needle):  # ids are lowercase hex
            for row in self.store.inbox_with_prefix(needle, PREFIX_MATCHES):
                path = self.layout.received_envelope(row.sender, row.doc_id)
                found.setdefault(row.doc_id, StoredDocument("in", row.doc_id, path))
            for doc_id in self.store.outbox_ids_with_prefix(needle, PREFIX_MATCHES):
                if doc_id not in found:
                    path = self.layout.sent_envelope(doc_id)
                    found[doc_id] = StoredDocument("out", doc_id, path)
        if not found:
            raise DocumentUnknown(
                f"No document has the id “{text}”. `pli inbox` and `pli outbox` list them.",
                french=f"Aucun document n'a l'identifiant « {text} » : il a peut-être été "
                "supprimé, ou le lien est incomplet. Retrouvez-le dans la boîte de réception "
                "ou les envois.",
            )
        if len(found) > 1:
            count = f"{len(found)}" if len(found) < PREFIX_MATCHES else f"{PREFIX_MATCHES} or more"
            raise BadInput(
                f"“{text}” matches {count} documents; type more of the id.",
                french=f"« {text} » désigne plusieurs documents : donnez l'identifiant en entier.",
            )
        return next(iter(found.values()))

    def _revoked(self, meta: DocumentMeta) -> dict[str, Any]:
        """Whether the sender's key is revoked, and whether it signed this after that
        (the signed time is the signer's claim: every document of a revoked key is marked)."""
        row = self.store.revocation(meta.sender.peer_id.hex)
        return {
            "sender_revoked_since": row.learned_at if row is not None else None,
            "signed_after_revocation": row is not None and meta.created_at > row.learned_at,
        }

    def _names(self) -> dict[str, str]:
        """Peer id → name, for the peers we are or were paired with."""
        rows = self.store.peers(states=tuple(PeerState(state) for state in KNOWN_STATES))
        return {row.peer_id: row.name for row in rows}

    # --- the local API's views ------------------------------------------------------------

    async def outbox_view(self, doc_id: str | None = None) -> list[dict[str, Any]]:
        """One entry per (document, recipient), oldest first (``GET /v1/outbox``);
        only ``doc_id``'s recipients if given (what ``pli send --wait`` polls)."""
        names = self._names()
        described: dict[str, DocumentMeta] = {}
        entries = []
        posts = self.store.mailbox_posts()
        later = _by_document(self.store.later_received())
        for row in self.store.outbox():
            if doc_id is not None and row.doc_id != doc_id:
                continue
            if row.doc_id not in described:
                path = self.layout.sent_envelope(row.doc_id)
                described[row.doc_id] = await asyncio.to_thread(self.describe, path)
            entry = self._outbox_entry(row, described[row.doc_id], names)
            way = _path(row, posts.get((row.doc_id, row.peer_id)))
            entries.append({**entry, **way, **_later(later.get((row.doc_id, row.peer_id), []))})
        return entries

    def _outbox_entry(
        self, row: OutboxRow, meta: DocumentMeta, names: dict[str, str]
    ) -> dict[str, Any]:
        key = (row.doc_id, row.peer_id)
        return {
            "kind": meta.kind,
            "subject": meta.metadata.get("subject", ""),
            "id": row.doc_id,
            "to": row.peer_id,
            "to_name": names.get(row.peer_id, "?"),
            "size": row.size,
            "created_at": row.created_at,
            "state": "sending" if key in self.sending and row.state == "queued" else row.state,
            "sent_bytes": self.sending.get(key),
            "attempts": row.attempts,
            "last_error": row.last_error,
            "error_code": row.error_code,
            "receipt_time": row.receipt_time,
            "receipt_status": row.receipt_status,
        }

    async def inbox_view(self) -> bytes:
        """One entry per document received (``GET /v1/inbox``), as JSON, from the sealed
        inbox index: no envelope is opened (``storage/index.py``). On a worker thread:
        10,000 rows take tens of milliseconds the event loop must not wait for."""
        return await asyncio.to_thread(self.inbox_json)

    def inbox_json(self) -> bytes:
        """``inbox_view``'s answer (blocking). A row without a usable index entry
        (damaged) is described from its envelope once, and its entry written again."""
        return self.index_key.listing_json(self.store.inbox_listing(), self._index_again)

    async def inbox_page_view(self, query: InboxQuery) -> bytes:
        """One page of the inbox, searched and filtered inside the index listing
        (``GET /v1/inbox/page``, ``storage/search.py``), as JSON, on a worker thread."""
        return await asyncio.to_thread(self.inbox_page_json, query)

    def inbox_page_json(self, query: InboxQuery) -> bytes:
        """``inbox_page_view``'s answer (blocking): the page's entries, the count, and the
        subjects of the documents they answer (for the thread hints)."""
        if query.sealed:
            ids = self.store.inbox_ids(query)
            page, total = self.index_key.matching(
                ids, query, self._names(), self.store.inbox_sealed, self._index_again
            )
            rows = self.store.inbox_rows(page)
        else:
            rows = self.store.inbox_page(query)
        entries = self.index_key.listing_json(rows, self._index_again)
        in_range, unread = self.store.inbox_counts(query)
        documents = json.loads(entries)
        answered = {str((d.get("metadata") or {}).get("in_reply_to", "")) for d in documents}
        answer = {
            "total": total if query.sealed else in_range,
            "unread": unread,
            "offset": query.offset,
            "limit": query.limit,
            "documents": documents,
            "subjects": self._subjects(answered),
        }
        return json.dumps(answer, ensure_ascii=False).encode()

    def _subjects(self, ids: set[str]) -> dict[str, str]:
        """The subjects of documents named by full id (received or sent), when stored."""
        subjects = {}
        for doc_id in ids:
            if not _FULL_ID.fullmatch(doc_id):  # a peer wrote it: never a path of ours
                continue
            for sender, sealed in self.store.inbox_index_rows(doc_id):
                opened = self.index_key.open(doc_id, sender, sealed)
                if opened is not None:
                    subjects[doc_id] = str((opened.get("metadata") or {}).get("subject", ""))
            path = self.layout.sent_envelope(doc_id)
            if doc_id not in subjects and path.exists():
                subjects[doc_id] = str(self.describe(path).metadata.get("subject", ""))
        return subjects

    def _index_again(self, doc_id: str, sender: str) -> bytes:
        """Describe a document from its envelope and rewrite its index row; its members."""
        path = self.layout.received_envelope(sender, doc_id)
        described = describe(self.describe(path))
        seal = self.index_key.seal(doc_id, sender, described)
        self.store.index_inbox(doc_id, sender, seal)
        members = self.index_key.members(doc_id, sender, seal)
        if members is None:  # just sealed with the same key: cannot happen
            raise StorageError("The inbox index could not be written again.")
        return members

    async def document_view(self, text: str) -> dict[str, Any]:
        """One document, and for a sent one each recipient's state and receipt."""
        found = self.find(text)
        meta = await asyncio.to_thread(self.describe, found.path)
        receipts = []
        if found.direction == "out":
            later = _by_document(self.store.later_received(found.doc_id))
            for row in self.store.outbox():
                if row.doc_id == found.doc_id:
                    receipts.append(
                        {
                            "peer": row.peer_id,
                            "state": row.state,
                            "time": row.receipt_time,
                            "status": row.receipt_status,
                            "receipt": base64.b64encode(row.receipt).decode()
                            if row.receipt
                            else None,
                            **_later(later.get((row.doc_id, row.peer_id), [])),
                        }
                    )
        return {
            "id": found.doc_id,
            "direction": found.direction,
            **describe(meta),
            "receipts": receipts,
            **self._revoked(meta),
        }

    def receipts_view(self, text: str) -> list[dict[str, Any]]:
        """The signed receipts of a document: theirs for a sent one, ours for a received one."""
        doc_id = self.find(text).doc_id
        sent = [r.receipt for r in self.store.outbox() if r.doc_id == doc_id and r.receipt]
        sent += [r.receipt for r in self.store.later_received(doc_id)]
        ours = [r.receipt for r in self.store.inbox() if r.doc_id == doc_id]
        ours += [r.receipt for r in self.store.later_signed_for(doc_id)]
        out = []
        for wire in [*sent, *ours]:
            parsed = Receipt.from_wire(wire)
            out.append(
                {
                    "status": parsed.status,
                    "time": parsed.time,
                    "recipient": parsed.recipient.peer_id.hex,
                    "receipt": base64.b64encode(wire).decode(),
                }
            )
        return out

    async def evidence_view(self, text: str) -> dict[str, Any]:
        """The signed proof of a document, for an export that ``pli verify`` checks offline."""
        found = self.find(text)
        proof = await asyncio.to_thread(self.evidence, found.path)
        meta = proof.verify()
        files = zip(meta.files, proof.file_hashes, strict=True)
        return {
            "id": found.doc_id,
            "evidence": base64.b64encode(proof.to_wire()).decode(),
            "signer_fingerprint": meta.sender.peer_id.fingerprint,
            "files": [{"name": entry.name, "sha256": digest.hex()} for entry, digest in files],
        }

    async def open_file(self, text: str, index: str) -> Path:
        """File ``index`` of a document, decrypted and verified, in a private temporary file
        that the caller deletes."""
        found = self.find(text)
        try:
            number = int(index)
        except ValueError:
            raise BadInput("The file number must be a number.") from None
        return await asyncio.to_thread(self.decrypt_file, found.path, number)

    async def mark_exported(self, text: str) -> dict[str, Any]:
        """Note that a received document was exported (``pli inbox`` then hides it); the
        commit runs on a worker thread."""
        found = self.find(text)
        now = int(time.time())
        if found.direction == "in":
            for row in self.store.inbox():
                if row.doc_id == found.doc_id:
                    await asyncio.to_thread(self.store.mark_exported, found.doc_id, row.sender, now)
        return {"id": found.doc_id, "exported_at": now}


def _path(row: OutboxRow, post: tuple[str, str | None] | None) -> dict[str, str | None]:
    """Which way a document went: ``direct``, or ``mailbox <url>``; how its receipt came."""
    delivered = row.receipt_time is not None
    if post is not None and (not delivered or post[1] == "mailbox"):
        via: str | None = f"mailbox {post[0]}"
    else:
        via = "direct" if delivered else None
    receipt_via = "mailbox" if post is not None and post[1] == "mailbox" else "direct"
    return {"via": via, "receipt_via": receipt_via if delivered else None}


def _by_document(rows: list[LaterIn]) -> dict[tuple[str, str], list[LaterIn]]:
    found: dict[tuple[str, str], list[LaterIn]] = {}
    for row in rows:
        found.setdefault((row.doc_id, row.peer_id), []).append(row)
    return found


def _later(rows: list[LaterIn]) -> dict[str, dict[str, Any] | None]:
    """What a recipient said after delivery: ``integrated`` (or why not) and ``read``."""
    answer: dict[str, dict[str, Any] | None] = {"integrated": None, "read": None}
    for row in rows:
        entry: dict[str, Any] = {"time": row.time, "via": row.via}
        if row.layer == "integrated":
            code = int(row.status.partition(":")[2]) if ":" in row.status else None
            entry["status"] = row.status.partition(":")[0]
            entry["code"] = code
            entry["label"] = integration.label(code) if code is not None else None
            entry["label_en"] = integration.label(code, "en") if code is not None else None
        answer[row.layer] = entry
    return answer
