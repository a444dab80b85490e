"""``GET /v1/status`` and ``GET /v1/identity``: this daemon and this practice."""

from __future__ import annotations

import base64
import time

from aiohttp import web

from p2p.api import revocations
from p2p.api.request import DAEMON


async def status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    card = daemon.card()
    return web.json_response({
        "running": True,
        "name": card.name,
        "fingerprint": daemon.me.peer_id.fingerprint,
        "peer_id": daemon.me.peer_id.hex,
        "peer_port": daemon.transport.port,
        "peers": len(daemon.store.peers()),
        "peers_online": len(daemon.online()),
        "uptime": round(time.time() - daemon.started_at, 1),
        **daemon.store.counts(),
        **revocations.peer_fields(daemon, daemon.me.peer_id.hex),
    })  # fmt: skip


async def identity(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    card = daemon.card()
    return web.json_response({
        "name": card.name, "profession": card.profession, "rpps": card.rpps,
        "practice": card.practice, "fingerprint": daemon.me.peer_id.fingerprint,
        "peer_id": daemon.me.peer_id.hex,
        "card": base64.b64encode(daemon.signed_card()).decode(),
        "address": f"127.0.0.1:{daemon.transport.port}",
    })  # fmt: skip
