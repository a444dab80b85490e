"""The local API: JSON over HTTP on a unix socket in the home (mode 0600).

This module builds the aiohttp app (the route table below is the whole API, listed
in docs/api.md), its error map at the boundary, and serves it; the handlers live in
one module per resource (``status``, ``peers``, ``pairing``, ``documents``,
``mailbox``, ``tokens``) and share ``request.py``. The CLI and other practice
software use nothing else. Who may call what is ``access.py``'s middleware: on the
socket (0600 in a 0700 folder, each connection's peer uid checked again) the user
running pli, or a token; on the loopback TCP port (``api_listen``, off by default)
a token only, each route needing its scope (``scopes.py``). Errors are JSON
``{"error": {"code": ..., "message": ..., "french": ...}}`` with a sentence a person
can act on (``french``, the same in French, where one is written: the page shows it);
no traceback ever leaves the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
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
    tokens,
    weblogin,
)
from p2p.api.access import access
from p2p.api.request import API_TCP, DAEMON, MAX_JSON, TcpPort
from p2p.daemon.core import Daemon
from p2p.errors import PliError, StorageError
from protocol import RemoteProtocolError

log = logging.getLogger("pli.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: str, message: str, french: str | None = None) -> dict[str, Any]:
    """The JSON of an error: its ``code``, its sentence, and the same in French if written."""
    detail = {"code": code, "message": message}
    if french:
        detail["french"] = french
    return {"error": detail}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PliError as exc:
        body = error_body(exc.code, exc.message, exc.french)
        return web.json_response(body, status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            body = error_body("http-404", "There is no such API route (see docs/api.md).")
        else:
            body = error_body(f"http-{exc.status}", exc.reason)
        return web.json_response(body, status=exc.status)
    except RemoteProtocolError:
        return web.json_response(
            error_body(
                "security",
                "A signature or key check failed: the document or peer cannot be trusted.",
                "Une vérification de signature ou de clé a échoué : ce document ou ce confrère "
                "n'est pas digne de confiance.",
            ),
            status=422,
        )
    except Exception:
        log.exception("internal error while answering %s %s", request.method, request.path)
        return web.json_response(
            error_body(
                "internal",
                "The daemon hit an unexpected problem; see its log.",
                "Le démon pli a rencontré un problème inattendu ; voyez son journal.",
            ),
            status=500,
        )


async def description(_request: web.Request) -> web.Response:
    """``GET /v1/openapi.json``: this API described (OpenAPI 3.1, docs/openapi.json)."""
    from p2p.api import openapi  # msgspec's schema generation: built on first use

    return web.Response(text=openapi.text(), content_type="application/json")


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[access, errors_as_json], client_max_size=MAX_JSON)
    # ``client_max_size`` bounds only what a handler reads whole; an upload streams.
    app[DAEMON] = daemon
    app[API_TCP] = TcpPort()
    app.router.add_get("/v1/openapi.json", description)
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
    app.router.add_delete("/v1/uploads/{upload}", documents.release)
    app.router.add_get("/v1/events", stream.events)
    app.router.add_post("/v1/web/link", stream.web_link)
    app.router.add_post("/v1/web/sign-in", weblogin.sign_in)
    app.router.add_get("/v1/outbox", mailbox.outbox)
    app.router.add_post("/v1/outbox/{doc}/{peer}/retry", mailbox.retry)
    app.router.add_post("/v1/outbox/{doc}/{peer}/cancel", mailbox.cancel)
    app.router.add_get("/v1/inbox", mailbox.inbox)
    app.router.add_get("/v1/inbox/page", mailbox.inbox_page)
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
    tokens.add_routes(app, tokens.Tokens(daemon.store))
    return app


async def start_api(daemon: Daemon) -> web.AppRunner:
    """Serve the API on the home's unix socket, readable by this user only, and on
    the loopback TCP port of ``api_listen`` if one is set."""
    sock = await asyncio.to_thread(_bind_socket, daemon.config.api_socket)
    app = build_app(daemon)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    if daemon.config.api_tcp is not None:
        await _open_tcp(runner, app, *daemon.config.api_tcp)
    return runner


def _bind_socket(path: Path) -> socket.socket:
    """The API's unix socket bound at ``path`` (a stale one replaced), mode 0600 from the
    start; on a worker thread (it touches the home's folder)."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise StorageError(f"Could not open the local API socket {path} ({exc}).") from exc
    finally:
        os.umask(old_umask)
    path.chmod(0o600)
    return sock


async def _open_tcp(runner: web.AppRunner, app: web.Application, host: str, port: int) -> None:
    """The loopback port for software that cannot use a unix socket (tokens only).

    If it cannot be opened the daemon still runs (letters matter more): the reason
    is logged and ``GET /v1/status`` says it (``api_tcp``).
    """
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        app[API_TCP].error = f"port {host}:{port} could not be opened ({exc.strerror})"
        log.warning("the local API's TCP port is not served: %s", app[API_TCP].error)
        return
    bound = next((a for a in runner.addresses if isinstance(a, tuple)), (host, port))
    shown = f"[{host}]" if ":" in host else host
    app[API_TCP].address = f"{shown}:{bound[1]}"
    log.info("the local API also listens on %s (tokens only)", app[API_TCP].address)
