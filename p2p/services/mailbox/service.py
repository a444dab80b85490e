"""The mailboxes a practice joined: their connections, posting envelopes, their state.

``MailboxService`` keeps one ``Connection`` per mailbox in ``mailboxes.json``
and follows that file (``reload``: joining or leaving needs no restart). It
posts a sealed envelope to a peer's mailbox chunk by chunk, reading the file as
it goes (memory stays constant in the file size: ``PUBLISH_WINDOW`` chunks in
flight at most), while it is still being sealed if it is new (``Envelope.limit``:
the last chunk waits until the envelope is durable), each chunk with a
``Nats-Msg-Id`` the server de-duplicates on, so a post cut by a crash and done
again stores each chunk once. What arrives in our own mailbox goes to the
handler the daemon gives (``daemon/mailbox.py``), which feeds the inbox and the
outbox exactly as the direct path does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import nacl.utils

from p2p.services.mailbox import RETENTION
from p2p.storage import mailboxes
from protocol import LocalIdentity, ProfileCard, RemoteProtocolError
from protocol import mailbox as frames

if TYPE_CHECKING:  # nats-py (~2 MB) is imported when a mailbox is joined, not before
    from p2p.services.mailbox.connection import Connection, Handler

log = logging.getLogger("pli.mailbox")

#: Chunks sent whose storing the server has not acknowledged yet (16 MiB in flight):
#: the sender streams at the server's pace instead of waiting a round trip per chunk.
PUBLISH_WINDOW = 16


@dataclass(frozen=True)
class Envelope:
    """What a post reads: the sealed envelope's file, and how much of it may be read."""

    open: Callable[[], BinaryIO]
    size: int
    #: (position, length) -> how far the file may be read from ``position``: at least
    #: ``length`` bytes past it, or all of it. Waits while the envelope is being
    #: sealed and holds its end back until it is durable (``sealing.Sealing.limit``);
    #: None: durable already, all of it.
    limit: Callable[[int, int], Awaitable[int]] | None = None
    #: Told the position read so far, then None (keeps what is ahead in the page cache).
    reached: Callable[[int | None], None] | None = None

    @classmethod
    def durable(cls, path: Path, size: int) -> Envelope:
        return cls(lambda: path.open("rb"), size)


class MailboxFull(Exception):
    """A mailbox refused a document: the colleague's share there (or its quota) is full."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class MailboxService:
    def __init__(
        self,
        home: Path,
        me: LocalIdentity,
        cards: Callable[[], dict[str, bytes]],
        handler: Handler,
        *,
        retention: float = RETENTION,
        on_connected: Callable[[str], None] | None = None,
    ) -> None:
        self._home = home
        self._on_connected = on_connected  # told each time a mailbox (url) is connected
        self.retention = retention
        self._me = me
        self._cards = cards
        self._handler = handler
        self.box = frames.box_name(me.public)
        self._connections: dict[str, Connection] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._keys: dict[str, tuple[bytes, frames.PairKeys, str]] = {}  # peer -> (card, keys, box)
        self._joined: list[mailboxes.Mailbox] = []

    # --- which mailboxes ----------------------------------------------------------

    async def reload(self) -> None:
        """Connect to the mailboxes joined, close those left (reads ``mailboxes.json``)."""
        joined, seed = await asyncio.to_thread(self._read)
        self._joined = joined
        wanted = {m.url: m for m in joined}
        for url in list(self._connections):
            if url not in wanted:
                self._tasks.pop(url).cancel()
                del self._connections[url]
                log.info("left the mailbox %s", url)
        for url, mailbox in wanted.items():
            if url in self._connections or seed is None:
                continue
            from p2p.services.mailbox.connection import Connection, credential_options

            creds = mailboxes.credentials_path(self._home, mailbox)
            options = credential_options(seed, creds)
            connection = Connection(
                url,
                options,
                self.box,
                self._handler,
                self._directions,
                retention=self.retention,
                on_connected=self._on_connected,
            )
            self._connections[url] = connection
            self._tasks[url] = asyncio.create_task(connection.run(), name=f"mailbox {url}")

    def _read(self) -> tuple[list[mailboxes.Mailbox], str | None]:
        """Worker thread: the list joined, and our nkey if there is any mailbox."""
        joined = mailboxes.load(self._home)
        return joined, mailboxes.nkey_seed(self._home) if joined else None

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._connections.clear()

    # --- pairwise keys ----------------------------------------------------------------

    def keys(self, card: ProfileCard) -> frames.PairKeys:
        """The pair's tags and keys (a fresh derivation: used once per post)."""
        return frames.PairKeys.derive(self._me, card)

    def _directions(self) -> dict[str, tuple[str, frames.Direction]]:
        """Each paired peer's box, whose messages our stream files apart; cards parsed once."""
        known = {}
        for peer_hex, wire in self._cards().items():
            cached = self._keys.get(peer_hex)
            if cached is None or cached[0] != wire:
                try:
                    card = ProfileCard.from_wire(wire)
                    cached = (wire, self.keys(card), frames.box_name(card.identity))
                except RemoteProtocolError:
                    continue
                self._keys[peer_hex] = cached
            known[cached[2]] = (peer_hex, cached[1].incoming)
        return known

    # --- joining and leaving -------------------------------------------------------------

    async def join(self, url: str, credentials: bytes | None) -> mailboxes.Mailbox:
        """``pli mailbox add``: remember the server and connect to it now."""
        mailbox = await asyncio.to_thread(mailboxes.add, self._home, url, credentials)
        task = self._tasks.pop(mailbox.url, None)
        if task is not None:  # new credentials: connect again with them
            task.cancel()
            del self._connections[mailbox.url]
        await self.reload()
        return mailbox

    async def leave(self, url: str) -> mailboxes.Mailbox:
        """``pli mailbox remove``: disconnect and forget the server."""
        mailbox = await asyncio.to_thread(mailboxes.remove, self._home, url)
        await self.reload()
        return mailbox

    # --- posting ------------------------------------------------------------------------

    def joined(self) -> list[str]:
        """The URLs of the mailboxes joined, in the order they were (what our card lists)."""
        return [mailbox.url for mailbox in self._joined]

    def connected(self) -> list[Connection]:
        return [c for c in self._connections.values() if c.connected]

    def routes(self, card: ProfileCard) -> list[Connection]:
        """The connected mailboxes the peer's card lists too, in our order (all of them
        when its card does not say): a server where it left its stream, but no longer
        reads, would keep a letter a month for nothing."""
        wanted = set(mailboxes.shared(self._connections, card.mailboxes))
        return [c for c in self.connected() if c.url in wanted]

    async def post(self, card: ProfileCard, doc_id: bytes, envelope: Envelope) -> str | None:
        """Leave one envelope in the peer's mailbox; the mailbox's URL, or None if none took it.

        Raises ``MailboxFull`` when the mailboxes that have the peer are all full, and
        what ``envelope.limit`` raises (its seal failed)."""
        from p2p.services.mailbox.stream import full  # routes exist: nats-py is in

        refused = None
        size = envelope.size
        for connection in self.routes(card):
            try:
                stored = await self._post_one(connection, card, doc_id, envelope)
            except Exception as exc:
                if not full(exc):
                    raise
                refused = refused or MailboxFull(connection.url)
                continue  # another mailbox the peer shares may have room
            if stored:
                log.info("left a document of %d bytes in the mailbox %s", size, connection.url)
                return connection.url
        if refused is not None:
            raise refused
        return None

    async def _post_one(
        self, connection: Connection, card: ProfileCard, doc_id: bytes, envelope: Envelope
    ) -> bool:
        """Chunk by chunk, pipelined: while chunk n goes to the server, chunk n + 1 is
        read (once written, for an envelope being sealed) and sealed on a worker
        thread, and up to ``PUBLISH_WINDOW`` chunks wait for the server's
        acknowledgement at once (not one round trip per chunk)."""
        from p2p.services.mailbox.stream import stored_in_time  # connected: already in

        outgoing = self.keys(card).outgoing
        box = frames.box_name(card.identity)
        size = envelope.size
        count = frames.chunk_count(size)
        handle = await asyncio.to_thread(envelope.open)
        stored: deque[asyncio.Future[Any]] = deque()

        async def sealed(index: int) -> bytearray:
            start = index * frames.CHUNK_SIZE
            length = min(frames.CHUNK_SIZE, size - start)
            if envelope.reached is not None:
                envelope.reached(start)
            if envelope.limit is not None:  # being sealed: wait until the chunk is written
                await envelope.limit(start, length)
            return await asyncio.to_thread(_sealed_chunk, handle, outgoing, doc_id, index, size)

        def seal(index: int) -> asyncio.Future[bytearray]:
            return asyncio.ensure_future(sealed(index))

        sealing = seal(0)
        try:
            for index in range(count):
                wire = await sealing
                if index + 1 < count:
                    sealing = seal(index + 1)
                msg_id = outgoing.message_id(frames.KIND_CHUNK, doc_id, index)
                ack = await connection.publish_async(box, wire, msg_id)
                if ack is None:
                    return False
                stored.append(ack)
                # The first chunk is awaited: a server on which the peer is no member
                # says so before more is sent.
                while stored and (index == 0 or len(stored) >= PUBLISH_WINDOW):
                    if not await stored_in_time(stored.popleft()):
                        return False
            while stored:
                if not await stored_in_time(stored.popleft()):
                    return False
        finally:
            for ack in stored:
                ack.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                # Its thread is done with the handle before it is closed (not cancelled:
                # that would not stop the thread). One waiting for the seal waits for
                # the seal to write one chunk more, or to end.
                await sealing
            if envelope.reached is not None:
                envelope.reached(None)
            await asyncio.to_thread(handle.close)
        return True

    async def send_receipt(
        self,
        connection: Connection,
        card: ProfileCard,
        doc_id: bytes,
        receipt: bytes,
        *,
        index: int = 0,
    ) -> bool:
        """Leave a signed receipt in the sender's mailbox, on the server it wrote to.

        ``index`` 0 is the delivery receipt; later receipts (integrated, read) take
        their own, so that the server's de-duplication keeps each of them.
        """
        outgoing = self.keys(card).outgoing
        wire = frames.encode_frame(
            outgoing,
            frames.ReceiptFrame(doc_id, receipt),
            nonce=nacl.utils.random(frames.NONCE_SIZE),
        )
        msg_id = outgoing.message_id(frames.KIND_RECEIPT, doc_id, index)
        return await connection.publish(frames.box_name(card.identity), wire, msg_id)

    async def send_card(self, peer: ProfileCard, wire: bytes, seq: int) -> str | None:
        """Leave our signed card ``wire`` in the peer's mailbox on the first server we
        share that takes it (one message id per ``seq``); its URL, or None."""
        outgoing = self.keys(peer).outgoing
        nonce = nacl.utils.random(frames.NONCE_SIZE)
        frame = frames.encode_frame(outgoing, frames.CardFrame(wire), nonce=nonce)
        msg_id = outgoing.message_id(frames.KIND_CARD, frames.NO_DOCUMENT, seq)
        for connection in self.routes(peer):
            if await connection.publish(frames.box_name(peer.identity), frame, msg_id):
                return connection.url
        return None

    # --- state ----------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """One entry per mailbox joined: its state in words, messages waiting for us."""
        listing = []
        for mailbox in self._joined:
            connection = self._connections.get(mailbox.url)
            listing.append(
                {
                    "url": mailbox.url,
                    "state": connection.state if connection is not None else "connecting",
                    "message": connection.message if connection is not None else "",
                    "waiting_in": connection.waiting_in if connection is not None else 0,
                    "credentials": mailbox.credentials is not None,
                }
            )
        return listing


def _sealed_chunk(
    handle: BinaryIO, outgoing: frames.Direction, doc_id: bytes, index: int, size: int
) -> bytearray:
    """Worker thread: the next chunk of the envelope, read and sealed for the mailbox."""
    data = handle.read(frames.CHUNK_SIZE)
    chunk = frames.Chunk(doc_id, index, size, data)
    if len(data) != min(frames.CHUNK_SIZE, size - chunk.offset):
        raise OSError("the sent envelope is shorter than recorded")
    return frames.encode_frame(outgoing, chunk, nonce=nacl.utils.random(frames.NONCE_SIZE))
