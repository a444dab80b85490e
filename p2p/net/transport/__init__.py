"""The peer port: the only place bytes move between aiohttp and ``protocol``.

One aiohttp server listens on the peer port (7717 by default) with two
WebSocket endpoints: ``/pli/1/peer`` (Noise XX, then the document protocol) and
``/pli/1/pair`` (pairing, see ``pairing.py``), and one plain POST,
``/pli/1/revoke`` (a 105-byte revocation statement, handed to the daemon). A
dialer opens the same kinds of connection to other daemons.

Defences here: one Noise message per binary frame, ``compress=False``,
``max_msg_size`` bounded to a frame, heartbeats, a handshake deadline, a
per-IP handshake rate limit and a per-IP connection cap. One live session per
pair of peers: when both dial at once, the connection opened by the peer with
the smaller peer id is kept, on both sides, and the other is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import sys
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import aiohttp
from aiohttp import web

from p2p.errors import ConfigError, NotPaired, PeerUnreachable
from p2p.storage.ports import DEFAULT_PORT
from protocol import (
    Handshake,
    LocalIdentity,
    PeerId,
    RemotePeer,
    RemoteProtocolError,
    Role,
    Session,
    limits,
    messages,
)

log = logging.getLogger("pli.transport")

PEER_PATH = "/pli/1/peer"
PAIR_PATH = "/pli/1/pair"
REVOKE_PATH = "/pli/1/revoke"
#: Seconds a revocation push may take (connect, send 105 bytes, read the answer).
REVOKE_TIMEOUT = 5.0
HEARTBEAT = 20.0
_CLOSE_DUPLICATE = 4000
_CLOSE_PROTOCOL = 4002

Authorize = Callable[[RemotePeer], None]
OnChannel = Callable[["Channel"], Awaitable[None]]
OnPairing = Callable[["FramePipe"], Awaitable[None]]
#: (request body, source IP) -> (HTTP status, short code) for ``REVOKE_PATH``.
OnRevocation = Callable[[bytes, str], Awaitable[tuple[int, str]]]


#: glibc ``mallopt`` parameters (malloc.h) and the values ``tune_malloc`` sets.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 4 * 1024 * 1024
_TRIM_THRESHOLD = 32 * 1024 * 1024


def tune_malloc() -> bool:
    """Stop glibc from unmapping and re-faulting the bulk path's ~1 MiB buffers.

    Every BULK frame makes a few short-lived buffers of about 1 MiB (the frame
    read from disk, aiohttp's masked copy, the received message). By default
    glibc serves them with mmap, or trims them off the top of the heap as soon
    as they are freed, so each new buffer page-faults its 256 pages back in; in
    this project's VM that halved the loopback transfer rate (see
    ../shared/bench/anchors-2026-11-28.md, surprise 3, and bench/transfer.py
    ``--malloc-tuned``). A fixed 4 MiB mmap threshold keeps them on the heap and
    a 32 MiB trim threshold lets freed ones be reused. Peak memory is still
    bounded by what the bulk path holds at once (a few MiB), not by the document.
    Process-wide, idempotent; a no-op (False) outside glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_set: int = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    trim_set: int = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    return mmap_set == 1 and trim_set == 1


def _read_whole_frames(transport: asyncio.BaseTransport | None) -> None:
    """Let one socket read take a whole BULK frame (asyncio reads 256 KiB at a time).

    Fewer, larger reads: fewer fragments for aiohttp to join and fewer
    callbacks per frame. ``max_size`` is an attribute of asyncio's selector
    transports (not a documented API): left alone where it does not exist.
    """
    if transport is not None and isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = limits.MAX_FRAME + 16  # type: ignore[attr-defined]


class ChannelClosed(ConnectionError):
    """The connection ended; whoever used it retries on another."""


class FramePipe:
    """Binary frames over one WebSocket, bounded; nothing else (used for pairing)."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, remote: str):
        self._ws = ws
        self.remote_address = remote

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            # aiohttp sends any bytes-like object; its annotation says bytes only.
            await self._ws.send_bytes(cast(bytes, data))
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def receive(self, timeout: float | None = None) -> bytes:
        try:
            message = await self._ws.receive(timeout=timeout)
        except TimeoutError:
            raise
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise ChannelClosed(str(exc)) from exc
        if message.type == aiohttp.WSMsgType.BINARY:
            data: bytes = message.data
            return data
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.CLOSED):  # fmt: skip
            raise ChannelClosed("closed by the peer")
        await self.close(_CLOSE_PROTOCOL, "binary frames only")
        raise ChannelClosed(f"unexpected {message.type.name} frame")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self._ws.close(code=code, message=reason.encode()[:120])

    @property
    def closed(self) -> bool:
        return self._ws.closed


class Channel:
    """An authenticated session with one paired peer over one WebSocket."""

    def __init__(self, pipe: FramePipe, session: Session, local_id: PeerId) -> None:
        self._pipe = pipe
        self._session = session
        self._send_lock = asyncio.Lock()
        self.peer = session.remote
        self.peer_id = session.remote.peer_id
        self.initiator = session.is_initiator
        self.remote_address = pipe.remote_address
        opener = local_id if self.initiator else self.peer_id
        # Both sides compute the same value for the same connection: the tie-break key.
        self.opened_by = opener
        self._rekeyed_at = time.monotonic()
        self._rekey_after: float = limits.REKEY_SECONDS

    def __repr__(self) -> str:
        return f"Channel({self.peer_id.short}, {'out' if self.initiator else 'in'})"

    @property
    def closed(self) -> bool:
        return self._pipe.closed

    def _control_frame(self, message: messages.Message) -> bytes:
        sealed = self._session.encrypt(messages.encode(message))
        return bytes([messages.FrameType.CONTROL]) + sealed

    async def send(self, message: messages.Message) -> None:
        async with self._send_lock:
            if time.monotonic() - self._rekeyed_at > self._rekey_after:
                # Hourly rekey: announced in-band, then both directions switch at
                # that message (the counter-based rekey lives in the Noise session).
                await self._pipe.send(self._control_frame(messages.Rekey()))
                self._session.rekey_outbound()
                self._rekeyed_at = time.monotonic()
            await self._pipe.send(self._control_frame(message))

    async def send_bulk(self, frame: bytearray | bytes) -> None:
        """Send a BULK frame; ``frame[0]`` must already be ``FrameType.BULK``.

        The caller reads file data straight into ``frame[1:]`` so no copy is made.
        """
        async with self._send_lock:
            await self._pipe.send(frame)

    async def receive(self) -> messages.Message | memoryview:
        """The next control message, or a BULK payload. Raises ``ChannelClosed``."""
        try:
            while True:
                kind, payload = messages.split_frame(await self._pipe.receive())
                if kind is messages.FrameType.BULK:
                    return payload
                message = messages.decode(self._session.decrypt(bytes(payload)))
                if not isinstance(message, messages.Rekey):
                    return message
                self._session.rekey_inbound()
        except RemoteProtocolError as exc:
            log.warning("closing the connection with %s: %s", self.peer_id.short, exc.code)
            await self.close(_CLOSE_PROTOCOL, exc.code)
            raise ChannelClosed(exc.code) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._pipe.close(code, reason)


@dataclass
class _Bucket:
    tokens: float = float(limits.HANDSHAKE_BURST_PER_IP)
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(
            float(limits.HANDSHAKE_BURST_PER_IP),
            self.tokens + (now - self.stamp) * limits.HANDSHAKES_PER_SECOND_PER_IP,
        )
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Transport:
    """Server and dialer for the peer port, and the registry of live channels."""

    def __init__(
        self,
        me: LocalIdentity,
        authorize: Authorize,
        on_channel: OnChannel,
        *,
        on_pairing: OnPairing | None = None,
        on_revocation: OnRevocation | None = None,
        handshake_deadline: float = limits.HANDSHAKE_DEADLINE,
    ) -> None:
        self._me = me
        self._authorize = authorize
        self._on_channel = on_channel
        self._on_pairing = on_pairing
        self._on_revocation = on_revocation
        self._deadline = handshake_deadline
        self._channels: dict[PeerId, Channel] = {}
        self._buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        self._per_ip: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._admitted: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        tune_malloc()
        app = web.Application()
        app.router.add_get(PEER_PATH, self._serve_peer)
        app.router.add_get(PAIR_PATH, self._serve_pairing)
        app.router.add_post(REVOKE_PATH, self._serve_revocation)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)  # fmt: skip
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        http = self._runner.server
        assert http is not None

        def guarded() -> asyncio.Protocol:
            # aiohttp sets no deadline on reading a request's headers: a client
            # sending one byte a second would hold a connection forever. Every
            # connection must reach a WebSocket endpoint within the deadline.
            protocol = http()
            loop.call_later(self._deadline, self._drop_if_not_admitted, protocol)
            return protocol

        try:
            self._server = await loop.create_server(guarded, host, port, reuse_address=True)
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(_bind_problem(host, port, exc)) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=self._deadline)
        )
        return self.port

    def _drop_if_not_admitted(self, protocol: asyncio.BaseProtocol) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None and transport not in self._admitted:
            log.warning("closed a connection that sent no request in time")
            transport.close()

    async def stop(self) -> None:
        for channel in list(self._channels.values()):
            await channel.close(1001, "daemon stopping")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.close()
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def channel(self, peer_id: PeerId) -> Channel | None:
        channel = self._channels.get(peer_id)
        return channel if channel is not None and not channel.closed else None

    def online(self) -> set[PeerId]:
        return {peer for peer, channel in self._channels.items() if not channel.closed}

    async def disconnect(self, peer_id: PeerId) -> None:
        channel = self._channels.pop(peer_id, None)
        if channel is not None:
            await channel.close(4003, "unpaired")

    # --- server side ---------------------------------------------------------------

    def _admit(self, request: web.Request) -> str | None:
        ip = request.remote or "?"
        if request.transport is not None:
            self._admitted.add(request.transport)
        if self._per_ip[ip] >= limits.MAX_CONNECTIONS_PER_IP:
            log.warning("refused a connection from %s: too many connections", ip)
            return None
        if not self._buckets[ip].take():
            log.warning("refused a connection from %s: too many handshakes", ip)
            return None
        return ip

    async def _open_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            max_msg_size=limits.MAX_FRAME, compress=False, heartbeat=HEARTBEAT, autoping=True
        )
        await ws.prepare(request)
        return ws

    async def _serve_peer(self, request: web.Request) -> web.StreamResponse:
        ip = self._admit(request)
        if ip is None:
            return web.Response(status=429, text="too many connections")
        self._per_ip[ip] += 1
        try:
            ws = await self._open_ws(request)
            _read_whole_frames(request.transport)
            pipe = FramePipe(ws, ip)
            channel = await self._handshake_responder(pipe)
            if channel is not None:
                await self._run_channel(channel)
            return ws
        finally:
            self._per_ip[ip] -= 1

    async def _handshake_responder(self, pipe: FramePipe) -> Channel | None:
        handshake = Handshake(Role.RESPONDER, self._me, self._authorize, now=int(time.time()))
        try:
            async with asyncio.timeout(self._deadline):
                reply = handshake.receive(await pipe.receive())
                if reply is not None:
                    await pipe.send(reply)
                handshake.receive(await pipe.receive())
        except NotPaired as exc:
            log.warning("refused a connection from %s: %s", pipe.remote_address, exc.message)
        except RemoteProtocolError as exc:
            log.warning("refused a connection from %s: handshake failed (%s)",
                        pipe.remote_address, exc.code)  # fmt: skip
        except TimeoutError:
            log.warning("closed a connection from %s: handshake too slow", pipe.remote_address)
        except ChannelClosed:
            pass
        if not handshake.complete:
            await pipe.close(_CLOSE_PROTOCOL, "handshake failed")
            return None
        return Channel(pipe, handshake.session(), self._me.peer_id)

    async def _serve_pairing(self, request: web.Request) -> web.StreamResponse:
        ip = self._admit(request)
        if ip is None or self._on_pairing is None:
            return web.Response(status=429 if ip is None else 404)
        self._per_ip[ip] += 1
        try:
            ws = await self._open_ws(request)
            await self._on_pairing(FramePipe(ws, ip))
            await ws.close()
            return ws
        finally:
            self._per_ip[ip] -= 1

    async def _serve_revocation(self, request: web.Request) -> web.StreamResponse:
        """A revocation statement, from anyone: no session, it is self-authenticating.

        At most ``Revocation`` size is read (within the deadline); rate limits and
        checks are the callback's. The connection is closed after the answer.
        """
        if request.transport is not None:
            self._admitted.add(request.transport)
        if self._on_revocation is None:
            return web.Response(status=404, headers={"Connection": "close"})
        body = await _read_bounded(request, limits.REVOCATION_SIZE, self._deadline)
        if body is None:
            return web.Response(status=413, text="too-large", headers={"Connection": "close"})
        status, code = await self._on_revocation(body, request.remote or "?")
        return web.Response(status=status, text=code, headers={"Connection": "close"})

    async def push_revocation(self, address: str, statement: bytes) -> int:
        """POST a statement to another daemon's peer port; its HTTP status."""
        if self._client is None:
            raise PeerUnreachable("The daemon is not running.")
        return await post_revocation(self._client, address, statement)

    # --- client side ---------------------------------------------------------------

    async def _dial(self, address: str, path: str) -> FramePipe:
        if self._client is None:
            raise PeerUnreachable("The daemon is not running.")
        host, _, port = address.rpartition(":")
        url = f"http://{host}:{port}{path}"
        try:
            ws = await self._client.ws_connect(
                url, max_msg_size=limits.MAX_FRAME, compress=0, heartbeat=HEARTBEAT,
                autoping=True, autoclose=True,
            )  # fmt: skip
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PeerUnreachable(
                f"The other practice's computer did not answer at {address}; it may be off or "
                "off the network. pli keeps the document and will try again."
            ) from exc
        return FramePipe(ws, address)

    async def dial_pairing(self, address: str) -> FramePipe:
        return await self._dial(address, PAIR_PATH)

    async def connect(self, peer_id: PeerId, address: str) -> Channel:
        """The live channel to ``peer_id``, dialling ``address`` if there is none."""
        existing = self.channel(peer_id)
        if existing is not None:
            return existing
        pipe = await self._dial(address, PEER_PATH)
        handshake = Handshake(
            Role.INITIATOR, self._me, self._authorize, now=int(time.time()), expected=peer_id
        )
        try:
            async with asyncio.timeout(self._deadline):
                await pipe.send(handshake.initiate())
                final = handshake.receive(await pipe.receive())
                if final is not None:
                    await pipe.send(final)
        except (RemoteProtocolError, NotPaired) as exc:
            await pipe.close(_CLOSE_PROTOCOL, "handshake failed")
            raise PeerUnreachable(
                f"{address} did not prove it is the expected peer; nothing was sent."
            ) from exc
        except (TimeoutError, ChannelClosed) as exc:
            await pipe.close(_CLOSE_PROTOCOL, "handshake failed")
            raise PeerUnreachable(
                f"The connection to {address} was cut while checking who answers; "
                "pli will try again."
            ) from exc
        channel = Channel(pipe, handshake.session(), self._me.peer_id)
        kept = self._register(channel)
        if kept is channel:
            task = asyncio.create_task(self._run_channel(channel, registered=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return kept

    # --- one session per pair of peers -----------------------------------------

    def _register(self, channel: Channel) -> Channel:
        """Keep one channel per peer; close the loser of a simultaneous dial."""
        current = self.channel(channel.peer_id)
        if current is None or current is channel:
            self._channels[channel.peer_id] = channel
            return channel
        if channel.opened_by.digest < current.opened_by.digest:
            keep, drop = channel, current
        elif channel.opened_by.digest > current.opened_by.digest:
            keep, drop = current, channel
        else:  # the same side dialled twice: the newer connection wins
            keep, drop = channel, current
        self._channels[channel.peer_id] = keep
        task = asyncio.create_task(drop.close(_CLOSE_DUPLICATE, "duplicate connection"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return keep

    async def _run_channel(self, channel: Channel, *, registered: bool = False) -> None:
        if not registered and self._register(channel) is not channel:
            return
        log.info("connected to %s (%s)", channel.peer_id.short,
                 "outgoing" if channel.initiator else "incoming")  # fmt: skip
        try:
            await self._on_channel(channel)
        finally:
            await channel.close()
            if self._channels.get(channel.peer_id) is channel:
                del self._channels[channel.peer_id]
            log.info("disconnected from %s", channel.peer_id.short)


async def _read_bounded(request: web.Request, limit: int, deadline: float) -> bytes | None:
    """The request body if it is at most ``limit`` bytes and arrives in time, else None."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = b""
    try:
        async with asyncio.timeout(deadline):
            while len(body) <= limit:
                chunk = await request.content.read(limit + 1 - len(body))
                if not chunk:
                    return body
                body += chunk
    except (TimeoutError, aiohttp.ClientError, ConnectionError):
        return None
    return None


async def post_revocation(client: aiohttp.ClientSession, address: str, statement: bytes) -> int:
    """POST a statement to ``host:port``: its HTTP status. Raises ConnectionError, TimeoutError."""
    host, _, port = address.rpartition(":")
    try:
        async with (
            asyncio.timeout(REVOKE_TIMEOUT),
            client.post(f"http://{host}:{port}{REVOKE_PATH}", data=statement,
                        headers={"Content-Type": "application/octet-stream"}) as response,
        ):  # fmt: skip
            await response.read()
            return response.status
    except aiohttp.ClientError as exc:
        raise ConnectionError(str(exc)) from exc


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    """A sentence for a person whose daemon could not open its peer port."""
    if exc.errno == errno.EADDRINUSE:
        return (f"The port {port} is already used by another program (or another pli daemon). "
                "Stop it, or choose another port with --listen HOST:PORT.")  # fmt: skip
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"This computer has no address {host}. Check --listen, or use 0.0.0.0:{port}."
    if exc.errno == errno.EACCES:
        return f"Ports below 1024 need special rights; use a higher one such as {DEFAULT_PORT}."
    return f"The peer port {host}:{port} could not be opened ({exc.strerror or exc})."
