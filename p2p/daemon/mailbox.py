"""The routing seam between the mailboxes and the outbox and inbox.

Sending: when a peer cannot be reached directly, the outbox calls ``post`` with
its due documents, and those still being sealed; each one not yet in a mailbox
is left in the first mailbox the peer shares with us (a new one as its seal
goes, its last chunk once it is durable), and recorded (``mailbox_posts``) once
every chunk is stored by the server. One left longer ago than the mailbox's
retention has been dropped by the server unread, and is left again. The row
stays in the outbox until a signed receipt is back, and direct delivery keeps
being tried: whichever path delivers first wins, and the receiver stores a
document once whatever path it took.

Receiving: the chunks of an envelope are fed, in order, to the inbox through a
``LoopLink`` — the inbox verifies and commits them exactly as if they had come
over a session, and answers ``Accept``/``Delivered``/``Refuse`` on that link. The
JetStream messages of a document are acknowledged only once the document is
durable and its receipt is stored in the sender's mailbox; a crash before that
leaves them in the server, delivered again when the daemon comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2p.services.inbox import Inbox, TransferRefused
from p2p.services.mailbox.service import Envelope, MailboxFull, MailboxService
from p2p.services.outbox import Outbox
from p2p.services.outbox.sealing import Early, SealFailed
from p2p.storage.files import Layout
from p2p.storage.store import OutboxRow, PeerRow, Store
from protocol import ProfileCard, PublicIdentity, Receipt, RemoteProtocolError, messages
from protocol import mailbox as frames

if TYPE_CHECKING:  # nats-py is imported once a mailbox is joined (services/mailbox)
    from p2p.services.mailbox.connection import Ack, Connection

log = logging.getLogger("pli.mailbox")

#: How long the inbox may take to commit a complete envelope and answer.
COMMIT_TIMEOUT = 120.0

#: A later receipt handed to the receipts service: (peer, doc id, receipt, via) -> how it went.
Later = Callable[[PublicIdentity, bytes, bytes, str], Awaitable[tuple[str, str | None]]]
#: A signed card a peer left in our mailbox: (peer id hex, card, its wire) -> None.
CardArrived = Callable[[str, ProfileCard, bytes], None]


class LoopLink:
    """A ``Link`` whose far end is this daemon: the inbox's answers land in a queue."""

    closed = False

    def __init__(self) -> None:
        self.answers: asyncio.Queue[messages.Message] = asyncio.Queue()

    async def send(self, message: messages.Message) -> None:
        self.answers.put_nowait(message)

    async def send_bulk(self, frame: bytearray | bytes) -> None:
        raise TransferRefused("the inbox does not send envelope bytes")


@dataclass
class _Arriving:
    """An envelope being read from a mailbox and fed to the inbox."""

    link: LoopLink
    received: int  # bytes the inbox holds
    total: int
    #: The latest delivery of each chunk, by index: a chunk the server delivers again
    #: (every ``ACK_WAIT`` while the envelope stays incomplete) replaces its ack
    #: instead of adding one more, so an orphan envelope does not grow without end.
    acks: dict[int, Ack] = field(default_factory=dict)


class MailboxRouting:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        inbox: Inbox,
        outbox: Outbox,
        *,
        mailboxes: Callable[[], MailboxService],
        peer: Callable[[str], PeerRow | None],
        later: Later | None = None,
        card_arrived: CardArrived | None = None,
    ) -> None:
        self._store = store
        self._layout = layout
        self._inbox = inbox
        self._outbox = outbox
        self._mailboxes = mailboxes
        self._peer = peer
        self._later = later
        self._card_arrived = card_arrived
        self._arriving: dict[tuple[str, bytes], _Arriving] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- sending ------------------------------------------------------------------------

    async def post(
        self, peer_hex: str, rows: Sequence[OutboxRow], early: Sequence[Early] = ()
    ) -> str | None:
        """The outbox's fallback: leave what is not in a mailbox yet in one the peer shares,
        ``rows`` (durable) then ``early`` (still being sealed: posted as the seal goes,
        the last chunk once durable).

        Returns a sentence for the outbox when a mailbox refused a document (full)."""
        service = self._mailboxes()
        row_peer = self._peer(peer_hex)
        if row_peer is None or not service.connected():
            return None
        card = ProfileCard.from_wire(row_peer.card)
        # Left earlier than the retention: the server has dropped it; leave it again.
        since = int(time.time() - service.retention)
        posted = await asyncio.to_thread(self._store.mailbox_posted_since, peer_hex, since)
        for row in rows:
            if row.doc_id not in posted:
                envelope = Envelope.durable(self._layout.sent_envelope(row.doc_id), row.size)
                left, said = await self._post(service, card, peer_hex, row.doc_id, envelope)
                if not left:
                    return said
        for item in early:
            try:
                envelope = _being_sealed(item, await item.sealing.started())
                left, said = await self._post(service, card, peer_hex, item.doc_id, envelope)
            except SealFailed:
                continue  # nothing was queued: the caller was told why
            if not left:
                return said
        return None

    async def _post(
        self,
        service: MailboxService,
        card: ProfileCard,
        peer_hex: str,
        doc_id: str,
        envelope: Envelope,
    ) -> tuple[bool, str | None]:
        """Leave one document; whether it was left (recorded), else the outbox's sentence."""
        try:
            url = await service.post(card, bytes.fromhex(doc_id), envelope)
        except MailboxFull as exc:
            log.info("a mailbox is full for a colleague: the document waits in the outbox")
            return False, (
                f"The mailbox {exc.url} is full for this colleague: the document stays "
                "here and goes as soon as the colleague can be reached or the mailbox "
                "has room again."
            )
        except SealFailed:
            raise  # not the mailbox's doing: ``post`` goes on with the next document
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.info("could not leave a document in a mailbox: %s", type(exc).__name__)
            return False, None
        except Exception as exc:  # nats-py's own errors: the server said no (limits)
            log.info("a mailbox did not take a document: %s", type(exc).__name__)
            return False, None
        if url is None:
            return False, None  # no mailbox shared with this peer is reachable now
        now = int(time.time())  # durable: a sealing one's last chunk waited for it
        await asyncio.to_thread(self._store.mailbox_posted, doc_id, peer_hex, url, now)
        return True, None

    async def post_receipt(self, peer_hex: str, doc_id: bytes, receipt: bytes, index: int) -> bool:
        """Leave a later receipt in the peer's mailbox; False if no mailbox took it now."""
        service = self._mailboxes()
        row = self._peer(peer_hex)
        if row is None:
            return False
        card = ProfileCard.from_wire(row.card)
        for connection in service.routes(card):
            try:
                if await service.send_receipt(connection, card, doc_id, receipt, index=index):
                    return True
            except (OSError, TimeoutError, ConnectionError) as exc:
                log.info("could not leave a receipt in a mailbox: %s", type(exc).__name__)
            except Exception as exc:  # nats-py's own errors: the server said no (full, limits)
                log.info("a mailbox did not take a receipt: %s", type(exc).__name__)
        return False

    def post_card_soon(self, peers: Sequence[PeerRow], wire: bytes, seq: int) -> None:
        """Leave our new card in each peer's mailbox, in the background: a peer that only
        a mailbox reaches learns the mailboxes we share now (sessions carry it to the others)."""
        task = asyncio.create_task(self._post_cards(peers, wire, seq), name="cards by mailbox")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_cards(self, peers: Sequence[PeerRow], wire: bytes, seq: int) -> None:
        service = self._mailboxes()
        for row in peers:
            try:
                url = await service.send_card(ProfileCard.from_wire(row.card), wire, seq)
            except (OSError, TimeoutError, ConnectionError, RemoteProtocolError) as exc:
                log.info("could not leave our card in a mailbox: %s", type(exc).__name__)
                continue
            except Exception as exc:  # nats-py's own errors: the server said no (full, limits)
                log.info("a mailbox did not take our card: %s", type(exc).__name__)
                continue
            if url is not None:
                log.info("left our card (seq %d) for %s in %s", seq, row.fingerprint[:5], url)

    # --- receiving ----------------------------------------------------------------------

    async def handle(
        self, connection: Connection, peer_hex: str, frame: frames.Frame, ack: Ack
    ) -> None:
        """One message from our mailbox (already opened with the pair's key)."""
        row = self._peer(peer_hex)
        if row is None:
            await ack.send(connection, drop=True)
            return
        if isinstance(frame, frames.CardFrame):
            await ack.send(connection, drop=not self._card(row, frame.card))
            return
        if isinstance(frame, frames.ReceiptFrame) and self._later is not None and _later(frame):
            identity = PublicIdentity(row.identity)
            arrival, _ = await self._later(identity, frame.doc_id, frame.receipt, "mailbox")
            await ack.send(connection, drop=arrival == "refused")  # refused: never again
            return
        if isinstance(frame, frames.ReceiptFrame):
            doc_hex = frame.doc_id.hex()
            settled = await self._outbox.receipt_arrived(doc_hex, peer_hex, frame.receipt)
            await ack.send(connection, drop=settled == "refused")  # refused: never again
            return
        await self._chunk(connection, row, frame, ack)

    async def _chunk(
        self, connection: Connection, row: PeerRow, chunk: frames.Chunk, ack: Ack
    ) -> None:
        key = (row.peer_id, chunk.doc_id)
        arriving = self._arriving.get(key)
        if arriving is None or arriving.total != chunk.total:
            if arriving is not None:
                self._drop(key)
            arriving = await self._offer(connection, row, chunk, ack)
            if arriving is None:
                return
            self._arriving[key] = arriving
        arriving.acks[chunk.index] = ack
        end = chunk.offset + len(chunk.data)
        if chunk.offset <= arriving.received < end:
            piece = chunk.data[arriving.received - chunk.offset :]
            try:
                await self._inbox.on_bulk(arriving.link, memoryview(piece))
            except TransferRefused:
                await self._finish(connection, row, key, None)
                return
            arriving.received = end
        if arriving.received == arriving.total or not arriving.link.answers.empty():
            await self._finish(connection, row, key, COMMIT_TIMEOUT)

    async def _offer(
        self, connection: Connection, row: PeerRow, chunk: frames.Chunk, ack: Ack
    ) -> _Arriving | None:
        """Start (or resume) an envelope in the inbox; None when it is already settled."""
        link = LoopLink()
        sender = PublicIdentity(row.identity)
        await self._inbox.on_offer(link, sender, messages.Offer(chunk.doc_id, chunk.total))
        if link.answers.empty():  # the inbox always answers an offer; if not, read it again
            log.warning("the inbox did not answer a document left in a mailbox")
            return None
        answer = link.answers.get_nowait()
        if isinstance(answer, messages.Accept):
            return _Arriving(link, answer.offset, chunk.total)
        await self._answered(connection, row, chunk.doc_id, answer, [ack])
        return None

    async def _finish(
        self, connection: Connection, row: PeerRow, key: tuple[str, bytes], timeout: float | None
    ) -> None:
        arriving = self._arriving.pop(key)
        try:
            async with asyncio.timeout(timeout):
                answer = await arriving.link.answers.get()
        except TimeoutError:
            self._inbox.channel_closed(arriving.link)
            return  # not acknowledged: the server delivers these messages again
        await self._answered(connection, row, key[1], answer, list(arriving.acks.values()))

    async def _answered(
        self,
        connection: Connection,
        row: PeerRow,
        doc_id: bytes,
        answer: messages.Message,
        acks: list[Ack],
    ) -> None:
        """The inbox's last word on a document: send its receipt back, then acknowledge."""
        if isinstance(answer, messages.Delivered):
            card = ProfileCard.from_wire(row.card)
            service = self._mailboxes()
            with contextlib.suppress(RemoteProtocolError):
                if not await service.send_receipt(connection, card, doc_id, answer.receipt):
                    log.info("the sender's mailbox is not on %s: its receipt waits", connection.url)
                    return
            for ack in acks:
                await ack.send(connection)
            return
        reason = answer.code if isinstance(answer, messages.Refuse) else "out of turn"
        log.warning("refused a document left in a mailbox by %s (%s)", row.fingerprint[:5], reason)
        for ack in acks:
            await ack.send(connection, drop=True)

    def _card(self, row: PeerRow, wire: bytes) -> bool:
        """A card the peer left: stored as one a session carried (if newer); False if
        it does not verify or names another identity."""
        try:
            card = ProfileCard.from_wire(wire)
        except RemoteProtocolError:
            return False
        if card.identity != PublicIdentity(row.identity):
            log.warning("a card left in a mailbox by %s names another key", row.fingerprint[:5])
            return False
        if self._card_arrived is not None:
            self._card_arrived(row.peer_id, card, wire)
        return True

    def _drop(self, key: tuple[str, bytes]) -> None:
        arriving = self._arriving.pop(key, None)
        if arriving is not None:
            self._inbox.channel_closed(arriving.link)

    def close(self) -> None:
        for key in list(self._arriving):
            self._drop(key)
        for task in list(self._tasks):
            task.cancel()


def _being_sealed(item: Early, size: int) -> Envelope:
    """An envelope still being sealed, read as far as it is written; while it is read,
    what is ahead of the post stays in the page cache (``Sealing.droppable``)."""
    sealing, reader = item.sealing, object()
    return Envelope(
        sealing.open,
        size,
        limit=sealing.limit,
        reached=lambda position: sealing.reading(reader, position),
    )


def mailbox_rows(store: Store, service: MailboxService) -> list[dict[str, Any]]:
    """Each mailbox joined: its state in words and the documents waiting each way —
    ``waiting_in`` for us to read, ``waiting_out`` left there by us, receipt awaited
    (``GET /v1/mailboxes``, ``GET /v1/status``)."""
    waiting_out: dict[str, int] = {}
    queued = {(r.doc_id, r.peer_id) for r in store.outbox() if r.state == "queued"}
    for key, (url, _via) in store.mailbox_posts().items():
        if key in queued:
            waiting_out[url] = waiting_out.get(url, 0) + 1
    return [{**m, "waiting_out": waiting_out.get(m["url"], 0)} for m in service.status()]


def _later(frame: frames.ReceiptFrame) -> bool:
    """Whether a receipt frame holds a later receipt (integrated, read), not a delivery."""
    try:
        return Receipt.from_wire(frame.receipt).layer != "delivered"
    except RemoteProtocolError:
        return False  # the outbox refuses it as a delivery receipt
