"""The inbox's group commit: verified envelopes made durable, recorded, receipted.

One committer thread takes every envelope verified since its last batch: each
streamed envelope is fsync'd and renamed from quarantine into
``documents/received/`` (a letter kept in memory is written whole), all the
batch's fsyncs at once (``fsync_all``), their folders are fsync'd once, and
their rows and sealed index entries are committed in one transaction. Only
then is each signed receipt sent. A batch that fails (a full disk) is refused,
envelope by envelope, and its partial files deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from p2p.documents.describe import describe
from p2p.errors import StorageError
from p2p.events import Link
from p2p.services.inbox.quarantine import Quarantine, Transfer, write_failed
from p2p.storage.files import fsync_all, fsync_dir, write_many
from p2p.storage.index import IndexKey
from p2p.storage.quota import REFUSAL_CODES, Quota
from p2p.storage.store import InboxRow, Store
from protocol import LocalIdentity, Receipt, VerifiedEnvelope, messages

log = logging.getLogger("pli.inbox")

#: Bytes of small envelopes held in memory while they wait for the committer.
_MAX_BUFFERED = 4 * 1024 * 1024
#: Verified envelopes waiting for the committer before a channel stops reading
#: (back-pressure on a peer that offers faster than the disk commits).
_MAX_COMMITTING = 256


@dataclass
class _Commit:
    transfer: Transfer
    verified: VerifiedEnvelope
    channel: Link
    done: asyncio.Future[bytes]


class Committer:
    """Commits verified envelopes in groups on its own thread, then sends the receipts."""

    def __init__(
        self,
        store: Store,
        me: LocalIdentity,
        quota: Quota,
        quarantine: Quarantine,
        *,
        on_event: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self._store = store
        self._me = me
        self._quota = quota
        self._quarantine = quarantine
        self._on_event = on_event
        self._index = IndexKey(me.doc_secret)
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-commit")
        self._to_commit: list[_Commit] = []
        self._committing: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self._task: asyncio.Task[None] | None = None
        self._buffered = 0  # bytes of small envelopes waiting for the committer
        weakref.finalize(self, self._committer.shutdown, wait=False)

    def close(self, *, wait: bool = False) -> None:
        self._committer.shutdown(wait=wait)

    def under_way(self, doc_hex: str, sender_hex: str) -> asyncio.Future[bytes] | None:
        """The receipt of this document's commit if one is under way."""
        return self._committing.get((doc_hex, sender_hex))

    async def commit(self, transfer: Transfer, verified: VerifiedEnvelope, channel: Link) -> None:
        """Queue a verified envelope; wait only when too much is queued (back-pressure)."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._committing[(transfer.doc_id.hex(), transfer.sender)] = done
        self._to_commit.append(_Commit(transfer, verified, channel, done))
        if transfer.buffer is not None:
            self._buffered += len(transfer.buffer)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_loop())
        if len(self._committing) > _MAX_COMMITTING or self._buffered > _MAX_BUFFERED:
            with contextlib.suppress(StorageError):
                await asyncio.shield(done)

    async def _commit_loop(self) -> None:
        """Group commit: everything verified since the last batch, then the receipts."""
        loop = asyncio.get_running_loop()
        while self._to_commit:
            batch, self._to_commit = self._to_commit, []
            try:
                receipts = await loop.run_in_executor(self._committer, self._commit, batch)
            except Exception as exc:  # reported to each waiter and to the senders
                await self._failed(batch, exc)
                continue
            for item, receipt in zip(batch, receipts, strict=True):
                self._settle(item, receipt=receipt)
                with contextlib.suppress(Exception):  # a closed channel: the sender asks again
                    await item.channel.send(messages.Delivered(item.transfer.doc_id, receipt))

    async def _failed(self, batch: list[_Commit], exc: Exception) -> None:
        error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
        for item in batch:
            self._settle(item, error=error)
            doc_id = item.transfer.doc_id
            await self._quarantine.drop_partial(item.transfer.sender, doc_id.hex())
            code = write_failed(self._quota, item.transfer.sender, doc_id.hex(), exc)
            with contextlib.suppress(Exception):  # a closed channel: it offers again
                await item.channel.send(messages.Refuse(doc_id, code, REFUSAL_CODES[code]))

    def _settle(
        self, item: _Commit, *, receipt: bytes | None = None, error: Exception | None = None
    ) -> None:
        self._committing.pop((item.transfer.doc_id.hex(), item.transfer.sender), None)
        if item.transfer.buffer is not None:
            self._buffered -= len(item.transfer.buffer)
            item.transfer.buffer = None
        if item.done.done():
            return
        if error is not None:
            item.done.set_exception(error)
            item.done.exception()  # retrieved: nobody may be waiting for it
        else:
            assert receipt is not None
            item.done.set_result(receipt)

    def _commit(self, batch: list[_Commit]) -> list[bytes]:
        """Committer thread: make the envelopes durable, then record them; the receipts."""
        self._make_durable(batch)
        return self._record(batch)

    def _make_durable(self, batch: list[_Commit]) -> None:
        """Each envelope fsync'd and in ``documents/received/``; their folders fsync'd.

        The batch's fsyncs run at once (``fsync_all``: the filesystem commits them
        together), not one after the other.
        """
        letters: list[tuple[Path, bytearray]] = []
        moves: list[tuple[Path, Path]] = []
        handles: list[BinaryIO] = []
        folders: set[Path] = set()
        try:
            for item in batch:
                transfer = item.transfer
                doc_hex = transfer.doc_id.hex()
                final = self._quarantine.layout.received_envelope(transfer.sender, doc_hex)
                folders.add(final.parent)
                if transfer.buffer is not None:  # a letter: written whole, below
                    letters.append((final, transfer.buffer))
                    continue
                assert transfer.file is not None  # streamed into quarantine as it came
                transfer.file.flush()
                handles.append(transfer.file)
                moves.append((self._quarantine.layout.partial(transfer.sender, doc_hex), final))
            fsync_all([handle.fileno() for handle in handles])
        finally:
            for handle in handles:
                handle.close()
        if letters:  # the folder fsync'd below, once
            write_many(letters, sync_dir=False)
        for partial, final in moves:
            os.replace(partial, final)
        for item in batch:  # out of quarantine: no longer held against the quota
            self._quota.settled(item.transfer.sender, item.transfer.doc_id.hex())
        for folder in folders:
            fsync_dir(folder)

    def _record(self, batch: list[_Commit]) -> list[bytes]:
        """The rows, sealed descriptions and receipts, committed in one transaction."""
        now = int(time.time())
        rows, receipts, sealed = [], [], []
        for item in batch:
            transfer, verified = item.transfer, item.verified
            receipt = Receipt.create(
                self._me.identity,
                document_id=transfer.doc_id,
                envelope_digest=verified.digest,
                sender=transfer.sender_identity,
                status="delivered",
                now=now,
            ).to_wire()
            receipts.append(receipt)
            row = InboxRow(
                doc_id=transfer.doc_id.hex(),
                sender=transfer.sender,
                size=transfer.size,
                digest=verified.digest,
                received_at=now,
                receipt=receipt,
            )
            rows.append(row)
            sealed.append(self._index.seal(row.doc_id, transfer.sender, describe(verified.meta)))
        new = self._store.received_many(rows, sealed)
        for index, (item, row, fresh) in enumerate(zip(batch, rows, new, strict=True)):
            if fresh:
                self._quota.stored(row.sender, row.size)
            else:  # a concurrent connection stored it first: answer with that receipt
                stored = self._store.inbox_entry(row.doc_id, row.sender)
                receipts[index] = stored.receipt if stored is not None else receipts[index]
            self._announce(item, row, fresh)
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for item, row in zip(batch, rows, strict=True):  # one line per batch and sender
            counts[item.transfer.sender_identity.peer_id.short] += 1
            sizes[item.transfer.sender_identity.peer_id.short] += row.size
        for sender, count in counts.items():
            log.info("received %d document(s) from %s (%d bytes)", count, sender, sizes[sender])
        return receipts

    def _announce(self, item: _Commit, row: InboxRow, fresh: bool) -> None:
        if fresh and self._on_event is not None:
            self._on_event(
                {
                    "type": "document-received",
                    "id": row.doc_id,
                    "from": row.sender,
                    "size": row.size,
                }
            )
