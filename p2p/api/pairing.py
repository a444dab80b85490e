"""``/v1/pair/*``, ``/v1/peers/add`` and ``/v1/peers/accept``: pairing by code or fingerprint.

The daemon's pairing service does the cryptography; these handlers start an attempt,
answer long polls on it (``GET /v1/pair/{key}?timeout=..&until=..``) and pass on the
person's answer.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from p2p.api.request import DAEMON, flag, read_json, text
from p2p.daemon.core import Daemon
from p2p.errors import BadInput, PeerUnreachable
from p2p.services.pairing.fingerprint import select_request
from p2p.services.pairing.service import ACTION_STATES, State
from p2p.storage.config import parse_address
from protocol import BadCode, parse_code

MAX_WAIT = 60.0


async def pair_invite(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await read_json(request)
    lifetime = body.get("expires", daemon.config.invitation_lifetime)
    if not isinstance(lifetime, int | float) or not 10 <= lifetime <= 24 * 3600:
        raise BadInput("An invitation lasts between 10 seconds and 24 hours.")
    invitation = daemon.pairing.invite(lifetime=float(lifetime), auto_confirm=flag(body, "yes"))
    return web.json_response({
        "id": invitation.id, "code": str(invitation.code), "nameplate": invitation.nameplate,
        "expires_at": invitation.expires_at,
        "address": f"{daemon.card().addresses[0]}" if daemon.card().addresses else None,
    }, status=201)  # fmt: skip


async def pair_cancel(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    daemon.pairing.cancel(request.match_info["nameplate"])
    return web.json_response({"cancelled": request.match_info["nameplate"]})


async def _pairing_address(daemon: Daemon, nameplate: str, given: str) -> str:
    if given:
        host, port = parse_address(given)
        return f"{host}:{port}"
    found = await daemon.find_invitation(nameplate, timeout=5.0)
    if found is None:
        raise PeerUnreachable(
            "No invitation with this code was found on the local network. Check that the "
            "other practice's invitation is still open, or give its address with --address."
        )
    return found


async def pair_accept(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await read_json(request)
    try:
        code = parse_code(text(body, "code"))
    except BadCode as exc:
        raise BadInput(str(exc)) from None
    address = await _pairing_address(daemon, code.nameplate, text(body, "address", required=False))
    pipe = await daemon.transport.dial_pairing(address)
    attempt = daemon.pairing.start_accept(code, pipe, auto_confirm=flag(body, "yes"))
    return web.json_response({"id": attempt, "address": address}, status=202)


async def pair_status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    try:
        timeout = min(float(request.query.get("timeout", "0")), MAX_WAIT)
    except ValueError:
        raise BadInput("“timeout” is a number of seconds.") from None
    until = request.query.get("until")
    states = {State(item) for item in until.split(",")} if until else ACTION_STATES
    key = request.match_info["key"]
    status = await daemon.pairing.wait(key, timeout, until=states) if timeout else (
        daemon.pairing.status(key))  # fmt: skip
    return web.json_response(status.as_dict())


async def pair_confirm(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await read_json(request)
    status = daemon.pairing.confirm(request.match_info["key"], flag(body, "yes"))
    return web.json_response(status.as_dict())


async def pair_pending(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response([dataclasses.asdict(item) for item in daemon.pairing.pending()])


async def peers_add_fingerprint(request: web.Request) -> web.Response:
    """Pair by fingerprint: dial, check the responder's identity, ask it to accept."""
    daemon = request.app[DAEMON]
    body = await read_json(request)
    fingerprint = text(body, "fingerprint")
    host, port = parse_address(text(body, "address"))
    pipe = await daemon.transport.dial_pairing(f"{host}:{port}")
    attempt = daemon.pairing.start_request(fingerprint, pipe)
    return web.json_response({"id": attempt}, status=202)


async def peers_accept(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await read_json(request)
    requests = [
        (item.id, item.fingerprint) for item in daemon.pairing.pending()
        if item.kind == "fingerprint" and item.role == "responder"
    ]  # fmt: skip
    chosen = select_request(requests, text(body, "peer"))
    status = daemon.pairing.confirm(chosen, body.get("yes", True) is not False)
    return web.json_response(status.as_dict())
