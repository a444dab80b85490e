"""How a received file is shown: provably a PDF or an image inline, text escaped, the
rest downloaded. Nothing a sender writes decides how the browser reads a file.

``kind_of`` picks the preview from the declared type and name, then ``stream_file``
checks the first bytes before it answers with an inline type: a "PDF" that does not
start with ``%PDF-`` is a download. SVG is never an image here (it can hold script):
it is text. Inline answers carry ``X-Content-Type-Options: nosniff`` and a CSP that
lets only our own page frame them; images are also sandboxed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from p2p.web.api import API, Api

TEXT_LIMIT = 256 * 1024  # bytes of a text file shown in the page; more: download it
TEXTUAL = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "image/svg+xml",
    "application/xhtml+xml",
)
TEXT_NAMES = (".txt", ".csv", ".json", ".xml", ".html", ".htm", ".svg", ".js", ".md", ".hl7")
MAGIC = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
CHUNK = 256 * 1024


def kind_of(entry: dict[str, Any]) -> str:
    """``pdf``, ``image``, ``text`` or ``none``, from what the sender declared."""
    declared = str(entry.get("type", "")).lower().split(";")[0].strip()
    name = str(entry.get("name", "")).lower()
    size = int(entry.get("size", 0) or 0)
    if declared == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if declared in ("image/png", "image/jpeg", "image/gif"):
        return "image"
    if (declared.startswith(TEXTUAL) or name.endswith(TEXT_NAMES)) and size <= TEXT_LIMIT:
        return "text"
    return "none"


def sniff(head: bytes) -> str | None:
    """The inline type the first bytes prove, or None."""
    for magic, media_type in MAGIC.items():
        if head.startswith(magic):
            return media_type
    return None


async def describe_file(
    api: Api, doc: dict[str, Any], index: int, entry: dict[str, Any]
) -> dict[str, Any]:
    """One file as the document page shows it, with its text when it is text."""
    from p2p.documents.filenames import safe_filename

    base = f"/documents/{quote(str(doc['id']), safe='')}/files/{index}"
    kind = kind_of(entry)
    shown = {
        "name": safe_filename(str(entry.get("name", "")), index + 1),
        "size_text": size_text(int(entry.get("size", 0) or 0)),
        "preview": kind,
        "view": f"{base}/view",
        "download": f"{base}/download",
        "text": "",
    }
    if kind == "text":
        shown["text"] = await read_text(
            api, f"/v1/documents/{quote(str(doc['id']), safe='')}/files/{index}"
        )
    return shown


async def read_text(api: Api, source: str) -> str:
    """At most ``TEXT_LIMIT`` bytes of a file, as text (undecodable bytes replaced)."""
    data = bytearray()
    async with api.stream(source) as upstream:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            data += chunk
            if len(data) >= TEXT_LIMIT:
                break
    return bytes(data[:TEXT_LIMIT]).decode("utf-8", errors="replace")


def size_text(size: int) -> str:
    for unit in ("o", "Kio", "Mio", "Gio"):
        if size < 1024 or unit == "Gio":
            return f"{size} {unit}" if unit == "o" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def disposition(kind: str, name: str) -> str:
    """``attachment`` or ``inline`` with the name, ASCII fallback and UTF-8 (RFC 6266)."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def stream_file(
    request: web.Request, source: str, name: str, *, inline: bool
) -> web.StreamResponse:
    """Relay a decrypted file from the API: inline only if its first bytes allow it."""
    async with request.app[API].stream(source) as upstream:
        chunks = upstream.content.iter_chunked(CHUNK)
        head = b""
        async for chunk in chunks:
            head = chunk
            break
        media_type = sniff(head) if inline else None
        response = web.StreamResponse()
        if media_type is None:
            response.content_type = "application/octet-stream"
            response.headers["Content-Disposition"] = disposition("attachment", name)
            response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        else:
            response.content_type = media_type
            response.headers["Content-Disposition"] = disposition("inline", name)
            sandbox = "" if media_type == "application/pdf" else "sandbox; "
            response.headers["Content-Security-Policy"] = (
                f"{sandbox}default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                "frame-ancestors 'self'"
            )
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["X-Content-Type-Options"] = "nosniff"
        await response.prepare(request)
        await response.write(head)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
