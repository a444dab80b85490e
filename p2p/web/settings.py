"""The practice's settings: its profile (a new signed card for every colleague) and the
passphrase of its keys, through the local API (``/v1/profile``, ``/v1/passphrase``);
which later receipts its senders get (shown: they are set in config.toml); the
mailboxes joined, their state and what waits each way (``mailboxes.py``).

The checks are the daemon's (``documents/profile.py``, ``storage/keystore.py``), so
the page and ``pli profile set`` / ``pli passphrase`` say the same things. The
passphrases typed here are sent to the daemon once and never shown again, kept, or
put in a page (the form comes back empty after a mistake).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from p2p.web import guard
from p2p.web.api import API, ApiError
from p2p.web.mailboxes import mailbox_rows
from p2p.web.render import lang_of, render
from p2p.web.words import word
from p2p.web.words_refusals import said

PROFILE_FIELDS = ("name", "profession", "rpps", "practice")


async def page(request: web.Request, status: int = 200, **problems: Any) -> web.Response:
    profile = await request.app[API].get("/v1/profile")
    running = await request.app[API].get("/v1/status")
    signs = running.get("signs_receipts") or {}
    typed = problems.get("typed") or {}
    values = {key: typed.get(key, profile.get(key, "")) for key in PROFILE_FIELDS}
    return await render(
        request,
        "settings.html",
        status=status,
        section="settings",
        profile=profile,
        signs=signs,
        mailboxes=mailbox_rows(running.get("mailboxes") or [], lang_of(request)),
        values=values,
        profile_problem=problems.get("profile_problem", ""),
        passphrase_problem=problems.get("passphrase_problem", ""),
    )


async def save_profile(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {key: str(form.get(key, "")) for key in PROFILE_FIELDS}
    try:
        answer = await request.app[API].post("/v1/profile", fields)
    except ApiError as exc:
        problem = said(exc, lang_of(request))
        return await page(request, 400, profile_problem=problem, typed=fields)
    note = word(lang_of(request), "profile_saved", count=answer.get("sent_to", 0))
    guard.session_of(request).notes.append(note)
    raise web.HTTPSeeOther("/settings")


async def change_passphrase(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    new, again = str(form.get("new", "")), str(form.get("again", ""))
    lang = lang_of(request)
    if new != again:
        return await page(request, 400, passphrase_problem=word(lang, "passphrase_mismatch"))
    body = {"current": str(form.get("current", "")) or None, "new": new or None}
    try:
        answer = await request.app[API].post("/v1/passphrase", body)
    except ApiError as exc:
        return await page(request, 400, passphrase_problem=said(exc, lang))
    done = "passphrase_set" if answer.get("protected") else "passphrase_removed"
    guard.session_of(request).notes.append(word(lang, done))
    raise web.HTTPSeeOther("/settings")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/settings", page)
    app.router.add_post("/settings/profile", save_profile)
    app.router.add_post("/settings/passphrase", change_passphrase)
