"""``GET /v1/outbox`` and ``GET /v1/inbox``: the documents sent and received."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from p2p.api import revocations
from p2p.api.documents import meta_json
from p2p.api.lookup import peer_names
from p2p.api.request import DAEMON


async def outbox(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    names = peer_names(daemon)
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
    names = peer_names(daemon)
    entries = []
    for row in daemon.store.inbox():
        meta = await asyncio.to_thread(
            daemon.describe, daemon.layout.received_envelope(row.sender, row.doc_id)
        )
        entries.append({
            "id": row.doc_id, "from": row.sender, "from_name": names.get(row.sender, "?"),
            "size": row.size, "received_at": row.received_at, "exported_at": row.exported_at,
            **meta_json(meta), **revocations.document_fields(daemon, meta),
        })  # fmt: skip
    return web.json_response(entries)
