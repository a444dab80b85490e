"""The peer port: the only place bytes move between aiohttp and ``protocol``.

One aiohttp server listens on the peer port (7717 by default) with two
WebSocket endpoints: ``/pli/1/peer`` (Noise XX, then the document protocol) and
``/pli/1/pair`` (pairing, see ``pairing.py``), and one plain POST,
``/pli/1/revoke`` (a 105-byte revocation statement, handed to the daemon). A
dialer opens the same kinds of connection to other daemons.

Defences here: one Noise message per binary frame, ``compress=False``,
``max_msg_size`` bounded to a frame, heartbeats, a handshake deadline; and in
``guard.py``, connections counted from accept to close (in total, under the
file descriptor limit; per IP until the handshake proves a paired peer, then
per peer), one request per connection with a deadline,
per-IP handshake rates, throttled logs. One live session per pair of peers:
when both dial at once, the connection opened by the peer with the smaller
peer id is kept, on both sides, and the other is closed. ``channel.py`` holds
the frames and the Noise session of one connection, ``revoke.py`` the bounded
POST of a revocation statement, both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import time
from collections.abc import Awaitable, Callable

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
    limits,
)

from .channel import CLOSE_PROTOCOL, Channel, ChannelClosed, FramePipe
from .guard import Guard, authenticated, close_after_answer, throttle_logs, upgraded
from .revoke import REVOKE_PATH, OnRevocation, post_revocation, read_bounded

__all__ = [
    "PAIR_PATH",
    "PEER_PATH",
    "REVOKE_PATH",
    "Channel",
    "ChannelClosed",
    "FramePipe",
    "Transport",
    "post_revocation",
]

log = logging.getLogger("pli.transport")

PEER_PATH = "/pli/1/peer"
PAIR_PATH = "/pli/1/pair"
HEARTBEAT = 20.0
_CLOSE_DUPLICATE = 4000
#: WebSocket's "try again later": the peer already has its sessions (guard.py).
_CLOSE_TRY_LATER = 1013
_CLOSE_PROTOCOL = CLOSE_PROTOCOL

Authorize = Callable[[RemotePeer], None]
OnChannel = Callable[["Channel"], Awaitable[None]]
OnPairing = Callable[["FramePipe"], Awaitable[None]]


def _read_whole_frames(transport: asyncio.BaseTransport | None) -> None:
    """Let one socket read take a whole BULK frame (asyncio reads 256 KiB at a time).

    Fewer, larger reads: fewer fragments for aiohttp to join and fewer
    callbacks per frame. ``max_size`` is an attribute of asyncio's selector
    transports (not a documented API): left alone where it does not exist.
    """
    if transport is not None and isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = limits.MAX_FRAME + 16  # type: ignore[attr-defined]


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
        self.guard = Guard(limits.connection_cap(open_files_limit()), handshake_deadline)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        throttle_logs()
        self.guard.cap = limits.connection_cap(open_files_limit())
        app = web.Application(middlewares=[close_after_answer])
        app.router.add_get(PEER_PATH, self._serve_peer)
        app.router.add_get(PAIR_PATH, self._serve_pairing)
        app.router.add_post(REVOKE_PATH, self._serve_revocation)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        http = self._runner.server
        assert http is not None
        # aiohttp's own handler, counted from accept to close (guard.py); no
        # keep-alive wait longer than the request deadline.
        settings: dict[str, object] = {"keepalive_timeout": self._deadline, "access_log": None}
        try:
            self._server = await loop.create_server(
                lambda: self.guard.handler(http, **settings),
                host,
                port,
                reuse_address=True,
                backlog=limits.ACCEPT_BACKLOG,
            )
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(_bind_problem(host, port, exc)) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "accepting at most %d peer connections (%d per address until authenticated, "
            "%d per paired peer)",
            self.guard.cap,
            limits.MAX_CONNECTIONS_PER_IP,
            limits.MAX_SESSIONS_PER_PEER,
        )
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=self._deadline)
        )
        return self.port

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
        """The source IP if it may start a handshake now (connections are counted at accept)."""
        ip = request.remote or "?"
        if not self.guard.buckets.take(ip):
            log.warning("refused a connection from %s: too many handshakes", ip)
            return None
        return ip

    async def _open_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            max_msg_size=limits.MAX_FRAME, compress=False, heartbeat=HEARTBEAT, autoping=True
        )
        await ws.prepare(request)
        upgraded(request)
        return ws

    async def _serve_peer(self, request: web.Request) -> web.StreamResponse:
        ip = self._admit(request)
        if ip is None:
            return web.Response(status=429, text="too many connections")
        ws = await self._open_ws(request)
        _read_whole_frames(request.transport)
        pipe = FramePipe(ws, ip)
        channel = await self._handshake_responder(pipe)
        if channel is None:
            return ws
        # From here the connection counts against the paired peer, not its address.
        if authenticated(request, channel.peer_id.digest):
            await self._run_channel(channel)
        else:
            await channel.close(_CLOSE_TRY_LATER, "too many sessions")
        return ws

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
            log.warning(
                "refused a connection from %s: handshake failed (%s)", pipe.remote_address, exc.code
            )
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
        ws = await self._open_ws(request)
        await self._on_pairing(FramePipe(ws, ip))
        await ws.close()
        return ws

    async def _serve_revocation(self, request: web.Request) -> web.StreamResponse:
        """A revocation statement, from anyone: no session, it is self-authenticating.

        At most ``Revocation`` size is read (within the deadline); rate limits and
        checks are the callback's. The connection is closed after the answer, and the
        guard's request deadline (from accept) bounds the whole exchange.
        """
        if self._on_revocation is None:
            return web.Response(status=404, headers={"Connection": "close"})
        body = await read_bounded(request, limits.REVOCATION_SIZE, self._deadline)
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
                url,
                max_msg_size=limits.MAX_FRAME,
                compress=0,
                heartbeat=HEARTBEAT,
                autoping=True,
                autoclose=True,
            )
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
        log.info(
            "connected to %s (%s)",
            channel.peer_id.short,
            "outgoing" if channel.initiator else "incoming",
        )
        try:
            await self._on_channel(channel)
        finally:
            await channel.close()
            if self._channels.get(channel.peer_id) is channel:
                del self._channels[channel.peer_id]
            log.info("disconnected from %s", channel.peer_id.short)


def open_files_limit() -> int:
    """The soft limit on this process's file descriptors (the daemon raises it at start)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else limits.MAX_CONNECTIONS * 4


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    """A sentence for a person whose daemon could not open its peer port."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"The port {port} is already used by another program (or another pli daemon). "
            "Stop it, or choose another port with --listen HOST:PORT."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"This computer has no address {host}. Check --listen, or use 0.0.0.0:{port}."
    if exc.errno == errno.EACCES:
        return f"Ports below 1024 need special rights; use a higher one such as {DEFAULT_PORT}."
    return f"The peer port {host}:{port} could not be opened ({exc.strerror or exc})."
