"""``GET /v1/status`` and ``GET /v1/identity``: this daemon and this practice."""

from __future__ import annotations

from aiohttp import web

from p2p.api.request import DAEMON


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].status())


async def identity(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].identity())
