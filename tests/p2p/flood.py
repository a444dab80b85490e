"""Connection floods against a daemon's peer port, bounded in count and time.

Used by ``test_flood.py`` and ``bench/flood.py``. Each flood connection comes
from a loopback source address of its own choosing (127.0.0.2 and up: Linux
routes all of 127/8 to ``lo``), so a flood can come from one address or many.
"""

from __future__ import annotations

import selectors
import socket
import time
from typing import cast

#: A request the peer port refuses: 400 (not an upgrade) or 429 (rate).
REFUSED = b"GET /pli/1/peer HTTP/1.1\r\nHost: pli\r\n\r\n"
#: A WebSocket upgrade that then never sends the Noise handshake.
STALLED = (
    b"GET /pli/1/peer HTTP/1.1\r\nHost: pli\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def sources(count: int) -> list[str]:
    """``count`` loopback addresses other than 127.0.0.1."""
    return [f"127.0.{1 + i // 250}.{2 + i % 250}" for i in range(count)]


def flood(
    port: int, addresses: list[str], per_address: int, request: bytes, budget: float = 20.0
) -> list[socket.socket]:
    """Open ``per_address`` connections from each address, send ``request``, keep them.

    Stops early after ``budget`` seconds or 20 connections in a row that could
    not even be opened (a daemon out of descriptors stops accepting).
    """
    kept: list[socket.socket] = []
    failures = 0
    deadline = time.monotonic() + budget
    for address in addresses:
        for _ in range(per_address):
            if failures >= 20 or time.monotonic() > deadline:
                return kept
            sock = socket.socket()
            sock.settimeout(1.0)
            try:
                sock.bind((address, 0))
                sock.connect(("127.0.0.1", port))
                sock.sendall(request)
            except OSError:
                sock.close()
                failures += 1
                continue
            failures = 0
            kept.append(sock)
    return kept


def still_open(sockets: list[socket.socket], wait: float = 2.0) -> int:
    """How many of ``sockets`` the daemon still holds after ``wait`` s (answers are read away)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_ = len(sockets)
    deadline = time.monotonic() + wait
    while open_ and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(left):
            sock = cast(socket.socket, key.fileobj)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""  # reset: closed
            if not data:
                selector.unregister(sock)
                open_ -= 1
    selector.close()
    return open_


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
