"""The local API: JSON over HTTP on a unix socket in the home (mode 0600).

This module builds the aiohttp app (the route table below is the whole API, listed
in docs/api.md), its two middlewares and the one error map at the boundary; the
handlers live in one module per resource (``status``, ``peers``, ``pairing``,
``documents``, ``mailbox``) and share ``request.py``. The CLI and other practice
software use nothing else. Only the user who runs the daemon can connect: the
socket is 0600 in a 0700 folder, and each connection's peer uid is checked again.
Errors are JSON ``{"error": {"code": ..., "message": ...}}`` with a sentence a
person can act on; no traceback ever leaves the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from p2p.api import (
    documents,
    mailbox,
    mailboxes,
    pairing,
    peers,
    profile,
    revocations,
    status,
    stream,
)
from p2p.api.request import DAEMON, MAX_JSON
from p2p.daemon.core import Daemon
from p2p.errors import PliError, StorageError
from protocol import RemoteProtocolError

log = logging.getLogger("pli.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PliError as exc:
        return web.json_response(error_body(exc.code, exc.message), status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = (
            "There is no such API route (see docs/api.md)." if exc.status == 404 else exc.reason
        )
        return web.json_response(error_body(f"http-{exc.status}", message), status=exc.status)
    except RemoteProtocolError:
        return web.json_response(
            error_body(
                "security",
                "A signature or key check failed: the document or peer cannot be trusted.",
            ),
            status=422,
        )
    except Exception:
        log.exception("internal error while answering %s %s", request.method, request.path)
        return web.json_response(
            error_body("internal", "The daemon hit an unexpected problem; see its log."), status=500
        )


@web.middleware
async def same_user_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Defence in depth behind the socket's 0600 mode: check the caller's uid."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None and sock.family == socket.AF_UNIX:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid not in (os.getuid(), 0):
            return web.json_response(
                error_body("forbidden", "Only the user running pli may use it."), status=403
            )
    return await handler(request)


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[same_user_only, errors_as_json], client_max_size=MAX_JSON)
    # ``client_max_size`` bounds only what a handler reads whole; an upload streams.
    app[DAEMON] = daemon
    app.router.add_get("/v1/status", status.status)
    app.router.add_get("/v1/identity", status.identity)
    app.router.add_get("/v1/profile", profile.show)
    app.router.add_post("/v1/profile", profile.change)
    app.router.add_post("/v1/passphrase", profile.passphrase)
    app.router.add_get("/v1/peers", peers.list_peers)
    app.router.add_post("/v1/peers", peers.add_peer)
    app.router.add_delete("/v1/peers/{peer}", peers.remove_peer)
    app.router.add_post("/v1/peers/{peer}/name", peers.rename_peer)
    app.router.add_post("/v1/peers/{peer}/accept-name", peers.accept_name)
    app.router.add_post("/v1/documents", documents.send)
    app.router.add_post("/v1/uploads", stream.upload)
    app.router.add_get("/v1/events", stream.events)
    app.router.add_post("/v1/web/link", stream.web_link)
    app.router.add_get("/v1/outbox", mailbox.outbox)
    app.router.add_post("/v1/outbox/{doc}/{peer}/retry", mailbox.retry)
    app.router.add_post("/v1/outbox/{doc}/{peer}/cancel", mailbox.cancel)
    app.router.add_get("/v1/inbox", mailbox.inbox)
    app.router.add_get("/v1/documents/{doc}", documents.document)
    app.router.add_get("/v1/documents/{doc}/files/{index}", documents.document_file)
    app.router.add_get("/v1/documents/{doc}/receipts", documents.receipt)
    app.router.add_get("/v1/documents/{doc}/evidence", documents.evidence)
    app.router.add_post("/v1/documents/{doc}/exported", documents.exported)
    app.router.add_post("/v1/documents/{doc}/integrated", documents.integrated)
    app.router.add_post("/v1/documents/{doc}/read", documents.read)
    app.router.add_post("/v1/pair/invite", pairing.pair_invite)
    app.router.add_delete("/v1/pair/invite/{nameplate}", pairing.pair_cancel)
    app.router.add_post("/v1/pair/accept", pairing.pair_accept)
    app.router.add_get("/v1/pair/pending", pairing.pair_pending)
    app.router.add_get("/v1/pair/{key}", pairing.pair_status)
    app.router.add_post("/v1/pair/{key}/confirm", pairing.pair_confirm)
    app.router.add_post("/v1/peers/add", pairing.peers_add_fingerprint)
    app.router.add_post("/v1/peers/accept", pairing.peers_accept)
    revocations.add_routes(app, DAEMON)
    mailboxes.add_routes(app)
    return app


async def start_api(daemon: Daemon) -> web.AppRunner:
    """Serve the API on the home's unix socket, readable by this user only."""
    path = daemon.config.api_socket
    if path.exists():
        path.unlink()
    runner = web.AppRunner(build_app(daemon), access_log=None, handle_signals=False)
    await runner.setup()
    old_umask = os.umask(0o177)
    try:
        site = web.UnixSite(runner, str(path))
        await site.start()
    except OSError as exc:
        raise StorageError(f"Could not open the local API socket {path} ({exc}).") from exc
    finally:
        os.umask(old_umask)
    path.chmod(0o600)
    return runner
