"""Local API routes for revocation (docs/api.md, "Revocation").

- ``POST /v1/revocations``: ``{"statement": "PLI1-REVOKE:..."}`` (a printed
  certificate) or ``{"self": true}`` (this practice revokes its own identity:
  the daemon signs a fresh statement), with ``"addresses": ["host:port", ...]``.
  The daemon stores and applies it, then pushes it to its paired peers, to
  every pli daemon its discovery sees on the LAN and to each address given;
  the answer lists what each push gave.
- ``GET /v1/revocations``: the statements this daemon holds.

The revoked state in the peers, status, inbox and document answers is added by
``services/peers.py`` and ``services/archive.py``: ``revoked_since`` is when this daemon learned of
the revocation (its own clock), ``revocation_made_at`` when the statement was
signed (for a printed certificate: the day of ``pli init``), and
``signed_after_revocation`` whether the document's signed creation time is
later than ``revoked_since`` (that time is the signer's claim: a thief holding
the key can backdate, which is why every document of a revoked key is marked).

Thin handlers: the work is in ``p2p/services/revocation.py``.
"""

from __future__ import annotations

import time

from aiohttp import web

from p2p.api.bodies import RevocationRequest
from p2p.api.request import read_body
from p2p.daemon.core import Daemon
from p2p.errors import BadInput, SecurityFailure
from p2p.storage.config import parse_address
from protocol import RemoteProtocolError, Revocation

MAX_ADDRESSES = 64


def _addresses(body: RevocationRequest) -> list[str]:
    given = body.addresses or []
    if len(given) > MAX_ADDRESSES:
        raise BadInput(f"Give at most {MAX_ADDRESSES} addresses.")
    checked = []
    for text in given:
        host, port = parse_address(text)
        checked.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return checked


def _statement(daemon: Daemon, body: RevocationRequest) -> Revocation:
    if body.self_ is True:
        return Revocation.issue(daemon.me.identity, now=int(time.time()))
    text = body.statement
    if not isinstance(text, str):
        raise BadInput("Give the revocation “statement” (PLI1-REVOKE:...) or “self”: true.")
    try:
        return Revocation.from_text(text)
    except RemoteProtocolError:
        raise SecurityFailure(
            "This is not a valid revocation certificate: it was damaged, changed, or not "
            "signed by the identity it names. Nothing was sent."
        ) from None


async def revoke(request: web.Request, daemon: Daemon) -> web.Response:
    body = await read_body(request, RevocationRequest)
    addresses = _addresses(body)
    revocation = _statement(daemon, body)
    pushed = await daemon.publish_revocation(revocation, addresses)
    names = {row.peer_id: row.name for row in daemon.store.peers()}
    return web.json_response(
        {
            "revoked": revocation.peer_id.hex,
            "fingerprint": revocation.peer_id.fingerprint,
            "self": revocation.identity == daemon.me.public,
            "made_at": revocation.revoked_at,
            "pushed": [
                {
                    "address": p.address,
                    "peer_id": p.peer_id,
                    "result": p.result,
                    "name": names.get(p.peer_id or ""),
                }
                for p in pushed
            ],
        }
    )


async def listing(request: web.Request, daemon: Daemon) -> web.Response:
    return web.json_response(
        [
            {
                "peer_id": row.peer_id,
                "fingerprint": Revocation.from_wire(row.statement).peer_id.fingerprint,
                "made_at": row.revoked_at,
                "revoked_since": row.learned_at,
                "source": row.source,
            }
            for row in daemon.store.revocations()
        ]
    )


def add_routes(app: web.Application, key: web.AppKey[Daemon]) -> None:
    async def post(request: web.Request) -> web.Response:
        return await revoke(request, request.app[key])

    async def get(request: web.Request) -> web.Response:
        return await listing(request, request.app[key])

    app.router.add_post("/v1/revocations", post)
    app.router.add_get("/v1/revocations", get)
