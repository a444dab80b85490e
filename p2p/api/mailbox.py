"""``GET /v1/outbox`` and ``GET /v1/inbox``: the documents sent and received."""

from __future__ import annotations

from aiohttp import web

from p2p.api.request import DAEMON


async def outbox(request: web.Request) -> web.Response:
    return web.json_response(await request.app[DAEMON].archive.outbox_view())


async def inbox(request: web.Request) -> web.Response:
    return web.json_response(await request.app[DAEMON].archive.inbox_view())
