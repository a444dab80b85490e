"""``GET /v1/outbox``, ``GET /v1/inbox`` and ``GET /v1/inbox/page``: the documents sent and
received (a page of the inbox is searched inside its index: ``storage/search.py``)."""

from __future__ import annotations

import re

from aiohttp import web

from p2p.api.request import DAEMON
from p2p.errors import BadInput
from p2p.storage.search import InboxQuery

_HEX = re.compile(r"[0-9a-f]{32,64}")


async def outbox(request: web.Request) -> web.Response:
    """Every (document, recipient); ``?id=DOC``: that document's recipients only."""
    doc = request.query.get("id")
    if doc is not None and not _HEX.fullmatch(doc := doc.lower()):
        raise BadInput("Name the document by its full id (GET /v1/outbox lists them).")
    return web.json_response(await request.app[DAEMON].archive.outbox_view(doc))


async def retry(request: web.Request) -> web.Response:
    """Try one recipient of a queued document again now."""
    doc, peer = _row(request)
    await request.app[DAEMON].outbox.retry(doc, peer)
    return web.json_response({"id": doc, "to": peer, "state": "queued"})


async def cancel(request: web.Request) -> web.Response:
    """Cancel a document for one recipient, if it has not left yet."""
    doc, peer = _row(request)
    await request.app[DAEMON].outbox.cancel(doc, peer)
    return web.json_response({"id": doc, "to": peer, "state": "cancelled"})


def _row(request: web.Request) -> tuple[str, str]:
    doc, peer = request.match_info["doc"].lower(), request.match_info["peer"].lower()
    if not (_HEX.fullmatch(doc) and _HEX.fullmatch(peer)):
        raise BadInput("Name the document and the recipient by their full ids (GET /v1/outbox).")
    return doc, peer


async def inbox(request: web.Request) -> web.Response:
    body = await request.app[DAEMON].archive.inbox_view()  # the index's JSON, spliced as is
    return web.Response(body=body, content_type="application/json")


async def inbox_page(request: web.Request) -> web.Response:
    """One page of the inbox, newest first: ``q``, ``kind``, ``since``, ``until``,
    ``in_reply_to``, ``offset``, ``limit`` (docs/api.md)."""
    query = InboxQuery.parse(request.query)
    body = await request.app[DAEMON].archive.inbox_page_view(query)
    return web.Response(body=body, content_type="application/json")
