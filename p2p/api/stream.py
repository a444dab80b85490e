"""Routes that stream: ``POST /v1/uploads`` (bytes in), ``GET /v1/events`` (events out),
and ``POST /v1/web/link`` (a one-time login link for the practice's page).

An upload is the raw body of the request, read chunk by chunk and written to a
private file in the home (``storage/uploads.py``), so a daemon that cannot read a
person's folders can still send their file, and memory does not grow with its size.
Events are server-sent events (``text/event-stream``): one ``event:`` line with the
type, one ``data:`` line of JSON, a blank line; a comment every ``HEARTBEAT``
seconds keeps proxies and browsers from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from aiohttp import web

from p2p.api.request import DAEMON

CHUNK = 1024 * 1024
HEARTBEAT = 15.0


async def upload(request: web.Request) -> web.Response:
    """Store the request's body as an upload: 201 {upload, size}."""

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk

    upload_id, size = await request.app[DAEMON].uploads.receive(chunks())
    return web.json_response({"upload": upload_id, "size": size}, status=201)


async def events(request: web.Request) -> web.StreamResponse:
    """Stream the daemon's events until the client goes away."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    await response.write(b": pli events\n\n")
    async with request.app[DAEMON].events.subscribe() as queue:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            await response.write(encode_event(event))


def encode_event(event: dict[str, object]) -> bytes:
    """One server-sent event: its type and its JSON (one line: JSON escapes newlines)."""
    kind = str(event.get("type", "message")).replace("\n", " ")
    return f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode()


async def web_link(request: web.Request) -> web.Response:
    """A one-time login link for the practice's page (``pli open``), or its sign-in page."""
    links = request.app[DAEMON].web_links
    answer = {"url": links.new_link(), "tls_fingerprint": links.tls_fingerprint}
    return web.json_response(answer, status=201)
