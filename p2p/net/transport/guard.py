"""What keeps one address, or everybody at once, from exhausting the peer port.

Every TCP connection is counted from the moment it is accepted until it is
closed, at the asyncio protocol level, whatever it asks for: in total
(``connection_cap`` of the process's file descriptor limit), and per source IP
(``MAX_CONNECTIONS_PER_IP``) until its Noise handshake authenticates a paired
peer (``authenticated``); from then on it counts against that peer
(``MAX_SESSIONS_PER_PEER``) instead, so practices sharing one address (a NAT)
are all served while a flood that proves no paired key is still capped per IP.
A connection over a cap is closed before anything is read (or, over the peer's
cap, right after its handshake). Until it becomes a WebSocket (``upgraded``), a connection has
one deadline for its request, headers included, and it carries one request
only: every other answer closes it (``Connection: close``). Handshake rates
are per-IP token buckets, in a bounded LRU. ``Throttle`` rate-limits repeated
log lines and drops the tracebacks of expected client misbehaviour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from p2p.ratelimit import KeyedBuckets
from protocol import limits

log = logging.getLogger("pli.transport")


class Buckets(KeyedBuckets):
    """Per-IP handshake buckets; the least recently used is forgotten past ``size``."""

    def __init__(self, size: int = limits.MAX_TRACKED_IPS) -> None:
        super().__init__(limits.HANDSHAKE_BURST_PER_IP, limits.HANDSHAKES_PER_SECOND_PER_IP, size)


class Guard:
    """Counts the peer port's connections from accept to close: in total, and per
    IP until authenticated, per paired peer after."""

    def __init__(self, cap: int, deadline: float) -> None:
        self.cap = cap
        self.deadline = deadline
        self.open = 0
        self.per_ip: dict[str, int] = {}  # only addresses with unauthenticated connections
        self.per_peer: dict[bytes, int] = {}  # only peers with open sessions
        self.buckets = Buckets()

    def accept(self, ip: str) -> bool:
        if self.open >= self.cap:
            log.warning("refused a connection from %s: the daemon has too many connections", ip)
            return False
        if self.per_ip.get(ip, 0) >= limits.MAX_CONNECTIONS_PER_IP:
            log.warning("refused a connection from %s: too many connections from there", ip)
            return False
        self.open += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return True

    def release(self, ip: str) -> None:
        """An unauthenticated connection from ``ip`` closed."""
        self.open -= 1
        _decrement(self.per_ip, ip)

    def promote(self, ip: str, peer: bytes) -> bool:
        """Move a connection from ``ip``'s count to paired ``peer``'s, if it has room."""
        if self.per_peer.get(peer, 0) >= limits.MAX_SESSIONS_PER_PEER:
            log.warning("refused a session from %s: that peer has too many sessions", ip)
            return False
        _decrement(self.per_ip, ip)
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        return True

    def release_session(self, peer: bytes) -> None:
        """An authenticated session of ``peer`` closed."""
        self.open -= 1
        _decrement(self.per_peer, peer)

    def handler(self, server: web.Server, **settings: Any) -> GuardedHandler:
        """A protocol factory's product: aiohttp's request handler, guarded."""
        return GuardedHandler(server, guard=self, loop=asyncio.get_running_loop(), **settings)


def _decrement(counts: dict[Any, int], key: object) -> None:
    """One less for ``key``; the entry goes when it reaches zero (state stays bounded)."""
    left = counts.pop(key, 1) - 1
    if left > 0:
        counts[key] = left


class GuardedHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, counted, and closed if it is too slow."""

    def __init__(self, server: web.Server, *, guard: Guard, **settings: Any) -> None:
        super().__init__(server, **settings)
        self._guard = guard
        self._ip: str | None = None
        self._peer: bytes | None = None  # set once the handshake proved a paired peer
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._guard.accept(ip):
            _abort(transport)  # nothing read, nothing held: the descriptor is freed now
            return
        self._ip = ip
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.deadline, self._too_slow, transport)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._ip is None:
            return  # refused at accept: aiohttp never saw it
        self.upgraded()
        if self._peer is not None:
            self._guard.release_session(self._peer)
        else:
            self._guard.release(self._ip)
        self._ip = None
        self._peer = None
        super().connection_lost(exc)

    def authenticated(self, peer: bytes) -> bool:
        """The handshake proved paired ``peer``: count it there, if it has room."""
        if self._ip is None or self._peer is not None:
            return self._peer == peer
        if not self._guard.promote(self._ip, peer):
            return False
        self._peer = peer
        return True

    def upgraded(self) -> None:
        """The connection became a WebSocket: from now on its own deadlines apply."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        log.warning("closed a connection from %s that sent no complete request in time", self._ip)
        _abort(transport)


def _abort(transport: asyncio.BaseTransport) -> None:
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


def upgraded(request: web.Request) -> None:
    """Tell the guard that ``request``'s connection is now a WebSocket."""
    handler = request.protocol
    if isinstance(handler, GuardedHandler):
        handler.upgraded()


def authenticated(request: web.Request, peer: bytes) -> bool:
    """Count ``request``'s connection against paired ``peer`` (its peer id) from now on.

    False if that peer already has ``MAX_SESSIONS_PER_PEER`` sessions: the caller
    closes the connection. True for a connection the guard does not count.
    """
    handler = request.protocol
    if isinstance(handler, GuardedHandler):
        return handler.authenticated(peer)
    return True


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def close_after_answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One request per connection: every answer but a WebSocket upgrade closes it."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # an HTTPException is the response aiohttp sends
        exc.force_close()
        raise
    response.force_close()
    return response


# --- logging ---------------------------------------------------------------------------

#: Exceptions that mean a client misbehaved, not that pli is broken: no traceback.
EXPECTED = (HttpProcessingError, ConnectionError, TimeoutError, OSError)


@dataclass
class _Window:
    start: float
    count: int = 0


class Throttle(logging.Filter):
    """At most ``LOG_BURST`` lines of one kind per ``LOG_INTERVAL``, then one summary.

    A kind is the logger and the message template (not its arguments: a flood
    from many addresses is one kind). Tracebacks of ``EXPECTED`` exceptions are
    replaced by the exception's one-line description.
    """

    def __init__(self, burst: int = limits.LOG_BURST, interval: float = limits.LOG_INTERVAL):
        super().__init__()
        self._burst = burst
        self._interval = interval
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg).partition("\n")[0][:120])
        now = time.monotonic()
        window = self._windows.get(key)
        dropped = 0
        if window is None or now - window.start >= self._interval:
            dropped = max(0, window.count - self._burst) if window is not None else 0
            window = self._windows[key] = _Window(now)
            self._windows.move_to_end(key)
            while len(self._windows) > 256:
                self._windows.popitem(last=False)
        window.count += 1
        if window.count > self._burst:
            return False
        self._shorten(record, dropped)
        return True

    def _shorten(self, record: logging.LogRecord, dropped: int) -> None:
        extra = ""
        if record.exc_info and isinstance(record.exc_info[1], EXPECTED):
            exc = record.exc_info[1]
            extra = f" ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            record.exc_info = None
            record.exc_text = None
        if dropped:
            extra += f" [{dropped} more like this in the last {self._interval:.0f} s not logged]"
        if extra:
            record.msg = record.getMessage() + extra
            record.args = ()


_THROTTLED = ("pli.transport", "aiohttp.server", "aiohttp.websocket", "asyncio")


def throttle_logs() -> None:
    """Install one ``Throttle`` on the loggers a peer can make talk (idempotent)."""
    for name in _THROTTLED:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, Throttle) for existing in logger.filters):
            logger.addFilter(Throttle())
