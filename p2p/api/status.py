"""``GET /v1/status`` and ``GET /v1/identity``: this daemon and this practice."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from p2p.api.request import API_TCP, DAEMON


async def status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    usage = await asyncio.to_thread(daemon.usage)  # the disk's free space: a system call
    return web.json_response(
        {
            **daemon.status(),
            **usage,
            "api_tcp": asdict(request.app[API_TCP]),
            "page": daemon.web_links.describe(),
        }
    )


async def identity(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].identity())
