"""Who may call the local API: the one middleware in front of every route.

- Over the unix socket, the caller's uid is checked (``SO_PEERCRED``, behind the
  socket's 0600 mode): only the user running pli, or root. With no
  ``Authorization`` header that caller is the owner (the CLI, the page) and may
  call every route.
- Over the loopback TCP port (``api_listen``, off by default), every request
  carries a token; the ``Host`` header must name this computer (127.0.0.1,
  localhost or ::1), so a web page that rebinds its own name to 127.0.0.1 is
  refused before any token is looked at.
- A request with ``Authorization: Bearer pli_...`` (on either) is the token's:
  it must be valid (``tokens.py``) and hold the route's scope (``scopes.py``);
  owner-only routes are refused to every token. A route without a scope is
  owner-only (fail closed).

Refusals: 401 (``token-missing``, ``token-invalid``, ``token-expired``,
``token-revoked``, with ``WWW-Authenticate: Bearer``), 403 (``scope-missing``,
``forbidden``, ``host-refused``), each a JSON error with a sentence.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from p2p.api.scopes import ANY, OWNER, scope_of
from p2p.api.tokens import TOKENS
from p2p.errors import PliError, ScopeMissing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def refusal(code: str, message: str, status: int) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="pli"'} if status == 401 else None
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def _unix_uid(request: web.Request) -> int | None:
    """The caller's uid over the unix socket; None over TCP."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:7719`` → ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def route_scope(request: web.Request) -> str | None:
    """The scope of the matched route; None when no route matched (a 404 or 405 follows)."""
    resource = request.match_info.route.resource
    if request.match_info.http_exception is not None or resource is None:
        return None
    return scope_of(request.method, resource.canonical)


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    uid = _unix_uid(request)
    if uid is not None and uid not in (os.getuid(), 0):
        return refusal("forbidden", "Only the user running pli may use it.", 403)
    if uid is None and host_name(request.host).lower() not in LOOPBACK_HOSTS:
        return refusal(
            "host-refused",
            "The local API answers only requests addressed to this computer "
            "(http://127.0.0.1:PORT/).",
            403,
        )
    header = request.headers.get("Authorization")
    if header is None:
        if uid is not None:
            return await handler(request)  # the owner, over the private socket
        return refusal(
            "token-missing",
            "This port needs a token: send “Authorization: Bearer pli_...” with a token "
            "made by `pli api-token create`.",
            401,
        )
    try:
        _check_token(request, header)
    except PliError as exc:
        return refusal(exc.code, exc.message, exc.http_status)
    return await handler(request)


def _check_token(request: web.Request, header: str) -> None:
    row = request.app[TOKENS].authenticate(header, time.time())
    scope = route_scope(request)
    if scope is None or scope == ANY:
        return
    if scope == OWNER:
        raise ScopeMissing(
            "Only the person running pli may do this (with the `pli` command), not a token."
        )
    if scope not in row.scopes:
        raise ScopeMissing(
            f"The token “{row.name}” does not have the scope “{scope}” this request needs. "
            f"Make a token with it: pli api-token create --name ... --scope {scope}"
        )
