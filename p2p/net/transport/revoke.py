"""``/pli/1/revoke``: a revocation statement POSTed to a peer port, both ways.

No session: a statement is self-authenticating (the daemon's callback checks it).
The server side reads at most one statement's size within the handshake deadline;
the client side gives a push ``REVOKE_TIMEOUT`` seconds in all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

REVOKE_PATH = "/pli/1/revoke"
#: Seconds a revocation push may take (connect, send 105 bytes, read the answer).
REVOKE_TIMEOUT = 5.0

#: (request body, source IP) -> (HTTP status, short code) for ``REVOKE_PATH``.
OnRevocation = Callable[[bytes, str], Awaitable[tuple[int, str]]]


async def read_bounded(request: web.Request, limit: int, deadline: float) -> bytes | None:
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
            client.post(
                f"http://{host}:{port}{REVOKE_PATH}",
                data=statement,
                headers={"Content-Type": "application/octet-stream"},
            ) as response,
        ):
            await response.read()
            return response.status
    except aiohttp.ClientError as exc:
        raise ConnectionError(str(exc)) from exc
