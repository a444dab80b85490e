"""The outbox service: queue (seal, streamed while sealing), schedule one sender per
peer, offer, stream, collect the receipts, back off.

Size (over 400 lines): one sender's state machine, whose steps share the outstanding
window and the retry rules; it reads best whole. What it is given (recipients,
attachments) and the refusal words are in ``parts.py``, the streaming of an
envelope (while sealing or once durable) in ``sealing.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from p2p.errors import BadInput, DocumentUnknown, PeerUnreachable
from p2p.events import Link
from p2p.services.outbox.parts import Attachment, Recipient, refused
from p2p.services.outbox.queueing import NewDocument, Queueing
from p2p.services.outbox.sealing import Early, SealFailed, Sealing, ShortEnvelope, send_envelope
from p2p.storage.failures import Failed, Failure
from p2p.storage.files import Layout
from p2p.storage.store import OutboxRow, OutboxState, PeerRow, Store, StoredReceipt
from protocol import (
    ContentChanged,
    LocalIdentity,
    PublicIdentity,
    Receipt,
    RemoteProtocolError,
    limits,
    messages,
    new_document_id,
)

log = logging.getLogger("pli.outbox")

#: What a sender goes through: documents already queued, and documents still sealing.
_Item = OutboxRow | Early

#: How long to wait for the receiver to answer an offer.
REPLY_TIMEOUT = 30.0
#: Receipt wait: verifying on the receiver runs well above this rate.
SLOWEST_EXPECTED_RATE = 5_000_000
#: How long a write that failed waits for the refusal read behind it (``_overtaken``).
OVERTAKEN_REFUSAL = 2.0
#: Documents streamed to one peer whose receipt has not come back yet.
RECEIPT_WINDOW = 64

Connect = Callable[[str], Awaitable[Link]]
#: When a peer cannot be reached directly: leave its due documents, and those still being
#: sealed, elsewhere (a mailbox); a sentence for the outbox when that place refused them
#: too, else None.
Fallback = Callable[[str, Sequence[OutboxRow], Sequence[Early]], Awaitable[str | None]]


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
        # What is due, kept here rather than asked of the store at every wake (a burst
        # of letters wakes the outbox once per letter): by peer, the earliest next
        # attempt of its queued rows (read from the store once at start, then again
        # only when one of its senders ends), and the rows queued since its sender
        # last read the store.
        self._next: dict[str, float] = {}
        self._fresh: dict[str, list[OutboxRow]] = {}
        self._sealing: dict[str, list[Sealing]] = {}  # by recipient, not yet taken by a sender
        self._queueing = Queueing(store, layout, me)
        self._born = time.time()
        self._replies: dict[tuple[int, bytes], asyncio.Queue[messages.Message]] = {}
        self.progress: dict[tuple[str, str], int] = {}
        # By peer, the documents of the attempt under way whose refusal is recorded.
        self._refused_now: dict[str, set[str]] = {}

    # --- queueing ------------------------------------------------------------------

    async def queue(
        self,
        recipients: Sequence[Recipient],
        kind: str,
        metadata: dict[str, str],
        attachments: Sequence[Attachment],
        *,
        doc_id: bytes | None = None,
    ) -> str:
        """Seal and queue one document for ``recipients``; return its id (hex) once durable.

        The recipients' senders stream it while it is sealed (``sealing.py``).
        ``doc_id``: the id a caller chose and recorded first (the outbox folder's
        claim), so that queueing again after a crash cannot make a second document.
        """
        doc_id = doc_id or new_document_id()
        peers = [r.peer_id for r in recipients]
        sealing = Sealing(doc_id.hex(), peers, self._layout.sent_envelope(doc_id.hex()))
        for peer_id in peers:
            self._sealing.setdefault(peer_id, []).append(sealing)
        self.wake()
        try:
            # Reading the files and sealing wait on the disk: a worker thread, while the
            # event loop keeps serving; then the group commit of what was sealed meanwhile.
            document = NewDocument(doc_id, kind, metadata, recipients, attachments)
            sealed = await self._queueing(document, sealing)
        except ContentChanged as exc:
            sealing.fail(exc)
            raise BadInput(
                "A file changed while pli was reading it (its size is no longer the one it "
                "had): nothing was sent. Send it again once it is complete."
            ) from None
        except BaseException as exc:
            sealing.fail(exc)
            raise
        finally:
            for peer_id in peers:  # not taken by a sender yet: its row is due like any other
                with contextlib.suppress(KeyError, ValueError):
                    self._sealing[peer_id].remove(sealing)
        sealing.committed({row.peer_id: row for row in sealed.rows})
        for row in sealed.rows:  # due at once (a sender that took it early skips it)
            self._fresh.setdefault(row.peer_id, []).append(row)
            self._next[row.peer_id] = 0.0
        self.wake()
        return doc_id.hex()

    def sweep(self) -> int:
        """Remove sent envelopes that were never queued (worker thread, at start-up).

        A kill -9 after an envelope got its name but before its group commit leaves
        it without an outbox row: its POST was never answered, nothing refers to it.
        """
        queued = {row.doc_id for row in self._store.outbox()}
        removed = 0
        for path in self._layout.sent.glob("*.pli"):
            with contextlib.suppress(FileNotFoundError):
                # Older than this daemon: not one a request of ours is sealing now.
                if path.stem not in queued and path.stat().st_mtime < self._born:
                    path.unlink()
                    removed += 1
        if removed:
            log.info("removed %d envelope(s) sealed but never queued", removed)
        return removed

    # --- scheduling ------------------------------------------------------------------

    def wake(self, peer_id: str | None = None) -> None:
        """Try now: a document was queued, or ``peer_id`` was seen again.

        The peer's retry times are reset by ``run`` on the worker thread (a commit
        does not belong on the event loop), before it looks for due documents.
        """
        if peer_id is not None:
            self._retry_now.add(peer_id)
        self._wake.set()

    def wake_waiting(self) -> None:
        """Try now every peer that documents wait for: a way to them opened (a mailbox
        was connected), which their back-off knows nothing of."""
        self._retry_now.update(self._next)
        self._wake.set()

    def forget(self, peer_id: str) -> None:
        """The peer was removed or revoked (its queued rows cancelled): nothing is due to it."""
        self._fresh.pop(peer_id, None)
        self._next.pop(peer_id, None)

    async def retry(self, doc_id: str, peer_id: str) -> None:
        """Try this recipient again now (``POST /v1/outbox/{doc}/{peer}/retry``)."""
        await self._queued_row(doc_id, peer_id, "retried")
        self.wake(peer_id)

    async def cancel(self, doc_id: str, peer_id: str) -> None:
        """Never send this document to this recipient (``.../cancel``), if not yet sent."""
        await self._queued_row(doc_id, peer_id, "cancelled")
        if (doc_id, peer_id) in self.progress:
            raise BadInput(
                "It is being sent right now, so it cannot be cancelled any more.",
                french="Il est en cours d'envoi : il ne peut plus être annulé.",
            )
        reason = Failed.of(Failure.CANCELLED_BY_SENDER)
        if not await asyncio.to_thread(self._store.cancel_queued, doc_id, peer_id, reason):
            raise BadInput(
                "It was delivered meanwhile, so it cannot be cancelled any more.",
                french="Il a été remis entre-temps : il ne peut plus être annulé.",
            )
        fresh = self._fresh.get(peer_id, [])
        fresh[:] = [row for row in fresh if row.doc_id != doc_id]

    async def _queued_row(self, doc_id: str, peer_id: str, what: str) -> OutboxRow:
        rows = await asyncio.to_thread(self._store.outbox)
        found = [r for r in rows if r.doc_id == doc_id and r.peer_id == peer_id]
        if not found:
            raise DocumentUnknown(
                "No document in the outbox has this id for this recipient.",
                french="Aucun document envoyé à ce destinataire n'a cet identifiant.",
            )
        if found[0].state != "queued":
            raise BadInput(
                f"Only a document still waiting can be {what}; this one is {found[0].state}.",
                french=_NOT_WAITING_FR.get(found[0].state, _NOT_WAITING_FR[""]),
            )
        return found[0]

    async def _reset_retries(self) -> None:
        while self._retry_now:
            peer_id = self._retry_now.pop()
            await asyncio.to_thread(self._store.retry_now, peer_id)
            await self._reread(peer_id)  # the store says what is queued to it (rare: seen again)

    async def _seed(self) -> None:
        """What is due to whom, from the store: once, as the outbox starts."""
        for peer_id, earliest in await asyncio.to_thread(self._store.due_peers):
            self._next[peer_id] = min(earliest, self._next.get(peer_id, earliest))

    async def _reread(self, peer_id: str) -> None:
        """The peer's earliest next attempt from the store, as its sender ends."""
        earliest = await asyncio.to_thread(self._store.next_attempt, peer_id)
        if self._fresh.get(peer_id):  # queued meanwhile: due at once
            earliest = 0.0
        if earliest is None:
            self._next.pop(peer_id, None)
        else:
            self._next[peer_id] = earliest

    async def run(self) -> None:
        """Start a sender for every peer with due documents, forever."""
        try:
            await self._seed()
            while True:
                self._wake.clear()
                await self._reset_retries()
                now = time.time()
                next_due = now + self._retry_max
                due = dict(self._next)
                # A document being sealed goes at once, unless its peer is backing off
                # (unreachable): then it waits for that peer's next attempt, queued.
                for peer_id, docs in self._sealing.items():
                    if docs and peer_id not in due:
                        due[peer_id] = now
                for peer_id, next_attempt in due.items():
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
        """Offer the peer what is due to it until nothing is; then what is left, and when.

        The store is read once, as the sender starts (what earlier attempts left);
        then only the documents queued meanwhile are taken (``_fresh``). A row
        committed just as the store was read, or of a document taken while it was
        sealing, comes in both ways: it is sent once.
        """
        try:
            due = await asyncio.to_thread(self._store.due, peer_id, time.time())
            seen = {row.doc_id for row in due}  # each comes once more at most, if fresh
            while True:
                # Documents still being sealed first: their senders are waiting for them.
                early = [Early(s, peer_id) for s in self._sealing.pop(peer_id, [])]
                taken = {item.doc_id for item in early}
                seen.update(taken)
                for row in self._fresh.pop(peer_id, []):
                    if row.doc_id in seen:
                        seen.discard(row.doc_id)
                    else:
                        due.append(row)
                # Committed just as the store was read, before its sealing was let go of:
                # it is among the early ones already.
                due = [row for row in due if row.doc_id not in taken]
                if not due and not early:
                    break
                if not await self._attempt(peer_id, early, due):
                    break
                due = []
            await self._reread(peer_id)
        finally:
            self._wake.set()

    async def _attempt(self, peer_id: str, early: list[Early], due: list[OutboxRow]) -> bool:
        """One connection's delivery of ``early`` and ``due``; False if it failed (backing off).

        A document shows as being sent (``progress``) until what became of it is
        recorded: its receipt, its refusal, or this attempt's failure.
        """
        self._refused_now[peer_id] = set()
        try:
            return await self._attempt_all(peer_id, early, due)
        finally:
            items: list[_Item] = [*early, *due]
            for item in items:
                self.progress.pop((item.doc_id, peer_id), None)
            self._refused_now.pop(peer_id, None)

    async def _attempt_all(self, peer_id: str, early: list[Early], due: list[OutboxRow]) -> bool:
        try:
            link = await self._connect(peer_id)
            await self._deliver_all(link, [*early, *due])
        except (PeerUnreachable, ConnectionError, TimeoutError, _Retry) as exc:
            # A document not yet durable has no row: once it has, it is due.
            due += [i.sealing.rows[peer_id] for i in early if i.sealing.rows is not None]
            # One the receiver refused keeps its reason, not the closing connection's.
            refused_now = self._refused_now.get(peer_id, set())
            due = [row for row in due if row.doc_id not in refused_now]
            failed = _failed(exc)
            if self._fallback is not None and isinstance(exc, PeerUnreachable):
                sealing = [i for i in early if i.sealing.rows is None]  # posted as sealed
                full = await self._fallback(peer_id, due, sealing)  # a mailbox full for them
                if full is not None:
                    failed = Failed(Failure.MAILBOX_FULL, f"{failed.text} {full}")
            await asyncio.to_thread(self._backoff, due, failed)
            gone = {row.doc_id for row in due}  # not again before their next attempt
            fresh = self._fresh.get(peer_id, [])
            fresh[:] = [row for row in fresh if row.doc_id not in gone]
            return False
        return True

    def _backoff(self, rows: Sequence[OutboxRow], failed: Failed) -> None:
        """Record the failed attempt, why, and when to try next (a commit: worker thread)."""

        def next_attempt(attempts: int) -> float:
            delay = min(self._retry_max, self._retry_min * 2.0 ** min(attempts, 20))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
            return time.time() + delay

        self._store.attempts_failed([(r.doc_id, r.peer_id) for r in rows], failed, next_attempt)
        log.info("will retry %d document(s) later: %s", len(rows), failed.text)

    # --- one document -------------------------------------------------------------------

    async def _deliver_all(self, link: Link, rows: Sequence[_Item]) -> None:
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
                self._forget(link, sent.row.doc_id)
            if settling is not None:
                await settling
            if ready:
                await self._settle(ready)

    def _forget(self, link: Link, doc_id: str) -> None:
        """No more replies are awaited about this document on this link."""
        self._replies.pop((id(link), bytes.fromhex(doc_id)), None)

    async def _record_refusal(self, row: OutboxRow, failed: Failed) -> None:
        """The receiver refused this document: its reason is recorded, and it is done
        being sent (the attempt's own failure, if any, leaves that reason alone)."""
        await asyncio.to_thread(self._backoff, [row], failed)
        self._refused_now.setdefault(row.peer_id, set()).add(row.doc_id)
        self.progress.pop((row.doc_id, row.peer_id), None)

    async def _deliver(self, link: Link, item: _Item) -> _Outstanding | None:
        """Offer one document and stream it; what to wait for (None: already settled)."""
        doc_id = bytes.fromhex(item.doc_id)
        size = item.size if isinstance(item, OutboxRow) else await item.sealing.started()
        # Bounded: a receiver answers an offer once and an accepted transfer once more.
        replies: asyncio.Queue[messages.Message] = asyncio.Queue(limits.MAX_REPLIES_PER_OFFER)
        self._replies[(id(link), doc_id)] = replies
        if size <= limits.MAX_PUSHED_ENVELOPE:
            return await self._push(link, item, size, replies)
        try:
            await link.send(messages.Offer(doc_id, size))
            reply = await self._reply(replies, link, REPLY_TIMEOUT)
            if isinstance(reply, messages.Accept):
                try:
                    row = await self._stream(link, item, size, reply.offset)
                except ConnectionError:
                    refusal = await self._overtaken(replies, link)
                    if refusal is None:
                        raise
                    reply = refusal
                else:
                    wait = REPLY_TIMEOUT + row.size / SLOWEST_EXPECTED_RATE
                    return _Outstanding(row, replies, asyncio.get_running_loop().time() + wait)
            row = item if isinstance(item, OutboxRow) else await item.row()
        except SealFailed:
            self._forget(link, item.doc_id)
            # The receiver holds part of an envelope that will never be whole: a new
            # offer on this link would be refused, so this attempt ends here.
            raise _Retry(Failure.SEAL_FAILED) from None
        except BaseException:
            self._forget(link, item.doc_id)
            raise
        self._forget(link, item.doc_id)
        try:
            await self._settle([self._answer(row, reply)])
        except _Refused as refusal:
            await self._record_refusal(row, refusal.failed)
        return None

    async def _push(
        self, link: Link, item: _Item, size: int, replies: asyncio.Queue[messages.Message]
    ) -> _Outstanding | None:
        """A letter: offered with its bytes at once, once durable (no accept to wait for).

        Sealing a letter takes less than the round trip that streaming while
        sealing would save; the receipt (or refusal) is collected like any other.
        None: its seal failed before anything was offered (it was never queued).
        """
        try:
            row = item if isinstance(item, OutboxRow) else await item.row()
            await link.send(messages.Offer(bytes.fromhex(row.doc_id), size, push=True))
            await self._stream(link, row, size, 0)
        except SealFailed:
            self._forget(link, item.doc_id)
            return None
        except BaseException:
            self._forget(link, item.doc_id)
            raise
        wait = REPLY_TIMEOUT + size / SLOWEST_EXPECTED_RATE
        return _Outstanding(row, replies, asyncio.get_running_loop().time() + wait)

    @staticmethod
    def _answer(row: OutboxRow, reply: messages.Message) -> tuple[OutboxRow, bytes]:
        if isinstance(reply, messages.Delivered):
            return row, reply.receipt
        if isinstance(reply, messages.Refuse):
            raise _Refused(refused(reply.code))
        raise _Retry(Failure.OUT_OF_TURN)

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
            self._forget(link, head.row.doc_id)
            try:
                ready.append(self._answer(head.row, reply))
            except _Refused as refusal:
                await self._record_refusal(head.row, refusal.failed)

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
                        raise _Retry(Failure.CONNECTION_LOST)
        except TimeoutError:
            raise _Retry(Failure.NO_ANSWER) from None

    async def _overtaken(
        self, replies: asyncio.Queue[messages.Message], link: Link
    ) -> messages.Refuse | None:
        """The receiver's refusal of a transfer our write to it failed in, if it refused.

        A receiver that refuses an envelope (its disk is full, the quota is reached)
        says why and closes: our next write may fail before its refusal, behind it on
        the same connection, is read. That refusal is what the attempt ended with.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OVERTAKEN_REFUSAL):
                while not (link.closed and replies.empty()):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            reply = await replies.get()
                            if isinstance(reply, messages.Refuse):
                                return reply
        return None

    async def _stream(self, link: Link, item: _Item, size: int, offset: int) -> OutboxRow:
        """Send the envelope from ``offset``; its row (once durable, for an early one)."""
        if not 0 <= offset <= size:
            raise _Retry(Failure.OUT_OF_TURN, "the peer asked for an impossible offset")
        key = (item.doc_id, item.peer_id)

        def sent(position: int) -> None:
            self.progress[key] = position

        try:
            if isinstance(item, OutboxRow):
                path = self._layout.sent_envelope(item.doc_id)
                await send_envelope(link, path, offset, size, sent)
                row = item
            else:
                await item.send(link, offset, sent)
                row = await item.row()
        except ShortEnvelope:
            raise _Retry(Failure.ENVELOPE_DAMAGED) from None
        if offset:
            log.info("resumed a transfer at %d of %d bytes", offset, size)
        return row

    async def _settle(
        self, ready: list[tuple[OutboxRow, bytes]], *, by_mailbox: bool = False
    ) -> None:
        """Verify receipts and store the valid ones in one commit (off the event loop)."""
        failure = await asyncio.to_thread(self._store_receipts, ready, by_mailbox)
        for row, _wire in ready:  # recorded (delivered, or still queued if it did not verify)
            self.progress.pop((row.doc_id, row.peer_id), None)
        if failure is not None:
            raise failure

    def _store_receipts(
        self, ready: list[tuple[OutboxRow, bytes]], by_mailbox: bool
    ) -> _Retry | None:
        valid: list[StoredReceipt] = []
        failure: _Retry | None = None
        now = int(time.time())
        peers: dict[str, PeerRow | None] = {}
        for row, wire in ready:
            if row.peer_id not in peers:
                peers[row.peer_id] = self._store.peer(row.peer_id)
            peer = peers[row.peer_id]
            if peer is None:
                failure = _Retry(Failure.PEER_REMOVED)
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
                failure = _Retry(Failure.RECEIPT_INVALID)
                continue
            valid.append(
                StoredReceipt(
                    row.doc_id, row.peer_id, wire, receipt.time, receipt.status, by_mailbox
                )
            )
        if valid:
            self._store.delivered_many(valid)
        for peer_id, count in Counter(stored.peer_id for stored in valid).items():
            found = peers[peer_id]  # one line per batch and peer, not per letter
            who = found.fingerprint[:5] if found is not None else peer_id[:8]
            log.info("delivered %d document(s) to %s", count, who)
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
            await self._settle([(row, wire)], by_mailbox=True)
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


#: Why a document can no longer be retried or cancelled, by its state (said on the page).
_NOT_WAITING_FR = {
    "": "Ce document n'attend plus d'être envoyé : rien n'a été changé.",
    "delivered": "Ce document a déjà été remis : rien n'a été changé.",
    "rejected": "Ce document a été refusé par le destinataire : rien n'a été changé.",
    "cancelled": "Cet envoi est déjà annulé.",
}


class TooManyReplies(Exception):
    """A receiver sent more answers than the sender can have asked for: close the link."""


class _Retry(Exception):
    """This attempt failed; the document stays queued and is retried later."""

    def __init__(self, code: Failure, detail: str | None = None) -> None:
        self.failed = Failed.of(code, detail)
        super().__init__(self.failed.text)


class _Refused(_Retry):
    """The receiver refused this one document; the documents behind it still go now."""

    def __init__(self, failed: Failed) -> None:
        super().__init__(failed.code, failed.text)


def _failed(exc: Exception) -> Failed:
    """What an attempt's failure is recorded as: its code, and its English sentence."""
    if isinstance(exc, _Retry):
        return exc.failed
    detail = str(exc) or None  # pli's own words (an unreachable peer's say where it tried)
    if isinstance(exc, PeerUnreachable):
        return Failed.of(Failure.UNREACHABLE, detail)
    if isinstance(exc, TimeoutError):
        return Failed.of(Failure.NO_ANSWER, detail)
    return Failed.of(Failure.CONNECTION_LOST, detail or exc.__class__.__name__)
