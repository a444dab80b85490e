"""``/v1/peers``: list the paired peers, trust one from its card, remove one, name one."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from p2p.api.bodies import NewPeer, PeerName
from p2p.api.request import DAEMON, read_body
from p2p.errors import BadInput


async def list_peers(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].peers.listing())


async def add_peer(request: web.Request) -> web.Response:
    """Trust a peer from its signed card (the pairing commands put PAKE in front)."""
    daemon = request.app[DAEMON]
    body = await read_body(request, NewPeer)
    try:
        card = base64.b64decode(body.card, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("“card” must be base64.") from None
    row = await daemon.add_peer(card, [body.address] if body.address else [])
    return web.json_response(daemon.peers.describe(row), status=201)


async def remove_peer(request: web.Request) -> web.Response:
    row = await request.app[DAEMON].remove_peer(request.match_info["peer"])
    return web.json_response({"removed": row.peer_id, "name": row.name})


async def rename_peer(request: web.Request) -> web.Response:
    """The name this practice addresses a peer by, chosen here."""
    peers = request.app[DAEMON].peers
    body = await read_body(request, PeerName)
    row = await peers.rename(request.match_info["peer"], body.name)
    return web.json_response(peers.describe(row))


async def accept_name(request: web.Request) -> web.Response:
    """Take the new name a peer's signed card carries."""
    peers = request.app[DAEMON].peers
    row = await peers.accept_name(request.match_info["peer"])
    return web.json_response(peers.describe(row))
