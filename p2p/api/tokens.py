"""Scoped tokens for other practice software, and the ``/v1/api-tokens`` routes.

A token reads ``pli_<id>_<secret>``: ``id`` (16 hex digits) names its row,
``secret`` is 32 random bytes (base64url). It is shown once, when it is made;
the store keeps the SHA-256 of the secret (``storage/tokens.py``), and a
presented secret is compared with ``hmac.compare_digest`` (constant time).
Software presents it as ``Authorization: Bearer pli_...`` on the unix socket
or the loopback TCP port (``access.py`` checks it on every request, and the
scope of the route: ``scopes.py``).

The routes (owner only: the CLI's ``pli api-token``, never a token):
``GET /v1/api-tokens`` lists them, ``POST /v1/api-tokens`` makes one
(``{name, scopes, expires_at?}`` → 201 with the token, the only time it is
given), ``DELETE /v1/api-tokens/{NAME or ID}`` revokes one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from aiohttp import web

from p2p.api.bodies import NewToken
from p2p.api.request import read_body
from p2p.api.scopes import parse_scopes
from p2p.errors import BadInput, TokenRefused, TokenUnknown
from p2p.storage.store import Store, TokenRow

PREFIX = "pli_"
_TOKEN = re.compile(r"pli_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")
_ID = re.compile(r"[0-9a-f]{16}")
MAX_NAME = 64
MAX_LIFETIME = 10 * 366 * 24 * 3600  # a token lasts at most ten years
#: Compared against when the id is unknown, so both answers take the same work.
_NOTHING = hashlib.sha256(b"").digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def state_of(row: TokenRow, now: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def describe(row: TokenRow, now: float) -> dict[str, Any]:
    """A token as the API shows it: never its secret, nor the secret's hash."""
    return {
        "id": row.token_id,
        "name": row.name,
        "scopes": list(row.scopes),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "state": state_of(row, now),
    }


class Tokens:
    """The tokens of one daemon: made, listed, revoked, and checked on each request."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self, name: str, scopes: tuple[str, ...], expires_at: int | None
    ) -> tuple[TokenRow, str]:
        now = int(time.time())
        name = _check_name(name)
        if expires_at is not None and not now < expires_at <= now + MAX_LIFETIME:
            raise BadInput("A token expires in the future, and within ten years.")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        row = TokenRow(token_id, name, scopes, _digest(secret), now, expires_at, None)
        if not await asyncio.to_thread(self.store.add_token, row):
            raise BadInput(
                f"A token named “{name}” exists already. Revoke it first "
                f"(pli api-token revoke “{name}”) or choose another name."
            )
        return row, f"{PREFIX}{token_id}_{secret}"

    def find(self, name_or_id: str) -> TokenRow:
        wanted = name_or_id.strip()
        rows = self.store.tokens()
        for row in rows:
            if row.token_id == wanted.lower():
                return row
        for row in rows:
            if row.name == wanted:
                return row
        raise TokenUnknown(
            f"No API token is called or numbered “{wanted}”. `pli api-token list` shows them."
        )

    async def revoke(self, name_or_id: str) -> tuple[TokenRow, bool]:
        """The token, revoked now; False if it was revoked already."""
        row = self.find(name_or_id)
        now = int(time.time())
        done = await asyncio.to_thread(self.store.revoke_token, row.token_id, now)
        found = self.store.token(row.token_id)
        return (found or row), done

    def authenticate(self, header: str, now: float) -> TokenRow:
        """The token row an ``Authorization`` header presents, or ``TokenRefused``."""
        scheme, _, value = header.strip().partition(" ")
        match = _TOKEN.fullmatch(value.strip()) if scheme.lower() == "bearer" else None
        if match is None:
            raise TokenRefused(
                "The Authorization header must be “Bearer pli_...”, with a token made by "
                "`pli api-token create`.",
                code="token-invalid",
            )
        row = self.store.token(match["id"])
        expected = row.secret_hash if row is not None else _NOTHING
        if not hmac.compare_digest(_digest(match["secret"]), expected) or row is None:
            raise TokenRefused(
                "This token is not one of this practice's: ask whoever runs pli for a new "
                "one (`pli api-token create`).",
                code="token-invalid",
            )
        state = state_of(row, now)
        if state == "revoked":
            raise TokenRefused(
                f"The token “{row.name}” was revoked: ask whoever runs pli for a new one.",
                code="token-revoked",
            )
        if state == "expired":
            raise TokenRefused(
                f"The token “{row.name}” has expired: ask whoever runs pli for a new one.",
                code="token-expired",
            )
        return row


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise BadInput(
            f"Name the token after the software it is for, in at most {MAX_NAME} "
            "printable characters (e.g. “LGC”)."
        )
    if _ID.fullmatch(name.lower()):
        raise BadInput("A token's name cannot look like a token id (16 hex digits).")
    return name


TOKENS: web.AppKey[Tokens] = web.AppKey("tokens", Tokens)


async def listing(request: web.Request) -> web.Response:
    now = time.time()
    return web.json_response([describe(row, now) for row in request.app[TOKENS].store.tokens()])


async def create(request: web.Request) -> web.Response:
    body = await read_body(request, NewToken)
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    row, token = await request.app[TOKENS].create(body.name, scopes, body.expires_at)
    return web.json_response({**describe(row, time.time()), "token": token}, status=201)


async def revoke(request: web.Request) -> web.Response:
    row, done = await request.app[TOKENS].revoke(request.match_info["token"])
    return web.json_response({**describe(row, time.time()), "already_revoked": not done})


def add_routes(app: web.Application, tokens: Tokens) -> None:
    app[TOKENS] = tokens
    app.router.add_get("/v1/api-tokens", listing)
    app.router.add_post("/v1/api-tokens", create)
    app.router.add_delete("/v1/api-tokens/{token}", revoke)
