"""Receiving documents: quarantine → verify → durable → signed receipt.

An offered envelope is written to ``quarantine/`` as it arrives and verified
record by record in a worker thread (TAG_FINAL, signature, hashes; no plaintext
is produced). Only a verified envelope is fsync'd, renamed into
``documents/received/`` and committed to the database; only then is the signed
receipt sent. A cut transfer resumes from the bytes already in quarantine
(re-verified from the start). The same document offered twice is stored once
and its receipt sent again.

Speed, with the same guarantees:

- BULK frames are handed to one verifier thread in order and not awaited one
  by one: the event loop reads frame n+1 from the socket while the thread
  decrypts, hashes and writes frame n. At most ``_IN_FLIGHT`` frames (about
  1 MiB each) wait for it, so memory stays bounded and a slow disk pushes back
  on the sender through TCP.
- Durability is a group commit on one committer thread: the envelopes verified
  meanwhile are each fsync'd and renamed, their folder fsync'd once, and their
  rows committed in one transaction; then each receipt is sent. The channel
  does not wait for it, so the sender's next offer is answered while the disk
  works. Nothing is acknowledged before its commit has returned.

Every offer is first admitted by the ``Quota`` (the peer's quota and rate, the
disk's free-space reserve); a write or commit that fails anyway (a full disk)
is answered with a ``refuse`` and its partial file deleted, never left silent.
The description of each committed document is sealed into the inbox index
(``storage/index.py``) in the same transaction, so listing does not decrypt.
(Over 400 lines: the transfer pipeline's steps share ``_Transfer`` state.)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from p2p.documents.describe import describe
from p2p.errors import StorageError
from p2p.events import Link
from p2p.storage.files import Layout, fsync_dir, write_atomic
from p2p.storage.index import IndexKey
from p2p.storage.quota import DISK_FULL, REFUSAL_CODES, STORAGE_FAILED, Quota
from p2p.storage.store import InboxRow, Store
from protocol import (
    EnvelopeReader,
    LocalIdentity,
    PublicIdentity,
    Receipt,
    RemoteProtocolError,
    Verified,
    VerifiedEnvelope,
    limits,
    messages,
)

log = logging.getLogger("pli.inbox")

T = TypeVar("T")

#: How many bytes of a partial envelope are re-read at once when resuming.
_RESUME_READ = 1024 * 1024
#: BULK frames (≤ 1 MiB each) handed to the verifier and not yet processed, per
#: transfer: enough to keep the socket and the verifier busy at the same time.
_IN_FLIGHT = 1
#: Verified frames handed to the writer thread and not yet written, per transfer.
_WRITES_IN_FLIGHT = 1
#: Bytes appended to a partial file between two writeback kicks (see ``_write``).
_WRITEBACK_EVERY = 32 * 1024 * 1024
#: Envelopes and frames up to this size are handled on the event loop when the
#: verifier thread is idle: for a letter, a thread hop costs more than the work.
#: Such an envelope is also kept in memory until its commit writes it once, so
#: no quarantine file is created (creating one waits on the file system's
#: journal while other commits are flushing it).
_INLINE_MAX = 64 * 1024
#: Bytes of small envelopes held in memory while they wait for the committer.
_MAX_BUFFERED = 4 * 1024 * 1024
#: Verified envelopes waiting for the committer before a channel stops reading
#: (back-pressure on a peer that offers faster than the disk commits).
_MAX_COMMITTING = 256


@dataclass
class _Transfer:
    doc_id: bytes
    sender: str
    sender_identity: PublicIdentity
    size: int
    received: int
    #: The partial file in quarantine; None for a small envelope, kept in ``buffer``.
    file: BinaryIO | None
    reader: EnvelopeReader
    verified: VerifiedEnvelope | None = None
    #: Frames submitted to the verifier thread, oldest first.
    pending: deque[asyncio.Future[None]] = field(default_factory=deque)
    #: Set (from the loop) when the transfer is given up: queued frames are skipped.
    dead: bool = False
    #: A small envelope's bytes: written once, at commit, without a quarantine file.
    buffer: bytearray | None = None
    #: Writes handed to the writer thread (by the verifier thread), oldest first.
    writes: deque[Future[None]] = field(default_factory=deque)
    #: Bytes written since writeback was last started.
    unsynced: int = 0


@dataclass
class _Commit:
    transfer: _Transfer
    verified: VerifiedEnvelope
    channel: Link
    done: asyncio.Future[bytes]


def _shutdown(*executors: ThreadPoolExecutor, wait: bool = False) -> None:
    for executor in executors:
        executor.shutdown(wait=wait)


def _ignore_result(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _failure_code(exc: BaseException) -> str:
    """The refusal code for a failed write: the disk is full, or storage failed.

    The OSError may come wrapped in a StorageError (the atomic writer's), and
    SQLite says "database or disk is full".
    """
    for cause in (exc, exc.__cause__):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return DISK_FULL
    return DISK_FULL if "full" in str(exc).lower() else STORAGE_FAILED


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


class TransferRefused(Exception):
    """The peer broke the transfer protocol; the connection should be closed."""


class Inbox:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        me: LocalIdentity,
        check_sender: Callable[[PublicIdentity], None],
        *,
        quota: Quota,
        max_size: int = limits.MAX_ENVELOPE_SIZE,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._on_event = on_event  # told of each new document (any thread; ids only)
        self._store = store
        self._layout = layout
        self._me = me
        self._quota = quota
        self._index = IndexKey(me.doc_secret)
        self._check_sender = check_sender
        self._max_size = max_size
        self._transfers: dict[int, _Transfer] = {}
        # One thread verifies and writes every transfer's frames, in order; opening,
        # resuming and closing partial files go through it too, so they never race.
        self._verifier = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-verify")
        self._verifier_jobs = 0  # submitted and not finished
        # Writing to the page cache costs about as much CPU here as decrypting:
        # its own thread, fed in order by the verifier.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-write")
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-commit")
        self._to_commit: list[_Commit] = []
        self._committing: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self._commit_task: asyncio.Task[None] | None = None
        self._buffered = 0  # bytes of small envelopes waiting for the committer
        # Idle threads end with the inbox even if close() is never called.
        weakref.finalize(self, _shutdown, self._verifier, self._writer, self._committer)

    def close(self, *, wait: bool = False) -> None:
        """Stop the worker threads once their queued work is done (a commit under
        way completes: it is consistent whenever it stops). ``wait`` blocks until then."""
        _shutdown(self._verifier, self._writer, self._committer, wait=wait)

    async def on_offer(self, channel: Link, sender: PublicIdentity, offer: messages.Offer) -> None:
        """Answer an offer: resend the receipt, refuse, or accept from an offset."""
        key = id(channel)
        if key in self._transfers:
            self._abandon(key)
            raise TransferRefused("a new offer arrived before the previous envelope was complete")
        sender_hex = sender.peer_id.hex
        doc_hex = offer.document_id.hex()
        committing = self._committing.get((doc_hex, sender_hex))
        if committing is not None:  # offered again while its commit is under way
            with contextlib.suppress(StorageError):
                await asyncio.shield(committing)
        stored = self._store.inbox_entry(doc_hex, sender_hex)
        if stored is not None:
            await channel.send(messages.Delivered(offer.document_id, stored.receipt))
            return
        if offer.size > self._max_size:
            reason = "the document is over this practice's limit"
            await channel.send(messages.Refuse(offer.document_id, "too-large", reason))
            return
        refusal = await self._admit(sender_hex, doc_hex, offer.size)
        if refusal is None and offer.size <= _INLINE_MAX:
            reader = EnvelopeReader(self._me, check_sender=self._check_sender, want_plaintext=False)
            transfer = _Transfer(
                offer.document_id,
                sender_hex,
                sender,
                offer.size,
                0,
                None,
                reader,
                buffer=bytearray(),
            )
        elif refusal is None:
            self._quota.holding(sender_hex, doc_hex, offer.size)
            try:
                transfer = await self._on_verifier(
                    False, self._open_partial, offer, sender, sender_hex
                )
            except OSError as exc:
                await self._drop_partial(sender_hex, doc_hex)
                refusal = self._write_failed(sender_hex, doc_hex, exc)
        if refusal is not None:
            await channel.send(messages.Refuse(offer.document_id, refusal, REFUSAL_CODES[refusal]))
            return
        self._transfers[key] = transfer
        await channel.send(messages.Accept(offer.document_id, transfer.received))
        if transfer.received == transfer.size:
            await self._finish(channel, key)

    async def _admit(self, sender_hex: str, doc_hex: str, size: int) -> str | None:
        """The quota's answer, given the transfers under way (a thread: it reads the disk)."""
        in_flight = sum(t.size - t.received for t in self._transfers.values())
        admit = self._quota.admit
        return await asyncio.to_thread(admit, sender_hex, doc_hex, size, in_flight=in_flight)

    def _drop_partial(self, sender_hex: str, doc_hex: str) -> asyncio.Future[None]:
        """Delete a failed transfer's partial file, on the verifier thread (in order)."""
        return self._on_verifier(False, _unlink, self._layout.partial(sender_hex, doc_hex))

    def _write_failed(self, sender_hex: str, doc_hex: str, exc: BaseException) -> str:
        """A write or commit failed (its partial file dropped): count and log it; the code."""
        code = _failure_code(exc)
        self._quota.settled(sender_hex, doc_hex)
        self._quota.refused(sender_hex, code)
        log.error(
            "could not store a document from %s: %s",
            sender_hex[:10],
            getattr(exc, "strerror", None) or exc,
        )
        return code

    def _on_verifier(self, small: bool, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``work`` on the verifier thread, in order; inline when small and it is idle."""
        loop = asyncio.get_running_loop()
        if small and self._verifier_jobs == 0:
            done: asyncio.Future[T] = loop.create_future()
            try:
                done.set_result(work(*args))
            except Exception as exc:  # handed to whoever awaits, as from the thread
                done.set_exception(exc)
            return done
        self._verifier_jobs += 1
        future = loop.run_in_executor(self._verifier, work, *args)
        future.add_done_callback(self._verifier_done)
        return future

    def _verifier_done(self, _future: asyncio.Future[Any]) -> None:
        self._verifier_jobs -= 1

    def _open_partial(
        self, offer: messages.Offer, sender: PublicIdentity, sender_hex: str
    ) -> _Transfer:
        path = self._layout.partial(sender_hex, offer.document_id.hex())
        reader = EnvelopeReader(self._me, check_sender=self._check_sender, want_plaintext=False)
        handle = open(path, "a+b")  # noqa: SIM115 - closed when the transfer ends
        os.utime(handle.fileno())  # in use again: not expired (see Quota.sweep)
        transfer = _Transfer(offer.document_id, sender_hex, sender, offer.size, 0, handle, reader)
        existing = os.fstat(handle.fileno()).st_size
        if existing > offer.size or not self._replay_partial(transfer, existing):
            log.info("restarting a partial transfer from %s from zero", sender.peer_id.short)
            handle.truncate(0)
            transfer.reader = EnvelopeReader(
                self._me, check_sender=self._check_sender, want_plaintext=False
            )
            transfer.verified = None
            existing = 0
        transfer.received = existing
        return transfer

    def _replay_partial(self, transfer: _Transfer, existing: int) -> bool:
        """Re-verify what an earlier, cut transfer left in quarantine."""
        assert transfer.file is not None
        transfer.file.seek(0)
        try:
            remaining = existing
            while remaining:
                data = transfer.file.read(min(_RESUME_READ, remaining))
                if not data:
                    return False
                remaining -= len(data)
                self._verify(transfer, data)
        except RemoteProtocolError:
            return False
        transfer.file.seek(0, os.SEEK_END)
        return True

    def _verify(self, transfer: _Transfer, data: bytes | memoryview) -> None:
        # The reader copies what it keeps: no bytes(data) copy of the whole frame here.
        for event in transfer.reader.feed(data):
            if isinstance(event, Verified):
                transfer.verified = event.envelope

    def _absorb(self, transfer: _Transfer, data: memoryview) -> None:
        """Verifier thread: check one frame's records, then have it appended to quarantine."""
        if transfer.dead:
            return
        try:
            self._verify(transfer, data)
        except RemoteProtocolError:
            transfer.dead = True  # the frames queued after this one are skipped
            raise
        if transfer.buffer is not None:
            transfer.buffer += data
            return
        writes = transfer.writes
        writes.append(self._writer.submit(self._write, transfer, data))
        while len(writes) > _WRITES_IN_FLIGHT:
            writes.popleft().result()

    def _write(self, transfer: _Transfer, data: memoryview) -> None:
        """Writer thread: append a verified frame; start writeback now and then.

        ``POSIX_FADV_DONTNEED`` makes Linux start writing the dirty pages out
        without waiting (and drop those already clean): the disk works during
        the transfer instead of all at once in the final fsync, and the page
        cache does not fill with an envelope nobody reads soon. The fsync
        before the commit is what makes it durable, as before.
        """
        if transfer.dead:
            return
        assert transfer.file is not None
        transfer.file.write(data)
        transfer.unsynced += len(data)
        if transfer.unsynced >= _WRITEBACK_EVERY and hasattr(os, "posix_fadvise"):
            transfer.unsynced = 0
            transfer.file.flush()
            with contextlib.suppress(OSError):
                os.posix_fadvise(transfer.file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    @staticmethod
    def _drain_writes(transfer: _Transfer, *, quiet: bool = False) -> None:
        """Verifier thread: wait for the frames handed to the writer."""
        while transfer.writes:
            write = transfer.writes.popleft()
            if quiet:
                with contextlib.suppress(Exception):
                    write.result()
            else:
                write.result()

    async def on_bulk(self, channel: Link, data: memoryview) -> None:
        key = id(channel)
        transfer = self._transfers.get(key)
        if transfer is None or transfer.received + len(data) > transfer.size:
            self._abandon(key)
            raise TransferRefused("envelope bytes that were not offered")
        transfer.received += len(data)
        pending = transfer.pending
        small = transfer.buffer is not None and not pending  # a letter: no thread hop
        pending.append(self._on_verifier(small, self._absorb, transfer, data))
        last = transfer.received == transfer.size
        try:
            # Wait only when too many frames are queued (or at the end); collect the
            # finished ones so that a verification failure is seen early.
            while pending and (last or len(pending) > _IN_FLIGHT or pending[0].done()):
                await pending[0]
                pending.popleft()
            if last:
                await self._on_verifier(False, self._drain_writes, transfer)
        except RemoteProtocolError as exc:
            await self._refuse(channel, key, exc)
            return
        except OSError as exc:
            await self._refuse(channel, key, exc)
            return
        if last:
            await self._finish(channel, key)

    async def _refuse(self, channel: Link, key: int, exc: RemoteProtocolError | OSError) -> None:
        """Give up a transfer that failed verification, or whose write failed."""
        transfer = self._transfers.pop(key)
        transfer.dead = True
        doc_hex = transfer.doc_id.hex()
        if isinstance(exc, RemoteProtocolError):
            log.debug("verification failure", exc_info=exc)
            log.warning(
                "refused a document from %s: it failed verification (%s)",
                transfer.sender_identity.peer_id.short,
                exc.code,
            )
            code, reason = exc.code, "the envelope failed verification"
        path = self._layout.partial(transfer.sender, doc_hex)

        def discard() -> None:  # on the verifier thread: after the frames still queued
            self._drain_writes(transfer, quiet=True)
            if transfer.file is not None:
                with contextlib.suppress(OSError):
                    transfer.file.close()
                path.unlink(missing_ok=True)

        for future in transfer.pending:
            future.add_done_callback(_ignore_result)
        transfer.pending.clear()
        await self._on_verifier(False, discard)
        if isinstance(exc, OSError):
            code = self._write_failed(transfer.sender, doc_hex, exc)
            reason = REFUSAL_CODES[code]
        self._quota.settled(transfer.sender, doc_hex)
        await channel.send(messages.Refuse(transfer.doc_id, code, reason))

    async def _finish(self, channel: Link, key: int) -> None:
        transfer = self._transfers[key]
        try:
            transfer.reader.close()
            verified = transfer.verified
            if verified is None:
                raise RemoteProtocolError("no signature", code="authentication")
            if (
                verified.meta.document_id != transfer.doc_id
                or verified.meta.sender != transfer.sender_identity
            ):
                raise RemoteProtocolError("offer and envelope disagree", code="authentication")
        except RemoteProtocolError as exc:
            await self._refuse(channel, key, exc)
            return
        del self._transfers[key]
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._committing[(transfer.doc_id.hex(), transfer.sender)] = done
        self._to_commit.append(_Commit(transfer, verified, channel, done))
        if transfer.buffer is not None:
            self._buffered += len(transfer.buffer)
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.create_task(self._commit_loop())
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
                error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
                for item in batch:
                    self._settle(item, error=error)
                    doc_id = item.transfer.doc_id
                    await self._drop_partial(item.transfer.sender, doc_id.hex())
                    code = self._write_failed(item.transfer.sender, doc_id.hex(), exc)
                    with contextlib.suppress(Exception):  # a closed channel: it offers again
                        await item.channel.send(messages.Refuse(doc_id, code, REFUSAL_CODES[code]))
                continue
            for item, receipt in zip(batch, receipts, strict=True):
                self._settle(item, receipt=receipt)
                with contextlib.suppress(Exception):  # a closed channel: the sender asks again
                    await item.channel.send(messages.Delivered(item.transfer.doc_id, receipt))

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
        moves: list[tuple[Path, Path]] = []
        handles: list[BinaryIO] = []
        folders: set[Path] = set()
        try:
            for item in batch:
                transfer = item.transfer
                doc_hex = transfer.doc_id.hex()
                final = self._layout.received_envelope(transfer.sender, doc_hex)
                folders.add(final.parent)
                if transfer.buffer is not None:  # a letter: written whole, the folder fsync'd below
                    write_atomic(final, [transfer.buffer], sync_dir=False)
                    continue
                assert transfer.file is not None  # streamed into quarantine as it came
                transfer.file.flush()
                handles.append(transfer.file)
                moves.append((self._layout.partial(transfer.sender, doc_hex), final))
            for handle in handles:
                os.fsync(handle.fileno())
        finally:
            for handle in handles:
                handle.close()
        for partial, final in moves:
            os.replace(partial, final)
        for item in batch:
            self._quota.settled(item.transfer.sender, item.transfer.doc_id.hex())
        for folder in folders:
            fsync_dir(folder)
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
            rows.append(
                InboxRow(
                    doc_id=transfer.doc_id.hex(),
                    sender=transfer.sender,
                    size=transfer.size,
                    digest=verified.digest,
                    received_at=now,
                    receipt=receipt,
                )
            )
            sealed.append(
                self._index.seal(rows[-1].doc_id, transfer.sender, describe(verified.meta))
            )
        new = self._store.received_many(rows, sealed)
        for index, (item, row, fresh) in enumerate(zip(batch, rows, new, strict=True)):
            if not fresh:  # a concurrent connection stored it first: answer with that receipt
                stored = self._store.inbox_entry(row.doc_id, row.sender)
                receipts[index] = stored.receipt if stored is not None else receipts[index]
            log.info(
                "received a document from %s (%d bytes)",
                item.transfer.sender_identity.peer_id.short,
                row.size,
            )
            if fresh and self._on_event is not None:
                self._on_event(
                    {
                        "type": "document-received",
                        "id": row.doc_id,
                        "from": row.sender,
                        "size": row.size,
                    }
                )
        return receipts

    def _abandon(self, key: int) -> None:
        transfer = self._transfers.pop(key, None)
        if transfer is None:
            return
        transfer.dead = True
        for future in transfer.pending:  # their errors no longer matter
            future.add_done_callback(_ignore_result)
        transfer.pending.clear()

        def release() -> None:  # on the verifier thread: after the frames still queued
            self._drain_writes(transfer, quiet=True)
            transfer.reader.abort()
            if transfer.file is not None:
                with contextlib.suppress(OSError):
                    transfer.file.close()

        with contextlib.suppress(RuntimeError):  # the inbox was closed: nothing to release
            self._on_verifier(False, release).add_done_callback(_ignore_result)

    def channel_closed(self, channel: Link) -> None:
        """Keep the partial file for a resume; just release the handle."""
        self._abandon(id(channel))

    async def sweep(self, paired: list[str]) -> int:
        """Delete expired partial files (on the verifier thread: no open races it)."""
        active = [self._layout.partial(t.sender, t.doc_id.hex()) for t in self._transfers.values()]
        return await self._on_verifier(False, self._quota.sweep, paired, active)
