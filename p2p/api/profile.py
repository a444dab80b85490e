"""``/v1/profile`` and ``/v1/passphrase``: this practice's profile and its key passphrase.

A profile change writes a new signed card (a higher ``seq``) and takes it to every
paired peer (``daemon/profile.py``); a passphrase change writes the key file again.
The passphrases are never logged nor returned.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from p2p.api.bodies import PassphraseChange, ProfileChange
from p2p.api.request import DAEMON, read_body
from p2p.daemon import profile
from p2p.storage import keystore


async def show(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    protected = await asyncio.to_thread(keystore.protected, daemon.config.home)
    card = daemon.card()
    return web.json_response({**daemon.identity(), "seq": card.seq, "protected": protected})


async def change(request: web.Request) -> web.Response:
    body = await read_body(request, ProfileChange)
    changes = {name: getattr(body, name) for name in ("name", "profession", "rpps", "practice")}
    return web.json_response(await profile.update_profile(request.app[DAEMON], changes))


async def passphrase(request: web.Request) -> web.Response:
    body = await read_body(request, PassphraseChange)
    now = await profile.change_passphrase(request.app[DAEMON], body.current, body.new)
    return web.json_response({"protected": now})
