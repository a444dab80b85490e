"""Pairing through a mailbox: two practices that share only a NATS server find each other.

The pairing service speaks over a ``Pipe`` (``services/pairing/wire.py``); this
module makes one out of core NATS messages (nothing is stored by JetStream), so
that ``pli pair invite`` / ``pli pair accept`` and ``pli peers add`` /
``pli peers accept`` run the very same exchanges as on the direct path.

Subjects (docs/protocol.md, "Pairing through a mailbox")::

    pli.pair.<box>.<R>        a knock from member <box>: "I want the pairing behind R"
    pli.pair.<box>.<R>.<S>    the frames of session S, sent by member <box>

``R`` (the rendezvous) is a keyed hash of the code's *nameplate* (code pairing)
or of the responder's fingerprint (fingerprint pairing): never of the code's
secret digits, so the server learns nothing that helps it pass the check code.
``S`` is 16 random bytes the knocking side draws. Each member may publish only
under its own ``<box>`` (the server's permissions, ``server_config.py``): the box
a message arrives under is vouched for by the server, so once a session heard
its peer, frames under any other box are not its peer's and are ignored.

Messages, msgpack maps: ``{"t": "knock", "s": S}``, ``{"t": "here"}`` (the
listener took the session), ``{"t": "frame", "n": seq, "d": bytes}`` (one
pairing frame, numbered from 0: a gap means a message was lost and ends the
exchange), ``{"t": "bye"}`` (the pipe was closed). The knock is repeated each
second until a ``here`` comes: a server cluster propagates new subscriptions
in its own time.

Listening (``listen``/``run``): the fingerprint rendezvous always, the open
invitation's while there is one, on every connected mailbox; each knock starts
a session handed to the pairing service's ``serve``. Knocking (``knock``): on
every connected mailbox at once; the first mailbox whose listener answers
carries the exchange, the others are told ``bye``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from p2p.services.mailbox.server_config import PAIRING_ROOT
from protocol import RemoteProtocolError, codec, limits, normalize_fingerprint

if TYPE_CHECKING:  # types only: nats-py is imported once a mailbox is joined
    from p2p.services.mailbox.connection import OnMessage, Unsubscribe

log = logging.getLogger("pli.mailbox")

KNOCK_EVERY: Final = 1.0  # seconds between knocks while nobody answered
MAX_SESSIONS: Final = 16  # sessions a listener holds at once (a knock beyond: ignored)
QUEUE: Final = 8  # frames waiting to be read in one session (more: the exchange ends)
RECONCILE_EVERY: Final = 0.5  # seconds between checks that every mailbox listens
_TOKEN = re.compile(r"[0-9a-f]{20,64}")

Serve = Callable[["MailboxPipe"], Awaitable[None]]


class Connection(Protocol):
    """What the rendezvous needs of a mailbox connection (``connection.Connection``)."""

    @property
    def url(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def session(self) -> object | None: ...

    async def raw_publish(self, reply: str, data: bytes) -> None: ...

    async def subscribe(self, subject: str, on_message: OnMessage) -> Unsubscribe | None: ...


class PipeClosed(ConnectionError):
    """The session ended: the peer said bye, the mailbox went away, or we closed it."""


def code_rendezvous(nameplate: str) -> str:
    """``R`` of an invitation: a hash of its nameplate only (never of its secret)."""
    return hashlib.blake2b(nameplate.encode(), digest_size=16, person=b"pli/1/rdv/code").hexdigest()


def fingerprint_rendezvous(fingerprint: str) -> str:
    """``R`` where a practice listens for fingerprint pairing requests."""
    canonical = normalize_fingerprint(fingerprint)
    return hashlib.blake2b(canonical.encode(), digest_size=16, person=b"pli/1/rdv/fp").hexdigest()


def knock_subject(box: str, rendezvous: str) -> str:
    return f"{PAIRING_ROOT}.{box}.{rendezvous}"


def session_subject(box: str, rendezvous: str, session: str) -> str:
    return f"{PAIRING_ROOT}.{box}.{rendezvous}.{session}"


def _message(data: bytes) -> dict[str, Any] | None:
    """A rendezvous message with its fields checked, or None for anything else."""
    what = "rendezvous message"
    try:
        fields = codec.as_map(codec.unpack(data, max_size=limits.MAX_FRAME), what)
        kind = codec.field(fields, "t", str, what)
        if kind == "frame":
            codec.uint(fields, "n", what)
            codec.field(fields, "d", bytes, what)
        elif kind == "knock":
            if not _TOKEN.fullmatch(codec.field(fields, "s", str, what)):
                return None
        elif kind not in ("here", "bye"):
            return None
    except RemoteProtocolError:
        return None
    return dict(fields)


def _sender(subject: str) -> str | None:
    """The member box a message was published under (``pli.pair.<box>....``)."""
    tokens = subject.split(".")
    if len(tokens) < 4 or not _TOKEN.fullmatch(tokens[2]):
        return None
    return tokens[2]


class MailboxPipe:
    """One pairing session through one mailbox: a ``Pipe`` for the pairing service.

    ``peer_box`` is the member at the other end; on the knocking side it is
    learnt from the first answer (``here``), and then fixed.
    """

    def __init__(
        self, connection: Connection, my_box: str, rendezvous: str, session: str, peer_box: str
    ) -> None:
        self.connection = connection
        self._out = session_subject(my_box, rendezvous, session)
        self.peer_box = peer_box
        self.answered = asyncio.Event()
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sent = 0
        self._expected = 0
        self._closed = False
        self._end: Unsubscribe | None = None

    @property
    def remote_address(self) -> str:
        """For logs and sentences; not a ``host:port``, so never stored as an address."""
        return f"member {self.peer_box or '?'} of the mailbox {self.connection.url}"

    def attach(self, end: Unsubscribe) -> None:
        self._end = end

    async def publish(self, message: dict[str, Any]) -> None:
        await self.connection.raw_publish(self._out, codec.pack(message))

    async def send(self, data: bytes) -> None:
        if self._closed or not self.connection.connected:
            raise PipeClosed("the pairing session through the mailbox is closed")
        await self.publish({"t": "frame", "n": self._sent, "d": bytes(data)})
        self._sent += 1

    async def receive(self, timeout: float | None = None) -> bytes:
        if self._closed and self._frames.empty():
            raise PipeClosed("the pairing session through the mailbox is closed")
        async with asyncio.timeout(timeout):
            data = await self._frames.get()
        if data is None:
            self._closed = True
            raise PipeClosed("the other practice left the pairing session")
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # best effort: the mailbox may be gone
                await self.publish({"t": "bye"})
        end, self._end = self._end, None
        if end is not None:
            await end()

    async def deliver(self, subject: str, data: bytes) -> None:
        """A message on the session's subject (the subscription's callback)."""
        box = _sender(subject)
        if box is None or (self.peer_box and box != self.peer_box):
            return  # our own echo (knocking side), or not our peer
        message = _message(data)
        if message is None or self._closed:
            return
        if not self.peer_box:
            if message["t"] != "here":
                return
            self.peer_box = box
        kind = message["t"]
        if kind == "here":
            self.answered.set()
        elif kind == "bye":
            self._frames.put_nowait(None)
        elif kind == "frame":
            self._take(message["n"], message["d"])

    def _take(self, number: int, data: bytes) -> None:
        if number != self._expected or self._frames.qsize() >= QUEUE:
            log.info("a pairing session through %s lost a message", self.connection.url)
            self._closed = True
            self._frames.put_nowait(None)
            return
        self._expected += 1
        self._frames.put_nowait(data)


class Rendezvous:
    """This daemon's side of pairing through its mailboxes: listening and knocking."""

    def __init__(
        self,
        connections: Callable[[], Sequence[Connection]],
        my_box: Callable[[], str],
        serve: Serve,
        fingerprint: str,
    ) -> None:
        self._connections = connections
        self._my_box = my_box
        self._serve = serve
        self._always = fingerprint_rendezvous(fingerprint)
        self._code: str | None = None
        self._listening: dict[tuple[str, str], tuple[object, Unsubscribe]] = {}
        self._sessions: dict[str, MailboxPipe] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # --- listening -----------------------------------------------------------------------

    def listen_code(self, nameplate: str | None) -> None:
        """Listen for the invitation ``nameplate`` (the newest open one), or for none."""
        self._code = code_rendezvous(nameplate) if nameplate is not None else None
        self._wake.set()

    async def run(self) -> None:
        """Keep every connected mailbox listening for what we wait for, until cancelled."""
        try:
            while True:
                await self._reconcile()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONCILE_EVERY):
                        await self._wake.wait()
        finally:
            await self.close()

    async def _reconcile(self) -> None:
        wanted = {self._always} | ({self._code} if self._code else set())
        live = {c.url: c for c in self._connections()}
        for key, (session, end) in list(self._listening.items()):
            connection = live.get(key[0])
            if key[1] not in wanted or connection is None or connection.session is not session:
                del self._listening[key]
                await end()
        for connection in live.values():
            for rendezvous in wanted:
                if (connection.url, rendezvous) not in self._listening:
                    await self._listen(connection, rendezvous)

    async def _listen(self, connection: Connection, rendezvous: str) -> None:
        session = connection.session

        async def on_knock(subject: str, data: bytes) -> None:
            await self._knocked(connection, rendezvous, subject, data)

        with contextlib.suppress(Exception):  # the connection dropped: next round
            end = await connection.subscribe(knock_subject("*", rendezvous), on_knock)
            if end is not None:
                self._listening[(connection.url, rendezvous)] = (session, end)

    async def _knocked(
        self, connection: Connection, rendezvous: str, subject: str, data: bytes
    ) -> None:
        box = _sender(subject)
        message = _message(data)
        if box is None or box == self._my_box() or message is None or message["t"] != "knock":
            return
        session: str = message["s"]
        known = self._sessions.get(session)
        if known is not None:
            if known.peer_box == box:  # the knock again: our "here" was not heard yet
                await known.publish({"t": "here"})
            return
        if len(self._sessions) >= MAX_SESSIONS:
            log.info("a pairing knock through %s was ignored: too many at once", connection.url)
            return
        pipe = MailboxPipe(connection, self._my_box(), rendezvous, session, box)
        try:
            end = await connection.subscribe(
                session_subject(box, rendezvous, session), pipe.deliver
            )
        except Exception:  # the connection dropped: the knock comes again
            return
        if end is None:
            return
        pipe.attach(end)
        self._sessions[session] = pipe
        await pipe.publish({"t": "here"})
        task = asyncio.create_task(self._run_session(session, pipe))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_session(self, session: str, pipe: MailboxPipe) -> None:
        try:
            await self._serve(pipe)  # never raises (the pairing service's endpoint)
        finally:
            await pipe.close()
            self._sessions.pop(session, None)

    # --- knocking ------------------------------------------------------------------------

    async def knock(self, rendezvous: str, timeout: float) -> MailboxPipe | None:
        """A pipe to whoever listens on ``rendezvous`` in one of our mailboxes, or None
        when none answered within ``timeout`` seconds."""
        session = secrets.token_hex(16)
        pipes: list[MailboxPipe] = []
        for connection in self._connections():
            pipe = MailboxPipe(connection, self._my_box(), rendezvous, session, "")
            with contextlib.suppress(Exception):  # that connection dropped: the others
                end = await connection.subscribe(
                    session_subject("*", rendezvous, session), pipe.deliver
                )
                if end is not None:
                    pipe.attach(end)
                    pipes.append(pipe)
        chosen = await self._first_answer(pipes, rendezvous, session, timeout)
        for pipe in pipes:
            if pipe is not chosen:
                await pipe.close()
        return chosen

    async def _first_answer(
        self, pipes: list[MailboxPipe], rendezvous: str, session: str, timeout: float
    ) -> MailboxPipe | None:
        if not pipes:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        knock = {"t": "knock", "s": session}
        while loop.time() < deadline:
            for pipe in pipes:
                with contextlib.suppress(Exception):
                    await pipe.connection.raw_publish(
                        knock_subject(self._my_box(), rendezvous), codec.pack(knock)
                    )
            waits = [asyncio.ensure_future(p.answered.wait()) for p in pipes]
            try:
                await asyncio.wait(
                    waits, timeout=min(KNOCK_EVERY, max(0.0, deadline - loop.time()))
                )
            finally:
                for wait in waits:
                    wait.cancel()
            for pipe in pipes:
                if pipe.answered.is_set():
                    return pipe
        return None

    async def close(self) -> None:
        """Stop listening; end the sessions under way."""
        for _, end in self._listening.values():
            await end()
        self._listening.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
