"""``/v1/documents``: send one, and one document's details, files, receipts and evidence."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from p2p.api import revocations
from p2p.api.lookup import resolve_document, resolve_peer
from p2p.api.request import DAEMON, read_json, text
from p2p.errors import BadInput
from p2p.services.outbox import Attachment, Recipient
from protocol import KINDS, FrameTooLarge, MalformedMessage, ProfileCard, Receipt


def _attachments(body: dict[str, Any]) -> list[Attachment]:
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise BadInput("Give at least one file to send.")
    attachments = []
    for item in files:
        if not isinstance(item, dict):
            raise BadInput("Each file is an object with a “path”.")
        path = Path(text(item, "path")).expanduser()
        if not path.is_absolute():
            raise BadInput(f"The daemon needs a full path, not “{path}”.")
        if not path.is_file():
            raise BadInput(f"The file {path} does not exist or is not a file.")
        if not os.access(path, os.R_OK):
            raise BadInput(f"The daemon cannot read {path}: check its permissions.")
        name = text(item, "name", required=False) or path.name
        attachments.append(Attachment(name, path, text(item, "type", required=False)
                                      or "application/octet-stream"))  # fmt: skip
    return attachments


async def send(request: web.Request) -> web.Response:
    """Queue one envelope: JSON {to: [PEER], files: [{path}], kind, metadata}."""
    daemon = request.app[DAEMON]
    body = await read_json(request)
    targets = body.get("to")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise BadInput("Say who to send to: “to” is a peer or a list of peers.")
    kind = text(body, "kind", required=False) or "letter"
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


def meta_json(meta: Any) -> dict[str, Any]:
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
        "id": doc_id, "direction": direction, **meta_json(meta), "receipts": receipts,
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
