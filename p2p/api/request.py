"""What every handler of the local API shares: the daemon's app key and the body reader.

A handler reads its body with ``read_body(request, SomeBody)`` (the structs are in
``bodies.py``); a bad body is a ``BadInput`` whose sentence says what to change
(400, docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from p2p.api.bodies import B, decode
from p2p.daemon.core import Daemon
from p2p.errors import BadInput

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon", Daemon)


@dataclass
class TcpPort:
    """The local API's loopback TCP port (``api_listen``): where it listens, or why not."""

    address: str | None = None
    error: str | None = None


API_TCP: web.AppKey[TcpPort] = web.AppKey("api_tcp", TcpPort)
MAX_JSON = 1024 * 1024


async def read_body(request: web.Request, kind: type[B]) -> B:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise BadInput("The request is too large.")
    return decode(await request.read(), kind)
