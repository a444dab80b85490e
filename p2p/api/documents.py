"""``/v1/documents``: send one, and one document's details, files, receipts and evidence;
what became of a received one (integrated, read: its sender is told by a signed receipt)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from p2p.api.bodies import File, Integrated, NewDocument
from p2p.api.request import DAEMON, read_body
from p2p.daemon.core import Daemon
from p2p.errors import BadInput
from p2p.services.outbox import Attachment
from p2p.storage.uploads import Uploads
from protocol import KINDS

CHUNK = 256 * 1024  # bytes per write when streaming a decrypted file


async def send(request: web.Request) -> web.Response:
    """Queue one envelope: JSON {to: [PEER], files: [{path}], kind, metadata}.

    The uploads it names are deleted whatever the outcome: sealed into the document,
    or refused with it (a client that is refused need not release them itself)."""
    body = await read_body(request, NewDocument)
    daemon = request.app[DAEMON]
    try:
        doc_id, to = await _queue(daemon, body)
    finally:
        for f in body.files:
            if f.upload is not None:
                await daemon.uploads.discard(f.upload)
    return web.json_response({"id": doc_id, "to": to}, status=202)


async def _queue(daemon: Daemon, body: NewDocument) -> tuple[str, list[str]]:
    targets = [body.to] if isinstance(body.to, str) else body.to
    if not targets:
        raise BadInput(NewDocument.messages["to"])
    kind = body.kind or "letter"
    if kind not in KINDS:
        raise BadInput(f"The kind must be one of {', '.join(KINDS)}.")
    if not body.files:
        raise BadInput(NewDocument.messages["files"])
    files = [attachment(daemon.uploads, f) for f in body.files]
    return await daemon.send(targets, kind, body.metadata or {}, files)


async def release(request: web.Request) -> web.Response:
    """``DELETE /v1/uploads/{upload}``: a file streamed for a document that will not be
    sent (its form refused or abandoned); ``released`` says whether it was still held."""
    upload = request.match_info["upload"]
    request.app[DAEMON].uploads.path(upload)  # BadInput for what cannot be an id
    held = await request.app[DAEMON].uploads.discard(upload)
    return web.json_response({"upload": upload, "released": held})


def attachment(uploads: Uploads, f: File) -> Attachment:
    """One file of ``POST /v1/documents``: a path the daemon reads, or an upload's file."""
    media_type = f.type or "application/octet-stream"
    if (f.path is None) == (f.upload is None):
        raise BadInput(NewDocument.messages["files[]"])
    if f.upload is not None:
        return Attachment(f.name or "document", uploads.path(f.upload), media_type)
    path = Path(f.path or "").expanduser()
    return Attachment(f.name or path.name, path, media_type)


async def document(request: web.Request) -> web.Response:
    archive = request.app[DAEMON].archive
    return web.json_response(await archive.document_view(request.match_info["doc"]))


async def document_file(request: web.Request) -> web.StreamResponse:
    """Decrypt one file of a document to a private temp file, verified, then stream it."""
    archive = request.app[DAEMON].archive
    tmp = await archive.open_file(request.match_info["doc"], request.match_info["index"])
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        handle = await asyncio.to_thread(open, tmp, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                await response.write(chunk)
        finally:
            await asyncio.to_thread(handle.close)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)


async def receipt(request: web.Request) -> web.Response:
    archive = request.app[DAEMON].archive
    return web.json_response(archive.receipts_view(request.match_info["doc"]))


async def evidence(request: web.Request) -> web.Response:
    """The signed proof of a document, for an export that ``pli verify`` checks offline."""
    archive = request.app[DAEMON].archive
    return web.json_response(await archive.evidence_view(request.match_info["doc"]))


async def exported(request: web.Request) -> web.Response:
    """Exported: ``pli inbox`` hides it, and it counts as read (a read receipt, if sent)."""
    daemon = request.app[DAEMON]
    answer = await daemon.archive.mark_exported(request.match_info["doc"])
    read = await daemon.mark_read(request.match_info["doc"])
    return web.json_response({**answer, "read_receipt": read["receipt"]})


async def integrated(request: web.Request) -> web.Response:
    """The practice software took a received document in; or could not, with ``error_code``."""
    body = await read_body(request, Integrated) if await request.read() else Integrated()
    daemon = request.app[DAEMON]
    return web.json_response(
        await daemon.mark_integrated(request.match_info["doc"], body.error_code)
    )


async def read(request: web.Request) -> web.Response:
    """A person opened a received document (the page calls this when it shows one)."""
    return web.json_response(await request.app[DAEMON].mark_read(request.match_info["doc"]))
