"""The local API: JSON over HTTP on a unix socket in the home (mode 0600).

Thin aiohttp handlers over ``Daemon``; the CLI and other practice software use
nothing else. Only the user who runs the daemon can connect: the socket is
0600 in a 0700 folder, and each connection's peer uid is checked again. Errors
are JSON ``{"error": {"code": ..., "message": ...}}`` with a sentence a person
can act on; no traceback ever leaves the daemon. docs/api.md lists the routes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import fcntl
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from p2p.api import revocations
from p2p.daemon.core import Daemon, Started, serve
from p2p.errors import (
    AmbiguousPeer,
    BadInput,
    DocumentUnknown,
    PeerUnknown,
    PeerUnreachable,
    PliError,
    StorageError,
)
from p2p.services.outbox import Attachment, Recipient
from p2p.services.pairing.fingerprint import select_request
from p2p.services.pairing.service import ACTION_STATES, State
from p2p.storage.config import parse_address
from p2p.storage.store import PeerRow
from protocol import (
    KINDS,
    BadCode,
    FrameTooLarge,
    MalformedMessage,
    ProfileCard,
    Receipt,
    RemoteProtocolError,
    fingerprint_prefix,
    parse_code,
)

log = logging.getLogger("pli.api")

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon", Daemon)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON = 1024 * 1024
KNOWN_STATES = ("paired", "removed", "revoked")  # peers whose names documents are shown with


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
            error_body("security", "A signature or key check failed: the document or peer "
                       "cannot be trusted."), status=422)  # fmt: skip
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


async def _json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise BadInput("The request is too large.")
    try:
        body = await request.json()
    except ValueError:
        raise BadInput("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise BadInput("The request body must be a JSON object.")
    return body


def _str(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"“{key}” must be text.")
    return value


# --- lookups ------------------------------------------------------------------------


def resolve_peer(daemon: Daemon, text: str, *, states: tuple[str, ...] = ("paired",)) -> PeerRow:
    """A peer by exact name, peer id, or fingerprint (prefix allowed if unique)."""
    rows = daemon.store.peers(states=states)
    needle = text.strip()
    exact = [r for r in rows if needle.casefold() in (r.name.casefold(), r.peer_id)]
    if len(exact) == 1:
        return exact[0]
    prefix = fingerprint_prefix(needle)
    matches = [
        r for r in rows
        if prefix and (r.fingerprint.replace("-", "").startswith(prefix)
                       or r.peer_id.startswith(needle.lower()))
    ] or exact  # fmt: skip
    if not matches:
        raise PeerUnknown(f"No paired peer is called “{text}”. `pli peers` lists them.")
    if len(matches) > 1:
        names = ", ".join(f"{r.name} ({r.fingerprint[:11]})" for r in matches)
        raise AmbiguousPeer(f"“{text}” matches several peers: {names}. Type more of it.")
    return matches[0]


def resolve_document(daemon: Daemon, text: str) -> tuple[str, str, Path]:
    """(direction, doc id, envelope path) for a document id or unique prefix."""
    needle = text.strip().lower()
    found: dict[str, tuple[str, str, Path]] = {}
    for row in daemon.store.inbox():
        if row.doc_id.startswith(needle):
            path = daemon.layout.received_envelope(row.sender, row.doc_id)
            found[row.doc_id] = ("in", row.sender, path)
    for out in daemon.store.outbox():
        if out.doc_id.startswith(needle) and out.doc_id not in found:
            found[out.doc_id] = ("out", "", daemon.layout.sent_envelope(out.doc_id))
    if len(needle) < 4 or not found:
        raise DocumentUnknown(
            f"No document has the id “{text}”. `pli inbox` and `pli outbox` list them."
        )
    if len(found) > 1:
        raise BadInput(f"“{text}” matches {len(found)} documents; type more of the id.")
    ((doc_id, (direction, _sender, path)),) = found.items()
    return direction, doc_id, path


def _peer_json(daemon: Daemon, row: PeerRow) -> dict[str, Any]:
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


# --- handlers ------------------------------------------------------------------------


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


async def list_peers(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    rows = daemon.store.peers(states=("paired", "revoked"))
    return web.json_response([_peer_json(daemon, row) for row in rows])


async def add_peer(request: web.Request) -> web.Response:
    """Trust a peer from its signed card (the pairing commands put PAKE in front)."""
    daemon = request.app[DAEMON]
    body = await _json(request)
    try:
        card = base64.b64decode(_str(body, "card"), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("“card” must be base64.") from None
    address = _str(body, "address", required=False)
    row = daemon.add_peer(card, [address] if address else [])
    return web.json_response(_peer_json(daemon, row), status=201)


async def remove_peer(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    row = resolve_peer(daemon, request.match_info["peer"])
    await daemon.remove_peer(row.peer_id)
    return web.json_response({"removed": row.peer_id, "name": row.name})


def _attachments(body: dict[str, Any]) -> list[Attachment]:
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise BadInput("Give at least one file to send.")
    attachments = []
    for item in files:
        if not isinstance(item, dict):
            raise BadInput("Each file is an object with a “path”.")
        path = Path(_str(item, "path")).expanduser()
        if not path.is_absolute():
            raise BadInput(f"The daemon needs a full path, not “{path}”.")
        if not path.is_file():
            raise BadInput(f"The file {path} does not exist or is not a file.")
        if not os.access(path, os.R_OK):
            raise BadInput(f"The daemon cannot read {path}: check its permissions.")
        name = _str(item, "name", required=False) or path.name
        attachments.append(Attachment(name, path, _str(item, "type", required=False)
                                      or "application/octet-stream"))  # fmt: skip
    return attachments


async def send(request: web.Request) -> web.Response:
    """Queue one envelope: JSON {to: [PEER], files: [{path}], kind, metadata}."""
    daemon = request.app[DAEMON]
    body = await _json(request)
    targets = body.get("to")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise BadInput("Say who to send to: “to” is a peer or a list of peers.")
    kind = _str(body, "kind", required=False) or "letter"
    if kind not in KINDS:
        raise BadInput(f"The kind must be one of {', '.join(KINDS)}.")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise BadInput("“metadata” maps names to text.")
    rows = [resolve_peer(daemon, target) for target in targets]
    recipients = [Recipient(r.peer_id, ProfileCard.from_wire(r.card)) for r in rows]
    try:
        doc_id = await daemon.outbox.queue(recipients, kind, metadata, _attachments(body))
    except (MalformedMessage, FrameTooLarge) as exc:  # our own document's fields
        raise BadInput(f"This document cannot be sent: {exc}") from None
    return web.json_response({"id": doc_id, "to": [r.peer_id for r in rows]}, status=202)


async def outbox(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    names = {row.peer_id: row.name for row in daemon.store.peers(states=KNOWN_STATES)}
    entries = []
    described: dict[str, Any] = {}
    for row in daemon.store.outbox():
        if row.doc_id not in described:
            described[row.doc_id] = await asyncio.to_thread(
                daemon.describe, daemon.layout.sent_envelope(row.doc_id)
            )
        meta = described[row.doc_id]
        entries.append({
            "kind": meta.kind, "subject": meta.metadata.get("subject", ""),
            "id": row.doc_id, "to": row.peer_id, "to_name": names.get(row.peer_id, "?"),
            "size": row.size, "created_at": row.created_at,
            "state": "sending" if (row.doc_id, row.peer_id) in daemon.outbox.progress
            else row.state,
            "sent_bytes": daemon.outbox.progress.get((row.doc_id, row.peer_id)),
            "attempts": row.attempts, "last_error": row.last_error,
            "receipt_time": row.receipt_time, "receipt_status": row.receipt_status,
        })  # fmt: skip
    return web.json_response(entries)


async def inbox(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    names = {row.peer_id: row.name for row in daemon.store.peers(states=KNOWN_STATES)}
    entries = []
    for row in daemon.store.inbox():
        meta = await asyncio.to_thread(
            daemon.describe, daemon.layout.received_envelope(row.sender, row.doc_id)
        )
        entries.append({
            "id": row.doc_id, "from": row.sender, "from_name": names.get(row.sender, "?"),
            "size": row.size, "received_at": row.received_at, "exported_at": row.exported_at,
            **_meta_json(meta), **revocations.document_fields(daemon, meta),
        })  # fmt: skip
    return web.json_response(entries)


def _meta_json(meta: Any) -> dict[str, Any]:
    return {
        "kind": meta.kind,
        "created_at": meta.created_at,
        "sender": meta.sender.peer_id.hex,
        "recipients": [r.peer_id.hex for r in meta.recipients],
        "files": [{"name": f.name, "size": f.size, "type": f.media_type} for f in meta.files],
        "metadata": dict(meta.metadata),
    }


async def document(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    direction, doc_id, path = resolve_document(daemon, request.match_info["doc"])
    meta = await asyncio.to_thread(daemon.describe, path)
    receipts = []
    if direction == "out":
        for row in daemon.store.outbox():
            if row.doc_id == doc_id:
                receipts.append({"peer": row.peer_id, "state": row.state,
                                 "time": row.receipt_time, "status": row.receipt_status,
                                 "receipt": base64.b64encode(row.receipt).decode()
                                 if row.receipt else None})  # fmt: skip
    return web.json_response({
        "id": doc_id, "direction": direction, **_meta_json(meta), "receipts": receipts,
        **revocations.document_fields(daemon, meta),
    })  # fmt: skip


async def document_file(request: web.Request) -> web.StreamResponse:
    """Decrypt one file of a document to a private temp file, verified, then stream it."""
    daemon = request.app[DAEMON]
    _direction, _doc_id, path = resolve_document(daemon, request.match_info["doc"])
    try:
        index = int(request.match_info["index"])
    except ValueError:
        raise BadInput("The file number must be a number.") from None
    tmp = await asyncio.to_thread(daemon.decrypt_file, path, index)
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        with open(tmp, "rb") as handle:
            while chunk := handle.read(256 * 1024):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        tmp.unlink(missing_ok=True)


async def receipt(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    _direction, doc_id, _path = resolve_document(daemon, request.match_info["doc"])
    rows = [r for r in daemon.store.outbox() if r.doc_id == doc_id and r.receipt]
    rows_in = [r for r in daemon.store.inbox() if r.doc_id == doc_id]
    wires = [r.receipt for r in rows if r.receipt] + [r.receipt for r in rows_in]
    out = []
    for wire in wires:
        parsed = Receipt.from_wire(wire)
        out.append({"status": parsed.status, "time": parsed.time,
                    "recipient": parsed.recipient.peer_id.hex,
                    "receipt": base64.b64encode(wire).decode()})  # fmt: skip
    return web.json_response(out)


# --- pairing -------------------------------------------------------------------------

MAX_WAIT = 60.0


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise BadInput(f"“{key}” must be true or false.")
    return value


async def pair_invite(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await _json(request)
    lifetime = body.get("expires", daemon.config.invitation_lifetime)
    if not isinstance(lifetime, int | float) or not 10 <= lifetime <= 24 * 3600:
        raise BadInput("An invitation lasts between 10 seconds and 24 hours.")
    invitation = daemon.pairing.invite(lifetime=float(lifetime), auto_confirm=_bool(body, "yes"))
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
    body = await _json(request)
    try:
        code = parse_code(_str(body, "code"))
    except BadCode as exc:
        raise BadInput(str(exc)) from None
    address = await _pairing_address(daemon, code.nameplate, _str(body, "address", required=False))
    pipe = await daemon.transport.dial_pairing(address)
    attempt = daemon.pairing.start_accept(code, pipe, auto_confirm=_bool(body, "yes"))
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
    body = await _json(request)
    status = daemon.pairing.confirm(request.match_info["key"], _bool(body, "yes"))
    return web.json_response(status.as_dict())


async def pair_pending(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response([dataclasses.asdict(item) for item in daemon.pairing.pending()])


async def peers_add_fingerprint(request: web.Request) -> web.Response:
    """Pair by fingerprint: dial, check the responder's identity, ask it to accept."""
    daemon = request.app[DAEMON]
    body = await _json(request)
    fingerprint = _str(body, "fingerprint")
    host, port = parse_address(_str(body, "address"))
    pipe = await daemon.transport.dial_pairing(f"{host}:{port}")
    attempt = daemon.pairing.start_request(fingerprint, pipe)
    return web.json_response({"id": attempt}, status=202)


async def peers_accept(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = await _json(request)
    requests = [
        (item.id, item.fingerprint) for item in daemon.pairing.pending()
        if item.kind == "fingerprint" and item.role == "responder"
    ]  # fmt: skip
    chosen = select_request(requests, _str(body, "peer"))
    status = daemon.pairing.confirm(chosen, body.get("yes", True) is not False)
    return web.json_response(status.as_dict())


async def evidence(request: web.Request) -> web.Response:
    """The signed proof of a document, for an export that ``pli verify`` checks offline."""
    daemon = request.app[DAEMON]
    _direction, doc_id, path = resolve_document(daemon, request.match_info["doc"])
    proof = await asyncio.to_thread(daemon.evidence, path)
    meta = proof.verify()
    files = zip(meta.files, proof.file_hashes, strict=True)
    return web.json_response({
        "id": doc_id, "evidence": base64.b64encode(proof.to_wire()).decode(),
        "signer_fingerprint": meta.sender.peer_id.fingerprint,
        "files": [{"name": entry.name, "sha256": digest.hex()} for entry, digest in files],
    })  # fmt: skip


async def exported(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    direction, doc_id, _path = resolve_document(daemon, request.match_info["doc"])
    now = int(time.time())
    if direction == "in":
        for row in daemon.store.inbox():
            if row.doc_id == doc_id:
                daemon.store.mark_exported(doc_id, row.sender, now)
    return web.json_response({"id": doc_id, "exported_at": now})


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[same_user_only, errors_as_json], client_max_size=MAX_JSON)
    app[DAEMON] = daemon
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/identity", identity)
    app.router.add_get("/v1/peers", list_peers)
    app.router.add_post("/v1/peers", add_peer)
    app.router.add_delete("/v1/peers/{peer}", remove_peer)
    app.router.add_post("/v1/documents", send)
    app.router.add_get("/v1/outbox", outbox)
    app.router.add_get("/v1/inbox", inbox)
    app.router.add_get("/v1/documents/{doc}", document)
    app.router.add_get("/v1/documents/{doc}/files/{index}", document_file)
    app.router.add_get("/v1/documents/{doc}/receipts", receipt)
    app.router.add_get("/v1/documents/{doc}/evidence", evidence)
    app.router.add_post("/v1/documents/{doc}/exported", exported)
    app.router.add_post("/v1/pair/invite", pair_invite)
    app.router.add_delete("/v1/pair/invite/{nameplate}", pair_cancel)
    app.router.add_post("/v1/pair/accept", pair_accept)
    app.router.add_get("/v1/pair/pending", pair_pending)
    app.router.add_get("/v1/pair/{key}", pair_status)
    app.router.add_post("/v1/pair/{key}/confirm", pair_confirm)
    app.router.add_post("/v1/peers/add", peers_add_fingerprint)
    app.router.add_post("/v1/peers/accept", peers_accept)
    revocations.add_routes(app, DAEMON)
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


def lock_home(home: Path) -> int:
    """Hold ``daemon.lock`` in the home for the daemon's life: one daemon per home."""
    fd = os.open(home / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(
            f"Another pli daemon is already running for {home}. Use `pli --home {home} status`."
        ) from None
    return fd


async def run_daemon(daemon: Daemon, on_ready: Callable[[Started], None] | None = None) -> None:
    """``pli daemon``: the daemon plus its local API, until SIGTERM/SIGINT."""
    lock_home(daemon.config.home)  # released by the kernel when the process ends
    runner = await start_api(daemon)
    try:
        await serve(daemon, on_ready)
    finally:
        await runner.cleanup()
        daemon.config.api_socket.unlink(missing_ok=True)
