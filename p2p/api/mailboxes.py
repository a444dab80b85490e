"""``/v1/mailboxes``: the NATS mailboxes this practice joined (issue 12, docs/mailbox.md).

``GET`` lists them with their state and what waits each way, ``POST`` joins one
(it takes effect at once), ``DELETE ?url=`` leaves one — either way our signed card,
which lists them, goes to every paired peer (``card``: its ``seq``, ``sent_to``);
``GET /v1/mailboxes/key`` is this practice's member key for whoever runs the server.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from p2p.api.bodies import NewMailbox
from p2p.api.request import DAEMON, read_body
from p2p.daemon.mailbox import mailbox_rows
from p2p.errors import BadInput
from p2p.storage import mailboxes as stored


async def listing(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response(mailbox_rows(daemon.store, daemon.mailboxes))


async def member_key(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    nkey = await asyncio.to_thread(stored.nkey_public, daemon.config.home)
    box = daemon.mailboxes.box
    return web.json_response({"nkey": nkey, "box": box, "member": f"{nkey}:{box}"})


async def join(request: web.Request) -> web.Response:
    body = await read_body(request, NewMailbox)
    creds = body.credentials.encode() if body.credentials is not None else None
    daemon = request.app[DAEMON]
    mailbox = await daemon.mailboxes.join(body.url, creds)
    card = await daemon.card_mailboxes()
    answer = {"url": mailbox.url, "credentials": creds is not None, "card": card}
    return web.json_response(answer, status=201)


async def leave(request: web.Request) -> web.Response:
    url = request.query.get("url")
    if not url:
        raise BadInput("Say which mailbox to leave: ?url=nats://HOST:PORT")
    daemon = request.app[DAEMON]
    mailbox = await daemon.mailboxes.leave(url)
    return web.json_response({"removed": mailbox.url, "card": await daemon.card_mailboxes()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/mailboxes", listing)
    app.router.add_get("/v1/mailboxes/key", member_key)
    app.router.add_post("/v1/mailboxes", join)
    app.router.add_delete("/v1/mailboxes", leave)
