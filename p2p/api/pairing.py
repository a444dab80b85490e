"""``/v1/pair/*``, ``/v1/peers/add`` and ``/v1/peers/accept``: pairing by code or fingerprint.

The daemon's pairing service does the cryptography (``daemon/pairing.py`` wires it to
discovery and the transport); these handlers start an attempt, answer long polls on it
(``GET /v1/pair/{key}?timeout=..&until=..``) and pass on the person's answer.
"""

from __future__ import annotations

import dataclasses
import math

import msgspec
from aiohttp import web

from p2p.api.bodies import (
    Acceptance,
    Confirmation,
    FingerprintRequest,
    Invitation,
    RequestAnswer,
)
from p2p.api.request import DAEMON, read_body
from p2p.daemon import pairing
from p2p.errors import BadInput
from p2p.services.pairing.service import ACTION_STATES, State

MAX_WAIT = 60.0


async def pair_invite(request: web.Request) -> web.Response:
    body = await read_body(request, Invitation)
    lifetime = None if body.expires is msgspec.UNSET else body.expires
    return web.json_response(pairing.invite(request.app[DAEMON], lifetime, body.yes), status=201)


async def pair_cancel(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    daemon.pairing.cancel(request.match_info["nameplate"])
    return web.json_response({"cancelled": request.match_info["nameplate"]})


async def pair_accept(request: web.Request) -> web.Response:
    body = await read_body(request, Acceptance)
    daemon = request.app[DAEMON]
    answer = await pairing.accept_invitation(daemon, body.code, body.address or "", body.yes)
    return web.json_response(answer, status=202)


async def pair_status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    timeout = _timeout(request.query.get("timeout", "0"))
    states = _states(request.query.get("until"))
    key = request.match_info["key"]
    status = (
        await daemon.pairing.wait(key, timeout, until=states)
        if timeout
        else (daemon.pairing.status(key))
    )
    return web.json_response(status.as_dict())


def _timeout(text: str) -> float:
    """``?timeout=``: seconds to wait, 0 to 60 (more waits 60)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:  # also refuses NaN
        raise BadInput("“timeout” is a number of seconds, from 0 to 60.")
    return min(seconds, MAX_WAIT)


def _states(text: str | None) -> frozenset[State]:
    """``?until=``: the states to wait for, comma-separated (default: a person must act)."""
    if not text:
        return ACTION_STATES
    try:
        return frozenset(State(item) for item in text.split(","))
    except ValueError:
        known = ", ".join(state.value for state in State)
        raise BadInput(f"“until” lists states among: {known}.") from None


async def pair_confirm(request: web.Request) -> web.Response:
    body = await read_body(request, Confirmation)
    status = request.app[DAEMON].pairing.confirm(request.match_info["key"], body.yes)
    return web.json_response(status.as_dict())


async def pair_pending(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response([dataclasses.asdict(item) for item in daemon.pairing.pending()])


async def peers_add_fingerprint(request: web.Request) -> web.Response:
    """Pair by fingerprint: dial, check the responder's identity, ask it to accept."""
    body = await read_body(request, FingerprintRequest)
    attempt = await pairing.request_pairing(request.app[DAEMON], body.fingerprint, body.address)
    return web.json_response({"id": attempt}, status=202)


async def peers_accept(request: web.Request) -> web.Response:
    body = await read_body(request, RequestAnswer)
    status = pairing.answer_request(request.app[DAEMON], body.peer, body.yes is not False)
    return web.json_response(status.as_dict())
