"""Sending documents: seal once, queue durably, deliver until a signed receipt is back.

``queue`` seals the envelope (one for all recipients, written atomically to
``documents/sent/``) and commits one outbox row per recipient. The scheduler
runs one sender per peer with due documents: it offers each envelope, streams
it from the offset the receiver already holds (a cut transfer resumes, it does
not restart), and marks the row delivered only once the recipient's receipt
verifies against its key. Failures back off exponentially with jitter; a peer
that comes back (seen by discovery or dialling us) is retried at once.

A sender does not wait for one receipt before offering the next document (at
most ``RECEIPT_WINDOW`` are outstanding): the receiver commits the envelopes
it verified meanwhile as one group, and the receipts that came back together
are verified and stored in one transaction, off the event loop.

Size (~480 lines): one sender's state machine (queue, offer, stream, collect the
receipts, back off), whose steps share the outstanding window and the retry
rules; it reads best whole, and services/ keeps one service per module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2p.errors import BadInput, DocumentUnknown, PeerUnreachable
from p2p.events import Link
from p2p.storage.files import Layout, write_atomic
from p2p.storage.quota import DISK_FULL, QUOTA_FULL, RATE_LIMITED, STORAGE_FAILED
from p2p.storage.store import OutboxRow, OutboxState, PeerRow, Store, StoredReceipt
from protocol import (
    DocumentMeta,
    FileEntry,
    LocalIdentity,
    ProfileCard,
    PublicIdentity,
    Receipt,
    RemoteProtocolError,
    limits,
    messages,
    new_document_id,
    seal,
)

log = logging.getLogger("pli.outbox")

#: Bytes of envelope per BULK frame (plus the type byte).
BULK_PAYLOAD = 1024 * 1024
#: How long to wait for the receiver to answer an offer.
REPLY_TIMEOUT = 30.0
#: Receipt wait: verifying on the receiver runs well above this rate.
SLOWEST_EXPECTED_RATE = 5_000_000
#: Documents streamed to one peer whose receipt has not come back yet.
RECEIPT_WINDOW = 64

Connect = Callable[[str], Awaitable[Link]]
#: When a peer cannot be reached directly: leave its due documents elsewhere (a mailbox).
Fallback = Callable[[str, Sequence[OutboxRow]], Awaitable[None]]

#: What pli says when a recipient's daemon refuses a document, by refusal code.
#: The peer's own ``reason`` text is never shown: a peer could write anything there.
REFUSALS = {
    DISK_FULL: "Their computer's disk is nearly full; pli will offer the document again later.",
    QUOTA_FULL: "Their computer already holds as much from this practice as it accepts; "
    "pli will offer the document again once they free space.",
    RATE_LIMITED: "Their computer received its hourly limit of documents from this "
    "practice; pli will offer the document again later.",
    STORAGE_FAILED: "Their computer could not store the document; pli will try again later.",
    "too-large": "The document is over the size their computer accepts.",
    "authentication": "Their computer refused the document: it failed verification (it may "
    "have been altered on the way); pli will send it again.",
}
REFUSED_OTHERWISE = "Their computer refused the document; pli will try again later."


def refusal_sentence(code: str) -> str:
    """pli's own words for a refusal code (the code is the peer's; the words are ours)."""
    return REFUSALS.get(code, REFUSED_OTHERWISE)


@dataclass(frozen=True)
class Recipient:
    peer_id: str
    card: ProfileCard


@dataclass(frozen=True)
class Attachment:
    name: str
    path: Path
    media_type: str = "application/octet-stream"

    def check(self) -> None:
        """Refuse, in words, a file the daemon could not send: a full path, readable."""
        if not self.path.is_absolute():
            raise BadInput(f"The daemon needs a full path, not “{self.path}”.")
        if not self.path.is_file():
            raise BadInput(f"The file {self.path} does not exist or is not a file.")
        if not os.access(self.path, os.R_OK):
            raise BadInput(f"The daemon cannot read {self.path}: check its permissions.")


@dataclass
class _Outstanding:
    """A document streamed to the peer, waiting for its receipt."""

    row: OutboxRow
    replies: asyncio.Queue[messages.Message]
    deadline: float  # loop time


class Outbox:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        me: LocalIdentity,
        connect: Connect,
        *,
        retry_min: float = 1.0,
        retry_max: float = 300.0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        self._on_event = on_event  # told of each receipt stored (any thread; ids only)
        self._fallback = fallback
        self._store = store
        self._layout = layout
        self._me = me
        self._connect = connect
        self._retry_min = retry_min
        self._retry_now: set[str] = set()  # peers to retry at once (``wake``)
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._replies: dict[tuple[int, bytes], asyncio.Queue[messages.Message]] = {}
        self.progress: dict[tuple[str, str], int] = {}

    # --- queueing ------------------------------------------------------------------

    async def queue(
        self,
        recipients: Sequence[Recipient],
        kind: str,
        metadata: dict[str, str],
        attachments: Sequence[Attachment],
    ) -> str:
        """Seal and queue one document for ``recipients``; return its id (hex)."""
        doc_id = new_document_id()
        # Reading the files, sealing and the outbox commit all wait on the disk: one
        # trip to a worker thread for them, and the event loop keeps serving meanwhile.
        size = await asyncio.to_thread(
            self._seal_and_queue, doc_id, kind, metadata, recipients, attachments
        )
        log.info("queued a document for %d recipient(s) (%d bytes)", len(recipients), size)
        self.wake()
        return doc_id.hex()

    def _seal_and_queue(
        self,
        doc_id: bytes,
        kind: str,
        metadata: dict[str, str],
        recipients: Sequence[Recipient],
        attachments: Sequence[Attachment],
    ) -> int:
        meta = DocumentMeta(
            document_id=doc_id,
            created_at=int(time.time()),
            kind=kind,
            sender=self._me.public,
            recipients=tuple(r.card.identity for r in recipients),
            files=tuple(
                FileEntry(a.name, a.path.stat().st_size, a.media_type) for a in attachments
            ),
            metadata=metadata,
        )
        doc_hex = meta.document_id.hex()
        with contextlib.ExitStack() as stack:
            sources = [stack.enter_context(open(a.path, "rb")) for a in attachments]
            sealed = seal(self._me, [r.card for r in recipients], meta, sources)
            size = write_atomic(self._layout.sent_envelope(doc_hex), sealed).size
        peers = [r.peer_id for r in recipients]
        self._store.queue(doc_hex, peers, size, sealed.digest, meta.created_at)
        return size

    # --- scheduling ------------------------------------------------------------------

    def wake(self, peer_id: str | None = None) -> None:
        """Try now: a document was queued, or ``peer_id`` was seen again.

        The peer's retry times are reset by ``run`` on the worker thread (a commit
        does not belong on the event loop), before it looks for due documents.
        """
        if peer_id is not None:
            self._retry_now.add(peer_id)
        self._wake.set()

    async def retry(self, doc_id: str, peer_id: str) -> None:
        """Try this recipient again now (``POST /v1/outbox/{doc}/{peer}/retry``)."""
        await self._queued_row(doc_id, peer_id, "retried")
        self.wake(peer_id)

    async def cancel(self, doc_id: str, peer_id: str) -> None:
        """Never send this document to this recipient (``.../cancel``), if not yet sent."""
        await self._queued_row(doc_id, peer_id, "cancelled")
        if (doc_id, peer_id) in self.progress:
            raise BadInput("It is being sent right now, so it cannot be cancelled any more.")
        reason = "cancelled by the sender"
        if not await asyncio.to_thread(self._store.cancel_queued, doc_id, peer_id, reason):
            raise BadInput("It was delivered meanwhile, so it cannot be cancelled any more.")

    async def _queued_row(self, doc_id: str, peer_id: str, what: str) -> OutboxRow:
        rows = await asyncio.to_thread(self._store.outbox)
        found = [r for r in rows if r.doc_id == doc_id and r.peer_id == peer_id]
        if not found:
            raise DocumentUnknown("No document in the outbox has this id for this recipient.")
        if found[0].state != "queued":
            raise BadInput(
                f"Only a document still waiting can be {what}; this one is {found[0].state}."
            )
        return found[0]

    async def _reset_retries(self) -> None:
        while self._retry_now:
            await asyncio.to_thread(self._store.retry_now, self._retry_now.pop())

    async def run(self) -> None:
        """Start a sender for every peer with due documents, forever."""
        try:
            while True:
                self._wake.clear()
                await self._reset_retries()
                now = time.time()
                next_due = now + self._retry_max
                for peer_id, next_attempt in self._store.due_peers():
                    running = self._senders.get(peer_id)
                    if next_attempt <= now and (running is None or running.done()):
                        self._senders[peer_id] = asyncio.create_task(self._send_all(peer_id))
                    elif next_attempt > now:
                        next_due = min(next_due, next_attempt)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.05, next_due - now)):
                        await self._wake.wait()
        finally:
            for task in self._senders.values():
                task.cancel()
            for task in self._senders.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _send_all(self, peer_id: str) -> None:
        try:
            while True:
                due = self._store.due(peer_id, time.time())
                if not due:
                    return
                try:
                    link = await self._connect(peer_id)
                    await self._deliver_all(link, due)
                except (PeerUnreachable, ConnectionError, TimeoutError, _Retry) as exc:
                    if self._fallback is not None and isinstance(exc, PeerUnreachable):
                        await self._fallback(peer_id, due)
                    error = str(exc) or exc.__class__.__name__
                    await asyncio.to_thread(self._backoff, due, error)
                    return
        finally:
            self._wake.set()

    def _backoff(self, rows: Sequence[OutboxRow], error: str) -> None:
        """Record the failed attempt and when to try next (a commit: worker thread)."""

        def next_attempt(attempts: int) -> float:
            delay = min(self._retry_max, self._retry_min * 2.0 ** min(attempts, 20))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            return time.time() + delay

        failed = [(row.doc_id, row.peer_id) for row in rows]
        self._store.attempts_failed(failed, error, next_attempt)
        log.info("will retry %d document(s) later: %s", len(rows), error)

    # --- one document -------------------------------------------------------------------

    async def _deliver_all(self, link: Link, rows: Sequence[OutboxRow]) -> None:
        """Offer and stream each document in turn, collecting receipts as they come back.

        Receipts are verified and stored by one background task at a time, in
        batches, while the next documents are offered.
        """
        outstanding: deque[_Outstanding] = deque()
        ready: list[tuple[OutboxRow, bytes]] = []
        settling: asyncio.Task[None] | None = None
        try:
            for row in rows:
                sent = await self._deliver(link, row)
                if sent is not None:
                    outstanding.append(sent)
                await self._collect(link, outstanding, ready, keep=RECEIPT_WINDOW)
                if ready and (settling is None or settling.done()):
                    if settling is not None:
                        settling.result()  # a receipt that did not verify: stop here
                    settling = asyncio.create_task(self._settle(ready))
                    ready = []
            await self._collect(link, outstanding, ready, keep=0)
        finally:
            for sent in outstanding:
                self._forget(link, sent.row)
            if settling is not None:
                await settling
            if ready:
                await self._settle(ready)

    def _forget(self, link: Link, row: OutboxRow) -> None:
        self._replies.pop((id(link), bytes.fromhex(row.doc_id)), None)
        self.progress.pop((row.doc_id, row.peer_id), None)

    async def _deliver(self, link: Link, row: OutboxRow) -> _Outstanding | None:
        """Offer one document and stream it; what to wait for (None: already settled)."""
        doc_id = bytes.fromhex(row.doc_id)
        # Bounded: a receiver answers an offer once and an accepted transfer once more.
        replies: asyncio.Queue[messages.Message] = asyncio.Queue(limits.MAX_REPLIES_PER_OFFER)
        self._replies[(id(link), doc_id)] = replies
        try:
            await link.send(messages.Offer(doc_id, row.size))
            reply = await self._reply(replies, link, REPLY_TIMEOUT)
            if isinstance(reply, messages.Accept):
                await self._stream(link, row, reply.offset)
                wait = REPLY_TIMEOUT + row.size / SLOWEST_EXPECTED_RATE
                return _Outstanding(row, replies, asyncio.get_running_loop().time() + wait)
        except BaseException:
            self._forget(link, row)
            raise
        self._forget(link, row)
        try:
            await self._settle([self._answer(row, reply)])
        except _Refused as refused:
            await asyncio.to_thread(self._backoff, [row], str(refused))
        return None

    @staticmethod
    def _answer(row: OutboxRow, reply: messages.Message) -> tuple[OutboxRow, bytes]:
        if isinstance(reply, messages.Delivered):
            return row, reply.receipt
        if isinstance(reply, messages.Refuse):
            raise _Refused(refusal_sentence(reply.code))
        raise _Retry("the peer answered out of turn")

    async def _collect(
        self,
        link: Link,
        outstanding: deque[_Outstanding],
        ready: list[tuple[OutboxRow, bytes]],
        keep: int,
    ) -> None:
        """Move the receipts already back to ``ready``; wait for the oldest while > ``keep``."""
        loop = asyncio.get_running_loop()
        while outstanding and (len(outstanding) > keep or not outstanding[0].replies.empty()):
            head = outstanding[0]
            reply = await self._reply(head.replies, link, max(0.0, head.deadline - loop.time()))
            outstanding.popleft()
            self._forget(link, head.row)
            try:
                ready.append(self._answer(head.row, reply))
            except _Refused as refused:
                await asyncio.to_thread(self._backoff, [head.row], str(refused))

    async def _reply(
        self, replies: asyncio.Queue[messages.Message], link: Link, timeout: float
    ) -> messages.Message:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            return await replies.get()
                    if link.closed:
                        raise _Retry("the connection was lost")
        except TimeoutError:
            raise _Retry("the peer did not answer in time") from None

    async def _stream(self, link: Link, row: OutboxRow, offset: int) -> None:
        if not 0 <= offset <= row.size:
            raise _Retry("the peer asked for an impossible offset")
        path = self._layout.sent_envelope(row.doc_id)
        key = (row.doc_id, row.peer_id)
        with open(path, "rb") as handle:
            handle.seek(offset)
            position = offset
            while position < row.size:
                length = min(BULK_PAYLOAD, row.size - position)
                frame = bytearray(1 + length)
                frame[0] = messages.FrameType.BULK
                if handle.readinto(memoryview(frame)[1:]) != length:
                    raise _Retry("the sent envelope is shorter than recorded")
                await link.send_bulk(frame)
                position += length
                self.progress[key] = position
        if offset:
            log.info("resumed a transfer at %d of %d bytes", offset, row.size)

    async def _settle(self, ready: list[tuple[OutboxRow, bytes]]) -> None:
        """Verify receipts and store the valid ones in one commit (off the event loop)."""
        failure = await asyncio.to_thread(self._store_receipts, ready)
        if failure is not None:
            raise failure

    def _store_receipts(self, ready: list[tuple[OutboxRow, bytes]]) -> _Retry | None:
        valid: list[StoredReceipt] = []
        failure: _Retry | None = None
        now = int(time.time())
        peers: dict[str, PeerRow | None] = {}
        for row, wire in ready:
            if row.peer_id not in peers:
                peers[row.peer_id] = self._store.peer(row.peer_id)
            peer = peers[row.peer_id]
            if peer is None:
                failure = _Retry("the peer was removed")
                continue
            try:
                receipt = Receipt.from_wire(wire)
                receipt.verify(
                    recipient=PublicIdentity(peer.identity),
                    sender=self._me.public,
                    document_id=bytes.fromhex(row.doc_id),
                    envelope_digest=row.digest,
                    now=now,
                )
            except RemoteProtocolError:
                log.warning(
                    "a receipt from %s did not verify; the document stays queued",
                    peer.fingerprint[:5],
                )
                failure = _Retry("the receipt did not verify")
                continue
            valid.append(StoredReceipt(row.doc_id, row.peer_id, wire, receipt.time, receipt.status))
            log.info("delivered a document to %s", peer.fingerprint[:5])
        if valid:
            self._store.delivered_many(valid)
        if self._on_event is not None:
            for stored in valid:
                self._on_event(
                    {
                        "type": "document-delivered",
                        "id": stored.doc_id,
                        "to": stored.peer_id,
                        "status": stored.status,
                        "receipt_time": stored.time,
                    }
                )
        return failure

    # --- replies routed here by the daemon ----------------------------------------------

    async def receipt_arrived(self, doc_id: str, peer_id: str, wire: bytes) -> str:
        """A receipt that came another way (a mailbox): ``stored``, ``known`` or ``refused``.

        ``known``: the document was settled already (directly, or by a first copy).
        """
        row = self._store.outbox_entry(doc_id, peer_id)
        if row is None or row.state != OutboxState.QUEUED:
            return "known"
        try:
            await self._settle([(row, wire)])
        except _Retry:
            return "refused"
        return "stored"

    def on_reply(
        self, link: Link, message: messages.Accept | messages.Delivered | messages.Refuse
    ) -> bool:
        """Hand a reply to the sender waiting for it; False if nobody waits (ignored).

        Raises ``TooManyReplies`` if the answers already given about that
        document are still unread: the receiver is flooding, close it.
        """
        queue = self._replies.get((id(link), message.document_id))
        if queue is None:
            return False
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            raise TooManyReplies("more answers about one document than the protocol has") from None
        return True


class TooManyReplies(Exception):
    """A receiver sent more answers than the sender can have asked for: close the link."""


class _Retry(Exception):
    """This attempt failed; the document stays queued and is retried later."""


class _Refused(_Retry):
    """The receiver refused this one document; the documents behind it still go now."""
