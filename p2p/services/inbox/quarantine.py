"""The verifier and writer threads, and the partial envelopes in ``quarantine/``.

One thread verifies every transfer's frames, in order; opening, resuming and
closing partial files go through it too, so they never race. Writing to the
page cache costs about as much CPU here as decrypting: the verifier hands each
verified frame to a writer thread of its own, in order. A letter's frames
(``INLINE_MAX``) are verified on the event loop when the verifier is idle, and
kept in memory until the commit writes them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from p2p.storage.files import Layout
from p2p.storage.quota import DISK_FULL, STORAGE_FAILED, Quota
from protocol import (
    EnvelopeReader,
    LocalIdentity,
    PublicIdentity,
    RemoteProtocolError,
    Verified,
    VerifiedEnvelope,
    messages,
)

log = logging.getLogger("pli.inbox")

T = TypeVar("T")

#: How many bytes of a partial envelope are re-read at once when resuming.
_RESUME_READ = 1024 * 1024
#: Verified frames handed to the writer thread and not yet written, per transfer.
_WRITES_IN_FLIGHT = 1
#: Bytes appended to a partial file between two writeback kicks (see ``_write``).
_WRITEBACK_EVERY = 32 * 1024 * 1024
#: Envelopes and frames up to this size are handled on the event loop when the
#: verifier thread is idle: for a letter, a thread hop costs more than the work.
#: Such an envelope is also kept in memory until its commit writes it once, so
#: no quarantine file is created (creating one waits on the file system's
#: journal while other commits are flushing it).
INLINE_MAX = 64 * 1024


@dataclass
class Transfer:
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


def _shutdown(*executors: ThreadPoolExecutor, wait: bool = False) -> None:
    for executor in executors:
        executor.shutdown(wait=wait)


def ignore_result(future: asyncio.Future[None]) -> None:
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


def write_failed(quota: Quota, sender_hex: str, doc_hex: str, exc: BaseException) -> str:
    """A write or commit failed (its partial file dropped): count and log it; the code."""
    code = _failure_code(exc)
    quota.settled(sender_hex, doc_hex)
    quota.refused(sender_hex, code)
    log.error(
        "could not store a document from %s: %s",
        sender_hex[:10],
        getattr(exc, "strerror", None) or exc,
    )
    return code


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


class Quarantine:
    """Partial envelopes as they arrive: verified on one thread, written on another."""

    def __init__(
        self, layout: Layout, me: LocalIdentity, check_sender: Callable[[PublicIdentity], None]
    ) -> None:
        self.layout = layout
        self._me = me
        self._check_sender = check_sender
        self._verifier = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-verify")
        self._verifier_jobs = 0  # submitted and not finished
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pli-inbox-write")
        # Idle threads end with the inbox even if close() is never called.
        weakref.finalize(self, _shutdown, self._verifier, self._writer)

    def close(self, *, wait: bool = False) -> None:
        _shutdown(self._verifier, self._writer, wait=wait)

    def reader(self) -> EnvelopeReader:
        return EnvelopeReader(self._me, check_sender=self._check_sender, want_plaintext=False)

    def run(self, small: bool, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
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

    def drop_partial(self, sender_hex: str, doc_hex: str) -> asyncio.Future[None]:
        """Delete a failed transfer's partial file, on the verifier thread (in order)."""
        return self.run(False, _unlink, self.layout.partial(sender_hex, doc_hex))

    def open_partial(
        self, offer: messages.Offer, sender: PublicIdentity, sender_hex: str
    ) -> Transfer:
        """Verifier thread: open (or resume) the offer's partial file in quarantine."""
        path = self.layout.partial(sender_hex, offer.document_id.hex())
        handle = open(path, "a+b")  # noqa: SIM115 - closed when the transfer ends
        os.utime(handle.fileno())  # in use again: not expired (see Quota.sweep)
        transfer = Transfer(
            offer.document_id, sender_hex, sender, offer.size, 0, handle, self.reader()
        )
        existing = os.fstat(handle.fileno()).st_size
        if existing > offer.size or not self._replay_partial(transfer, existing):
            log.info("restarting a partial transfer from %s from zero", sender.peer_id.short)
            handle.truncate(0)
            transfer.reader = self.reader()
            transfer.verified = None
            existing = 0
        transfer.received = existing
        return transfer

    def _replay_partial(self, transfer: Transfer, existing: int) -> bool:
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

    @staticmethod
    def _verify(transfer: Transfer, data: bytes | memoryview) -> None:
        # The reader copies what it keeps: no bytes(data) copy of the whole frame here.
        for event in transfer.reader.feed(data):
            if isinstance(event, Verified):
                transfer.verified = event.envelope

    def absorb(self, transfer: Transfer, data: memoryview) -> None:
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

    @staticmethod
    def _write(transfer: Transfer, data: memoryview) -> None:
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
    def drain_writes(transfer: Transfer, *, quiet: bool = False) -> None:
        """Verifier thread: wait for the frames handed to the writer."""
        while transfer.writes:
            write = transfer.writes.popleft()
            if quiet:
                with contextlib.suppress(Exception):
                    write.result()
            else:
                write.result()

    def discard(self, transfer: Transfer) -> asyncio.Future[None]:
        """Delete a refused transfer's partial file, after the frames still queued."""
        path = self.layout.partial(transfer.sender, transfer.doc_id.hex())

        def discard() -> None:  # on the verifier thread
            self.drain_writes(transfer, quiet=True)
            if transfer.file is not None:
                with contextlib.suppress(OSError):
                    transfer.file.close()
                path.unlink(missing_ok=True)

        return self.run(False, discard)

    def release(self, transfer: Transfer) -> None:
        """Close an abandoned transfer's partial file (kept for a resume), in order."""

        def release() -> None:  # on the verifier thread: after the frames still queued
            self.drain_writes(transfer, quiet=True)
            transfer.reader.abort()
            if transfer.file is not None:
                with contextlib.suppress(OSError):
                    transfer.file.close()

        with contextlib.suppress(RuntimeError):  # the inbox was closed: nothing to release
            self.run(False, release).add_done_callback(ignore_result)
