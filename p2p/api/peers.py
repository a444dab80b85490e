"""``/v1/peers``: list the paired peers, trust one from its card, remove one."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from p2p.api import revocations
from p2p.api.lookup import resolve_peer
from p2p.api.request import DAEMON, read_json, text
from p2p.daemon.core import Daemon
from p2p.errors import BadInput
from p2p.storage.store import PeerRow
from protocol import ProfileCard


def peer_json(daemon: Daemon, row: PeerRow) -> dict[str, Any]:
    card = ProfileCard.from_wire(row.card)
    return {
        "peer_id": row.peer_id,
        "name": row.name,
        "profession": card.profession,
        "rpps": card.rpps,
        "practice": card.practice,
        "fingerprint": row.fingerprint,
        "state": row.state,
        "online": row.peer_id in daemon.online(),
        "addresses": list(row.addresses),
        "last_seen": row.last_seen,
        "paired_at": row.paired_at,
        **revocations.peer_fields(daemon, row.peer_id),
    }


async def list_peers(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    rows = daemon.store.peers(states=("paired", "revoked"))
    return web.json_response([peer_json(daemon, row) for row in rows])


async def add_peer(request: web.Request) -> web.Response:
    """Trust a peer from its signed card (the pairing commands put PAKE in front)."""
    daemon = request.app[DAEMON]
    body = await read_json(request)
    try:
        card = base64.b64decode(text(body, "card"), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("“card” must be base64.") from None
    address = text(body, "address", required=False)
    row = daemon.add_peer(card, [address] if address else [])
    return web.json_response(peer_json(daemon, row), status=201)


async def remove_peer(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    row = resolve_peer(daemon, request.match_info["peer"])
    await daemon.remove_peer(row.peer_id)
    return web.json_response({"removed": row.peer_id, "name": row.name})
