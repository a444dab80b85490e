"""Rendering a page with what every page shows: the language, the CSRF token, the
practice's name, and the one-time notes left for it (``Session.notes``)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from p2p.web import guard
from p2p.web.api import API, ApiError
from p2p.web.words import LANGS, word
from protocol import KINDS  # the one list of document kinds (the envelope's)


def lang_of(request: web.Request) -> str:
    session = request.get(guard.SESSION)
    lang = session.lang if session is not None else "fr"
    return lang if lang in LANGS else "fr"


async def render(
    request: web.Request, template: str, status: int = 200, **context: Any
) -> web.Response:
    """``template`` with the session's language, CSRF token and the practice's name."""
    session = request.get(guard.SESSION)
    lang = lang_of(request)
    me = await _me(request)
    notes = list(session.notes) if session is not None else []
    if session is not None:
        session.notes.clear()
    base = {
        "lang": lang,
        "t": lambda key, **values: word(lang, key, **values),
        "csrf": session.csrf if session is not None else "",
        "me_name": me,
        "notes": notes,
        "here": request.path_qs,
        "section": "",
        "unread": None,
        "kinds": KINDS,
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


async def _me(request: web.Request) -> str:
    try:
        identity = await request.app[API].get("/v1/identity")
    except ApiError:
        return ""
    return str(identity.get("name", ""))
