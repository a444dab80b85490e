"""Queueing a new document: seal it to disk, then commit it with the others sealed meanwhile.

Each document is sealed on a worker thread of its own (``Queueing._seal``): its
files read, encrypted, hashed, written to a private temporary file, fsync'd
and renamed to ``documents/sent/ID.pli``, while its senders already stream it
(``sealing.py``). What makes it *queued* is then shared: ``GroupCommit`` runs
``Queueing._commit`` on one thread for every document sealed while the previous
group was committing: one fsync of the folder (the new names are durable),
one transaction for all their outbox rows. A practice software that queues a
thousand letters at once pays for a few dozen commits, not a thousand, and
each ``POST /v1/documents`` still answers only once its own document is
durable (the inbox commits received envelopes the same way).

If the group's commit fails (a full disk), its envelopes are removed and every
caller of the group is told: none of them was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2p.services.outbox.parts import Attachment, Recipient
from p2p.services.outbox.sealing import Sealing
from p2p.storage.files import Layout, fsync_dir, write_atomic
from p2p.storage.store import OutboxRow, Store
from protocol import DocumentMeta, FileEntry, LocalIdentity, seal

T = TypeVar("T")


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


class Queueing:
    """Seal each new document on a worker thread, then queue it in a group commit."""

    def __init__(self, store: Store, layout: Layout, me: LocalIdentity) -> None:
        self._store = store
        self._layout = layout
        self._me = me
        self._group = GroupCommit(self._commit)

    async def __call__(self, document: NewDocument, sealing: Sealing) -> Sealed:
        """Seal and queue ``document`` (``sealing`` is told its progress); once durable."""
        sealed = await asyncio.to_thread(self._seal, document, sealing)
        await self._group(sealed)
        return sealed

    def _seal(self, document: NewDocument, sealing: Sealing) -> Sealed:
        """Worker thread: seal the document with the attachments' bytes to its final name.

        The file is fsync'd but its folder is not (``_commit`` does it once for the
        group); ``sealing`` is told the size, then each MiB written.
        """
        meta = self._meta(document)
        doc_hex = document.doc_id.hex()
        cards = [r.card for r in document.recipients]
        with contextlib.ExitStack() as stack:
            sources = [stack.enter_context(open(a.path, "rb")) for a in document.attachments]
            sealed = seal(self._me, cards, meta, sources)
            sealing.announce(sealed.size)
            path = self._layout.sent_envelope(doc_hex)
            size = write_atomic(path, sealed, sync_dir=False, progress=sealing).size
        rows = tuple(
            OutboxRow.new(doc_hex, r.peer_id, size, sealed.digest, meta.created_at)
            for r in document.recipients
        )
        return Sealed(sealing, rows)

    def _meta(self, document: NewDocument) -> DocumentMeta:
        return DocumentMeta(
            document_id=document.doc_id,
            created_at=int(time.time()),
            kind=document.kind,
            sender=self._me.public,
            recipients=tuple(r.card.identity for r in document.recipients),
            files=tuple(
                FileEntry(a.name, a.path.stat().st_size, a.media_type) for a in document.attachments
            ),
            metadata=document.metadata,
        )

    def _commit(self, group: list[Sealed]) -> None:
        """The group's commit: the sent folder fsync'd once, every row in one transaction."""
        try:
            fsync_dir(self._layout.sent)
            self._store.queue_many([row for sealed in group for row in sealed.rows])
        except BaseException:
            for sealed in group:  # none of them is queued: leave no envelope behind
                with contextlib.suppress(OSError):
                    self._layout.sent_envelope(sealed.sealing.doc_id).unlink(missing_ok=True)
            raise


class GroupCommit(Generic[T]):
    """``await group(item)`` returns once ``commit`` has run on a batch holding ``item``.

    One batch at a time, on a worker thread: whatever arrives while a batch
    commits forms the next one. A caller that is cancelled does not cancel the
    commit of its batch (the others in it wait for it).
    """

    def __init__(self, commit: Callable[[list[T]], None]) -> None:
        self._commit = commit
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await asyncio.to_thread(self._commit, [item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        done.set_exception(exc)
                else:
                    for _, done in batch:
                        done.set_result(None)
        finally:
            self._draining = None
