"""``GET /v1/status`` and ``GET /v1/identity``: this daemon and this practice."""

from __future__ import annotations

import asyncio

from aiohttp import web

from p2p.api.request import DAEMON


async def status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    usage = await asyncio.to_thread(daemon.usage)  # the disk's free space: a system call
    return web.json_response({**daemon.status(), **usage})


async def identity(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].identity())
