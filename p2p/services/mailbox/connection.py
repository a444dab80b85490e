"""One NATS mailbox server: stay connected, keep our stream, read it, publish to others'.

With ``stream.py`` (our stream's settings, the server's answers), the only place
pli meets ``nats-py``. ``Connection.run`` loops for as long as the mailbox is
joined: connect with the practice's nkey (or the credentials
file), make sure our own stream exists with pli's retention and per-sender
limits, recreate our pull consumer (so whatever a killed daemon had read but not
acknowledged is delivered again at once), then fetch and hand each message to
the handler, which acknowledges it when it is safe to. A lost connection, a
server down or refused credentials is a state shown by ``pli mailbox status``,
retried with back-off; it never stops the daemon or its direct deliveries.

No payload is ever logged: messages are sealed frames, and only their count is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api

from p2p.errors import BadInput
from p2p.services.mailbox import RETENTION
from p2p.services.mailbox.server_config import subject
from p2p.services.mailbox.stream import (
    NO_PLACEMENT,
    PER_SENDER_MESSAGES,
    PUBLISH_TIMEOUT,
    STREAM,
    create_or_update,
    stored_in_time,
    stream_config,
)
from p2p.storage import mailboxes
from protocol import RemoteProtocolError
from protocol import mailbox as frames

log = logging.getLogger("pli.mailbox")

CONSUMER = "pli"
#: A message read but not acknowledged comes again after this long.
ACK_WAIT = 300.0
#: Messages fetched at once while busy: 8 MiB of chunks, opened together on a worker
#: thread while the next batch arrives (the server's ``max_pending`` holds well more).
FETCH_BATCH = 8
#: A batch smaller than this is opened on the event loop (a letter: no thread hop).
OPEN_ON_LOOP = 64 * 1024
#: Seconds between the two attempts at one node when connecting.
CONNECT_RETRY = 0.5
#: Seconds between two tries at giving our stream the copies a cluster keeps.
REPLICAS_CHECK = 10.0
#: Seconds a closing session may take to say goodbye (flush what it has, close the
#: socket) before its socket is dropped: a frozen server reads nothing.
CLOSE_TIMEOUT = 5.0


@dataclass
class Ack:
    """The right to acknowledge one message, without keeping its bytes."""

    reply: str

    async def send(self, connection: Connection, *, drop: bool = False) -> None:
        """``+ACK`` (done) or ``+TERM`` (refused: never deliver again)."""
        await connection.raw_publish(self.reply, b"+TERM" if drop else b"+ACK")


#: Ends a core subscription (``Connection.subscribe``).
Unsubscribe = Callable[[], Awaitable[None]]
#: (subject, data) -> None: one core NATS message.
OnMessage = Callable[[str, bytes], Awaitable[None]]
#: Core messages one subscription may hold unread (more: the server drops them).
SUBSCRIPTION_PENDING = 64
SUBSCRIPTION_BYTES = 4 * 1024 * 1024

#: (the connection, the peer, the frame, its ack) -> None.
Handler = Callable[["Connection", str, frames.Frame, Ack], Awaitable[None]]
#: A sender's box -> (its peer id hex, the direction that opens its frames).
Directions = Callable[[], dict[str, tuple[str, frames.Direction]]]
#: A fetched message, its peer and its frame or why it failed (``_open_all``).
_Opened = tuple[Msg, str | None, "frames.Frame | RemoteProtocolError | None"]


class Refused(Exception):
    """The server refused our key or credentials (``refused``), or our credentials file
    cannot be read (``unusable``): retrying soon will not help."""

    def __init__(self, message: str, *, state: str = "refused") -> None:
        super().__init__(message)
        self.state = state


class Connection:
    def __init__(
        self,
        url: str,
        credentials: dict[str, Any],
        my_box: str,
        handler: Handler,
        directions: Directions,
        *,
        retention: float = RETENTION,
        on_connected: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self._retention = retention
        self._credentials = credentials
        self._my_box = my_box
        self._handler = handler
        self._directions = directions
        self._nc: NATS | None = None
        # The server's answers to our publications, by reply subject (one inbox a session).
        self._acks: dict[str, asyncio.Future[Msg]] = {}
        self._ack_inbox = ""
        self._published = 0
        self._on_connected = on_connected
        self._replicas_short = False  # our stream has one copy where three are wanted
        self._session_worked = False  # the last session got as far as "connected"
        self._stalled = False  # the server stopped reading what we write
        self.state = "connecting"
        self.message = ""
        self.waiting_in = 0

    @property
    def _what(self) -> str:
        """What the server checks: a ``.creds`` file, or the practice's own nkey."""
        return "credentials" if "user_credentials" in self._credentials else "key"

    @property
    def connected(self) -> bool:
        nc = self._nc
        return (
            nc is not None and nc.is_connected and self.state == "connected" and not self._stalled
        )

    async def run(self) -> None:
        """Connect, read, and come back after any failure, until cancelled."""
        delay = 1.0
        while True:
            try:
                await self._session()
            except Refused as exc:
                self.state, self.message = exc.state, str(exc)
                delay = 60.0
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                self.state = "unreachable"
                self.message = "the mailbox server cannot be reached"
                log.info("mailbox %s: %s (%s)", self.url, self.message, type(exc).__name__)
            except Exception as exc:  # any other failure: connect again, never stop the daemon
                self.state, self.message = "unreachable", "the connection to the mailbox failed"
                log.warning("mailbox %s: %s (%s)", self.url, self.message, type(exc).__name__)
            finally:
                await self._close()
            if self._session_worked:  # it was connected, then cut: come back quickly
                delay, self._session_worked = 1.0, False
            await asyncio.sleep(delay * random.uniform(0.75, 1.0))  # noqa: S311 - jitter
            delay = min(30.0, delay * 2)

    async def _session(self) -> None:
        async def quiet(*_args: Any) -> None:
            """nats-py reports errors here; ours are raised to ``run`` instead."""

        async def on_error(error: Exception) -> None:
            # A write waited ``flush_timeout`` for the socket: the server is frozen or
            # the path to it is gone. nats-py would stay "connected"; the session ends.
            if isinstance(error, nats.errors.FlushTimeoutError):
                self._stalled = True

        creds = self._credentials.get("user_credentials")
        if creds is not None:
            await asyncio.to_thread(_check_credentials, Path(creds))
        try:
            self._nc = await nats.connect(
                self.url.split(","),
                allow_reconnect=False,
                dont_randomize=True,
                connect_timeout=5,
                # nats-py tries the servers of the list in a loop until one answers, and
                # 0 here means no limit: a server down at start kept us "connecting"
                # forever. 1: each node twice at most, then ``run`` says unreachable.
                max_reconnect_attempts=1,
                reconnect_time_wait=CONNECT_RETRY,
                # Without it, a publication waits for the socket for ever when the
                # server stops reading (a frozen machine, a node killed mid-post).
                flush_timeout=PUBLISH_TIMEOUT,
                error_cb=on_error,
                disconnected_cb=quiet,
                closed_cb=quiet,
                name="pli",
                **self._credentials,
            )
        except nats.errors.Error as exc:
            said = str(exc).lower()  # 'Authorization Violation', 'User Authentication Expired'
            if "authorization" in said or "authentication" in said:
                raise Refused(f"the mailbox server refused this practice's {self._what}") from None
            raise
        js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
        await self._listen_for_acks(self._nc)
        await self._ensure_stream(js)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(STREAM, CONSUMER)
        config = api.ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT,
            max_ack_pending=PER_SENDER_MESSAGES * 2,
            max_deliver=-1,
        )
        sub = await js.pull_subscribe(
            subject(self._my_box), durable=CONSUMER, stream=STREAM, config=config
        )
        self.state, self.message = "connected", ""
        self._session_worked = True
        log.info("connected to the mailbox %s", self.url)
        if self._on_connected is not None:
            self._on_connected(self.url)
        size = 1  # idle: wait for one message (nats-py waits for a whole batch once one came)
        checked = asyncio.get_running_loop().time()
        while self._nc.is_connected and not self._stalled:
            try:
                batch = await sub.fetch(size, timeout=2.0 if size == 1 else 0.1)
            except nats.errors.TimeoutError:
                self.waiting_in, size = 0, 1
                now = asyncio.get_running_loop().time()
                if self._replicas_short and now - checked > REPLICAS_CHECK:
                    checked = now
                    await self._ensure_stream(js)  # the cluster may be whole again
                continue
            size = FETCH_BATCH  # busy: take what is there, up to a batch
            directions = self._directions()  # once per batch: it reads every paired card
            if sum(len(msg.data) for msg in batch) <= OPEN_ON_LOOP:
                opened = _open_all(directions, batch)
            else:  # 1 MiB chunks: libsodium releases the GIL, the loop reads on meanwhile
                opened = await asyncio.to_thread(_open_all, directions, batch)
            for msg, peer_hex, frame in opened:
                await self._dispatch(msg, peer_hex, frame)
        raise TimeoutError if self._stalled else nats.errors.ConnectionClosedError

    async def _ensure_stream(self, js: Any) -> None:
        """Our stream, with our settings; on a cluster, three copies of it.

        Whether the server is in a cluster is all its greeting says for sure (the
        other nodes' addresses come in later): three copies are asked for, and one is
        made only when the cluster cannot place three now (a node down as we join).
        Such a stream is given its copies at a later session or check
        (``_replicas_short``); one with its copies is never made smaller.
        """
        assert self._nc is not None
        clustered = bool(self._nc._server_info.get("cluster"))
        config = stream_config(self._my_box, 3 if clustered else 1, max_age=self._retention)
        try:
            await create_or_update(js, config)
        except nats.js.errors.BadRequestError as exc:
            if not clustered or exc.err_code != NO_PLACEMENT:
                raise
            if not self._replicas_short:
                log.info("mailbox %s: one copy of our mailbox until the cluster is whole", self.url)
            self._replicas_short = True
            with contextlib.suppress(nats.js.errors.BadRequestError):  # it exists: kept so
                await js.add_stream(stream_config(self._my_box, 1, max_age=self._retention))
            return
        if self._replicas_short:
            log.info("mailbox %s: our mailbox has its copies on the cluster again", self.url)
        self._replicas_short = False

    async def _dispatch(
        self, msg: Msg, peer_hex: str | None, frame: frames.Frame | RemoteProtocolError | None
    ) -> None:
        """Hand one opened message to the handler, or terminate it (no peer, bad check)."""
        ack = Ack(msg.reply)
        if peer_hex is None or frame is None:  # no paired peer writes there: not ours to keep
            log.info("mailbox %s: dropped a message for no paired peer", self.url)
            await ack.send(self, drop=True)
            return
        if isinstance(frame, RemoteProtocolError):
            log.warning(
                "mailbox %s: dropped a message that failed its check (%s)", self.url, frame.code
            )
            await ack.send(self, drop=True)
            return
        if msg.metadata.num_pending is not None:
            self.waiting_in = msg.metadata.num_pending
        await self._handler(self, peer_hex, frame, ack)

    async def publish(self, box: str, data: bytes | bytearray, msg_id: str) -> bool:
        """Store ``data`` in ``box``'s mailbox; False when that member is not on this server.

        Raises ``nats.js.errors.APIError`` when the server refuses it (our share of
        that mailbox, or the mailbox itself, is full: ``full``)."""
        stored = await self.publish_async(box, data, msg_id)
        return stored is not None and await stored_in_time(stored)

    async def publish_async(
        self, box: str, data: bytes | bytearray, msg_id: str
    ) -> asyncio.Future[Any] | None:
        """Send ``data`` to ``box``'s mailbox without waiting for the server to store it:
        the future is its acknowledgement (``stored_in_time``). None when not connected."""
        if self._nc is None or not self._ack_inbox or not self.connected:
            return None
        self._published += 1
        reply = f"{self._ack_inbox}.{self._published}"
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._acks[reply] = future
        future.add_done_callback(lambda _done: self._acks.pop(reply, None))
        payload = cast(bytes, data)  # nats-py only takes its len and concatenates it: a
        # bytearray does, and converting a sealed 1 MiB chunk would copy it once more
        await self._nc.publish(
            subject(box, self._my_box), payload, reply=reply, headers={"Nats-Msg-Id": msg_id}
        )
        return future

    async def _listen_for_acks(self, nc: NATS) -> None:
        """One subscription a session for the server's answers to ``publish_async``
        (nats-py's own loses the server's refusals: its reply handler raises them)."""
        self._ack_inbox = nc.new_inbox()

        async def answered(msg: Msg) -> None:
            future = self._acks.get(msg.subject)
            if future is not None and not future.done():
                future.set_result(msg)

        await nc.subscribe(self._ack_inbox + ".>", cb=answered)

    async def raw_publish(self, reply: str, data: bytes) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(reply, data)

    @property
    def session(self) -> object | None:
        """The server session now (a new object after each reconnection), if connected."""
        return self._nc if self.connected else None

    async def subscribe(self, subject: str, on_message: OnMessage) -> Unsubscribe | None:
        """A core (not JetStream) subscription, for the pairing rendezvous; None when
        not connected. It lasts as long as this server session."""
        nc = self._nc
        if nc is None or not self.connected:
            return None

        async def deliver(msg: Msg) -> None:
            await on_message(msg.subject, msg.data)

        sub = await nc.subscribe(
            subject,
            cb=deliver,
            pending_msgs_limit=SUBSCRIPTION_PENDING,
            pending_bytes_limit=SUBSCRIPTION_BYTES,
        )
        await nc.flush(timeout=int(PUBLISH_TIMEOUT))  # the server has it before we publish

        async def end() -> None:
            with contextlib.suppress(Exception):  # the session may be gone already
                await sub.unsubscribe()

        return end

    async def _close(self) -> None:
        nc, self._nc, self._ack_inbox, self._stalled = self._nc, None, "", False
        for future in list(self._acks.values()):  # never answered: the post stops
            future.set_exception(nats.errors.ConnectionClosedError())
            future.exception()  # whoever awaits it gets it; none is not an error to log
        if nc is None:
            return
        try:
            await asyncio.wait_for(nc.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            _drop_socket(nc)  # it waits to write to a server that reads nothing
        except Exception:  # noqa: S110 - closing a broken connection: nothing to keep
            pass


def _drop_socket(nc: NATS) -> None:
    """Abort a session's socket without writing what waits (nats-py's ``close`` drains
    it first, and a frozen server never reads it)."""
    writer = getattr(nc._transport, "_io_writer", None)  # nats-py's TCP transport
    if writer is not None:
        writer.transport.abort()


def _check_credentials(path: Path) -> None:
    """Worker thread: a stored ``.creds`` file nats-py can read, else ``Refused``."""
    try:
        with path.open("rb") as handle:
            mailboxes.check_credentials(handle.read(mailboxes.MAX_CREDENTIALS + 1))
    except (OSError, BadInput):
        raise Refused(
            "the credentials file of this mailbox cannot be used: add the mailbox again "
            "with a new one",
            state="unusable",
        ) from None


def _open_all(
    directions: dict[str, tuple[str, frames.Direction]], batch: list[Msg]
) -> list[_Opened]:
    """Each message with its peer and its frame, or why it failed its check (both None:
    no paired peer writes there). Pure: runs on a worker thread for a batch of chunks."""
    opened: list[_Opened] = []
    for msg in batch:
        sender = msg.subject.rsplit(".", 1)[-1]  # the server vouches for it (server_config)
        known = directions.get(sender)
        if known is None:
            opened.append((msg, None, None))
            continue
        peer_hex, direction = known
        try:
            opened.append((msg, peer_hex, frames.decode_frame(direction, msg.data)))
        except RemoteProtocolError as exc:
            opened.append((msg, peer_hex, exc))
    return opened


def credential_options(seed: str, creds: Path | None) -> dict[str, Any]:
    """How nats-py logs in: the credentials file if given, else our nkey."""
    if creds is not None:
        return {"user_credentials": str(creds)}
    return {"nkeys_seed_str": seed}
