"""Queueing a new document: seal it to disk, then commit it with the others sealed meanwhile.

What makes a document *queued* is shared: ``GroupCommit`` runs
``Queueing._commit`` on one thread for every document that arrived while the
previous group was committing: one fsync of the folder (the new names are
durable), one transaction for all their outbox rows. A practice software that
queues a thousand letters at once pays for a few dozen commits, not a
thousand, and each ``POST /v1/documents`` still answers only once its own
document is durable (the inbox commits received envelopes the same way).

A **letter** (its files at most ``LETTER_CONTENT`` bytes in all) is sealed by
the group itself, in memory, and the group's envelopes are written and
fsync'd together (``write_many``: their fsyncs at once): one thread hop and
one commit for the group, not three hops and an fsync each. A larger document
is sealed on a worker thread of its own (``Queueing._seal``): its files read,
encrypted, hashed, written to a private temporary file, fsync'd and renamed to
``documents/sent/ID.pli``, while its senders already stream it
(``sealing.py``); then it joins the next group for its row.

If the group's commit fails (a full disk), its envelopes are removed and every
caller of the group is told: none of them was queued. A letter that cannot be
sealed (a file that changed or vanished) fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2p.services.outbox.parts import Attachment, Recipient
from p2p.services.outbox.sealing import Sealing
from p2p.storage.files import Layout, fsync_dir, write_atomic, write_many
from p2p.storage.store import OutboxRow, Store
from protocol import DocumentMeta, FileEntry, LocalIdentity, limits, seal

log = logging.getLogger("pli.outbox")

T = TypeVar("T")
R = TypeVar("R")

#: Files of at most this many bytes in all make a letter, sealed in memory by its
#: group (its envelope is about as small: pushed whole, ``Outbox._push``).
LETTER_CONTENT = limits.MAX_PUSHED_ENVELOPE


@dataclass(frozen=True)
class NewDocument:
    """What ``Outbox.queue`` was asked to send."""

    doc_id: bytes
    kind: str
    metadata: dict[str, str]
    recipients: Sequence[Recipient]
    attachments: Sequence[Attachment]


@dataclass(frozen=True)
class Sealed:
    """A document sealed to its final name, not yet queued."""

    sealing: Sealing
    rows: tuple[OutboxRow, ...]  # one per recipient


@dataclass(frozen=True)
class _New:
    """A document given to the group as it came: sealed there if it is a letter."""

    document: NewDocument
    sealing: Sealing


@dataclass(frozen=True)
class _Letter:
    """A letter sealed in memory by its group: written with the group's others."""

    sealed: Sealed
    envelope: bytes


class Queueing:
    """Seal each new document on a worker thread, then queue it in a group commit."""

    def __init__(self, store: Store, layout: Layout, me: LocalIdentity) -> None:
        self._store = store
        self._layout = layout
        self._me = me
        self._group: GroupCommit[_New | Sealed, Sealed | None] = GroupCommit(self._commit)

    async def __call__(self, document: NewDocument, sealing: Sealing) -> Sealed:
        """Seal and queue ``document`` (``sealing`` is told its progress); once durable."""
        sealed = await self._group(_New(document, sealing))
        if sealed is not None:  # a letter: sealed and queued by its group
            return sealed
        sealed = await asyncio.to_thread(self._seal, document, sealing)
        await self._group(sealed)
        return sealed

    def _seal(self, document: NewDocument, sealing: Sealing) -> Sealed:
        """Worker thread: seal the document with the attachments' bytes to its final name.

        The file is fsync'd but its folder is not (``_commit`` does it once for the
        group); ``sealing`` is told the size, then each MiB written.
        """
        sizes = [a.path.stat().st_size for a in document.attachments]
        meta = self._meta(document, sizes)
        doc_hex = document.doc_id.hex()
        cards = [r.card for r in document.recipients]
        with contextlib.ExitStack() as stack:
            sources = [stack.enter_context(open(a.path, "rb")) for a in document.attachments]
            sealed = seal(self._me, cards, meta, sources)
            sealing.announce(sealed.size)
            path = self._layout.sent_envelope(doc_hex)
            size = write_atomic(path, sealed, sync_dir=False, progress=sealing).size
        return Sealed(sealing, self._rows(document, size, sealed.digest, meta.created_at))

    def _seal_letter(self, new: _New) -> _Letter | None:
        """The group's thread: a letter sealed in memory; None if it is not one."""
        document = new.document
        sizes = [a.path.stat().st_size for a in document.attachments]
        if sum(sizes) > LETTER_CONTENT:
            return None
        meta = self._meta(document, sizes)
        cards = [r.card for r in document.recipients]
        with contextlib.ExitStack() as stack:
            sources = [stack.enter_context(open(a.path, "rb")) for a in document.attachments]
            sealed = seal(self._me, cards, meta, sources)
            envelope = b"".join(sealed)
        new.sealing.announce(len(envelope))
        rows = self._rows(document, len(envelope), sealed.digest, meta.created_at)
        return _Letter(Sealed(new.sealing, rows), envelope)

    @staticmethod
    def _rows(document: NewDocument, size: int, digest: bytes, at: int) -> tuple[OutboxRow, ...]:
        doc_hex = document.doc_id.hex()
        return tuple(
            OutboxRow.new(doc_hex, r.peer_id, size, digest, at) for r in document.recipients
        )

    def _meta(self, document: NewDocument, sizes: list[int]) -> DocumentMeta:
        return DocumentMeta(
            document_id=document.doc_id,
            created_at=int(time.time()),
            kind=document.kind,
            sender=self._me.public,
            recipients=tuple(r.card.identity for r in document.recipients),
            files=tuple(
                FileEntry(a.name, size, a.media_type)
                for a, size in zip(document.attachments, sizes, strict=True)
            ),
            metadata=document.metadata,
        )

    def _commit(self, group: list[_New | Sealed]) -> list[Sealed | Exception | None]:
        """The group's thread: its letters sealed and written (their fsyncs at once), the
        sent folder fsync'd once, every row in one transaction.

        One result per item: a document sealed and queued; None for a new document
        that is not a letter (its caller seals it apart); or why this letter alone
        failed. An exception raised here fails the whole group.
        """
        results: list[Sealed | Exception | None] = []
        letters: list[_Letter] = []
        for item in group:
            if isinstance(item, Sealed):
                results.append(item)
                continue
            try:
                letter = self._seal_letter(item)
            except Exception as exc:  # told to this letter's caller alone
                results.append(exc)
                continue
            results.append(letter.sealed if letter is not None else None)
            if letter is not None:
                letters.append(letter)
        queued = [result for result in results if isinstance(result, Sealed)]
        if not queued:
            return results
        try:
            sent = self._layout.sent
            envelopes = [(sent / f"{x.sealed.sealing.doc_id}.pli", x.envelope) for x in letters]
            if envelopes:
                write_many(envelopes, sync_dir=False)
            fsync_dir(sent)
            self._store.queue_many([row for sealed in queued for row in sealed.rows])
        except BaseException:
            for sealed in queued:  # none of them is queued: leave no envelope behind
                with contextlib.suppress(OSError):
                    self._layout.sent_envelope(sealed.sealing.doc_id).unlink(missing_ok=True)
            raise
        size = sum(sealed.rows[0].size for sealed in queued)
        log.info("queued %d document(s) (%d bytes)", len(queued), size)
        return results


class GroupCommit(Generic[T, R]):
    """``await group(item)`` returns ``item``'s result once ``commit`` has run on a batch
    holding it.

    One batch at a time, on a worker thread: whatever arrives while a batch
    commits forms the next one. ``commit`` returns one result per item, in
    order; an exception in that list is raised to that item's caller alone, an
    exception raised by ``commit`` to every caller of the batch. A caller that
    is cancelled does not cancel the commit of its batch (the others in it wait
    for it).
    """

    def __init__(self, commit: Callable[[list[T]], Sequence[R | Exception]]) -> None:
        self._commit = commit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await asyncio.to_thread(self._commit, [item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        done.set_exception(exc)
                    continue
                for (_, done), result in zip(batch, results, strict=True):
                    if isinstance(result, Exception):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
        finally:
            self._draining = None
