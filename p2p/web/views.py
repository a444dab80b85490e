"""The pages that show: the inbox, the sent documents, one document and its files.

Every value shown comes from the local API. A received file is never served as a
page: ``file`` serves a PDF or an image inline only if its first bytes say so (the
sender's declared type is not trusted), always with nosniff and a sandboxing CSP;
anything else is a download (``application/octet-stream``, attachment). Text files,
HTML, SVG and scripts included, are shown escaped inside a ``<pre>`` (``preview``).
Showing a received document is a read: the daemon is asked for a read receipt
(``opened``), which it signs only where the practice sends them. A sent document
shows each recipient's receipt lines (``receipts.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from p2p.documents.filenames import safe_filename
from p2p.web import guard, preview
from p2p.web.api import API, Api, ApiError
from p2p.web.listing import Query, pages_of, shape
from p2p.web.mailboxes import path_text
from p2p.web.prescribe import prescription_file
from p2p.web.receipts import our_lines, receipt_lines
from p2p.web.render import lang_of, render
from p2p.web.words import WORDS, birth_date, inert, when, word

_FULL_ID = re.compile(r"[0-9a-f]{32,64}")
log = logging.getLogger("pli.web")


async def inbox(request: web.Request) -> web.Response:
    """One page of the inbox, searched and filtered by the daemon (``listing.py``)."""
    lang = lang_of(request)
    query = Query.parse(request.query)
    answer = await request.app[API].get(query.api_path())
    pages = pages_of(int(answer["total"]))
    if query.page > pages:  # past the end (fewer documents now): the last page
        query = dataclasses.replace(query, page=pages)
        answer = await request.app[API].get(query.api_path())
    subjects = answer.get("subjects") or {}
    return await render(
        request,
        "inbox.html",
        section="inbox",
        rows=[shape(row, subjects, lang) for row in answer["documents"]],
        total=answer["total"],
        pages=pages,
        page=query.page,
        query=query,
        page_link=query.link,
        unread=answer["unread"],
    )


async def outbox(request: web.Request) -> web.Response:
    """The sent documents, newest first, each recipient with its receipt lines."""
    lang = lang_of(request)
    rows = [
        {
            **row,
            "created": when(row.get("created_at"), lang),
            "receipts": receipt_lines(row, lang),
            "state_text": _state(lang, str(row.get("state", ""))),
            "path": path_text(row.get("via"), lang),
            "error_text": failure_text(row, lang),
        }
        for row in reversed(await request.app[API].get("/v1/outbox"))
    ]
    return await render(request, "outbox.html", section="outbox", rows=rows)


def failure_text(row: dict[str, Any], lang: str) -> str:
    """Why a document still waits, or was cancelled, in the page's words for its reason
    code (``words_failures.py``); a row recorded before the codes shows its sentence
    as stored (while it waits; its cancellation said nothing more than « Annulé »).
    A retry under way ("sending") keeps showing why the last attempt failed."""
    state, code = row.get("state"), row.get("error_code")
    if state not in ("queued", "sending", "cancelled"):
        return ""
    if f"fail_{code}" in WORDS:
        return word(lang, f"fail_{code}")
    recorded = row.get("last_error")
    if state in ("queued", "sending") and recorded:
        return word(lang, "last_error_as_recorded", text=inert(recorded))
    return ""


def _state(lang: str, state: str) -> str:
    key = f"st_{state}"
    return word(lang, key) if key in _STATES else state


_STATES = {"st_queued", "st_sending", "st_delivered", "st_rejected", "st_cancelled"}


async def document(request: web.Request) -> web.Response:
    api = request.app[API]
    lang = lang_of(request)
    doc = await api.get(f"/v1/documents/{quote(request.match_info['doc'], safe='')}")
    if doc["direction"] == "in":
        await opened(api, str(doc["id"]))
    peers = {str(p["peer_id"]): p for p in await api.get("/v1/peers")}
    me = await api.get("/v1/identity")
    names = {**{k: str(p.get("name", "")) for k, p in peers.items()}, me["peer_id"]: me["name"]}
    meta = doc.get("metadata") or {}
    files = [
        await preview.describe_file(api, doc, index, entry)
        for index, entry in enumerate(doc.get("files", []))
    ]
    shown = {
        **doc,
        "subject": meta.get("subject", ""),
        "files": files,
        "from_name": names.get(doc.get("sender", ""), word(lang, "unknown_sender")),
        "to_names": ", ".join(names.get(r, r[:12]) for r in doc.get("recipients", [])),
        "created": when(doc.get("created_at"), lang),
        "patient_name": meta.get("patient_name", ""),
        "patient_birthdate": birth_date(meta.get("patient_birthdate"), lang),
        "patient_ins": meta.get("patient_ins", ""),
        "printable": prescription_file(doc) is not None,
    }
    replies, parent = await thread(request, doc["id"], str(meta.get("in_reply_to", "")))
    receipts = await receipts_shown(api, doc, names, str(me["peer_id"]), lang)
    return await render(
        request,
        "document.html",
        section="inbox" if doc["direction"] == "in" else "outbox",
        doc=shown,
        trust=trust_line(doc, peers, me, lang),
        replies=replies,
        parent=parent,
        receipts=receipts,
    )


async def opened(api: Api, doc_id: str) -> None:
    """A person opened a received document on the page: the daemon signs a read receipt
    for its sender when this practice sends them (``receipts_read``) and the sender is
    still paired and not revoked, once (``daemon/later.py``). The document is shown
    whatever the answer: a receipt that could not be noted is only logged."""
    try:
        await api.post(f"/v1/documents/{doc_id}/read")
    except ApiError as exc:
        log.warning("read receipt not noted (%s)", exc.code)


async def thread(
    request: web.Request, doc_id: str, parent_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The replies received to ``doc_id``, and the document it answers (if known)."""
    api = request.app[API]
    lang = lang_of(request)
    answer = await api.get(f"/v1/inbox/page?in_reply_to={quote(doc_id)}&limit=500")
    replies = [
        {
            "id": r["id"],
            "subject": (r.get("metadata") or {}).get("subject", ""),
            "from_name": r.get("from_name", ""),
            "received": when(r.get("received_at"), lang),
        }
        for r in reversed(answer["documents"])  # oldest first, as a thread reads
    ]
    if not _FULL_ID.fullmatch(parent_id):  # none, or not an id (a peer wrote it)
        return replies, None
    try:
        parent = await api.get(f"/v1/documents/{quote(parent_id, safe='')}")
    except ApiError as exc:
        if exc.status in (400, 404):  # not stored here (or removed)
            return replies, None
        raise
    if parent.get("id") != parent_id:
        return replies, None
    return replies, {"id": parent_id, "subject": (parent.get("metadata") or {}).get("subject")}


async def receipts_shown(
    api: Api, doc: dict[str, Any], names: dict[str, str], me: str, lang: str
) -> list[dict[str, Any]]:
    """A sent document: each recipient and its receipt lines. A received one: the lines
    of what this practice told its sender (the receipts it signed)."""
    if doc["direction"] == "out":
        return [recipient_receipts(r, names, lang) for r in doc.get("receipts", [])]
    signed = await api.get(f"/v1/documents/{doc['id']}/receipts")
    return our_lines([r for r in signed if r.get("recipient") == me], lang)


def recipient_receipts(row: dict[str, Any], names: dict[str, str], lang: str) -> dict[str, Any]:
    """One recipient of a sent document: its name, state and receipt lines."""
    state = str(row.get("state", ""))
    return {
        "name": names.get(str(row.get("peer")), "?"),
        "state": state,
        "state_text": _state(lang, state),
        "lines": receipt_lines(row, lang),
    }


def trust_line(
    doc: dict[str, Any], peers: dict[str, Any], me: dict[str, Any], lang: str
) -> dict[str, str]:
    """Who signed it, in one sentence: a paired colleague, a revoked key, or unknown."""
    sender = str(doc.get("sender", ""))
    if sender == me.get("peer_id"):
        return {"level": "good", "text": word(lang, "trust_ours")}
    peer = peers.get(sender)
    fingerprint = str(peer["fingerprint"]) if peer else sender[:16]
    if peer is None:
        return {"level": "bad", "text": word(lang, "trust_unknown", fp=fingerprint)}
    if peer.get("revoked_since") or doc.get("sender_revoked_since"):
        since = when(peer.get("revoked_since") or doc.get("sender_revoked_since"), lang)
        return {"level": "bad", "text": word(lang, "trust_revoked", name=peer["name"], since=since)}
    since = when(peer.get("paired_at"), lang, with_time=False)
    text = word(lang, "trust_ok", name=peer["name"], since=since, fp=fingerprint)
    return {"level": "good", "text": text}


async def outbox_action(request: web.Request) -> web.StreamResponse:
    """Retry now, or cancel, one recipient of a document still waiting."""
    action = request.match_info["action"]
    if action not in ("retry", "cancel"):
        raise web.HTTPNotFound
    doc = quote(request.match_info["doc"], safe="")
    peer = quote(request.match_info["peer"], safe="")
    await request.app[API].post(f"/v1/outbox/{doc}/{peer}/{action}")
    note = "retried" if action == "retry" else "cancelled"
    guard.session_of(request).notes.append(word(lang_of(request), note))
    raise web.HTTPSeeOther("/outbox")


async def mark_read(request: web.Request) -> web.StreamResponse:
    doc = quote(request.match_info["doc"], safe="")
    await request.app[API].post(f"/v1/documents/{doc}/exported")
    guard.session_of(request).notes.append(word(lang_of(request), "marked_read"))
    raise web.HTTPSeeOther(f"/documents/{doc}")


async def file(request: web.Request) -> web.StreamResponse:
    """One file of a document: inline if it is provably a PDF or an image, else a download."""
    doc = quote(request.match_info["doc"], safe="")
    index = request.match_info["index"]
    mode = request.match_info["mode"]
    if mode not in ("view", "download") or not index.isdigit():
        raise web.HTTPNotFound
    described = await request.app[API].get(f"/v1/documents/{doc}")
    entries = described.get("files", [])
    if int(index) >= len(entries):
        raise web.HTTPNotFound
    name = safe_filename(str(entries[int(index)].get("name", "")), int(index) + 1)
    source = f"/v1/documents/{doc}/files/{index}"
    return await preview.stream_file(request, source, name, inline=mode == "view")
