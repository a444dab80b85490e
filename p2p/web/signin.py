"""Signing in by name and password, when the page is served with TLS (``web_tls``).

On the practice's network a one-time link is not enough (it can be forwarded,
and the other computers cannot run ``pli open``): each person has a name and a
password (``pli web-user set NAME``), checked by the daemon
(``POST /v1/web/sign-in``). Attempts are limited per address and per name, so
that a program on the LAN cannot try passwords quickly; the form must come from
the page's own origin. A wrong name and a wrong password get the same answer.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from p2p.ratelimit import KeyedBuckets
from p2p.web import guard
from p2p.web.api import API, ApiError
from p2p.web.words import word
from p2p.web.words_refusals import said

PER_ADDRESS = (10, 1 / 30)  # a burst of tries, then one every 30 s, from one address
PER_NAME = (10, 1 / 60)  # and for one name, from anywhere
TRIES: web.AppKey[tuple[KeyedBuckets, KeyedBuckets]] = web.AppKey("tries", tuple)


def tries() -> tuple[KeyedBuckets, KeyedBuckets]:
    return KeyedBuckets(*PER_ADDRESS, size=1024), KeyedBuckets(*PER_NAME, size=1024)


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "fr"


async def form(request: web.Request, problem: str = "", status: int = 200) -> web.Response:
    if not request.app[guard.LINKS].password_sign_in:
        raise web.HTTPNotFound  # on loopback, `pli open`'s link is the way in
    lang = _lang(request)
    context = {
        "lang": lang,
        "t": lambda key, **values: word(lang, key, **values),
        "problem": problem,
        "fingerprint": request.app[guard.LINKS].tls_fingerprint or "",
    }
    return aiohttp_jinja2.render_template("signin.html", request, context, status=status)


async def sign_in(request: web.Request) -> web.StreamResponse:
    if not request.app[guard.LINKS].password_sign_in:
        raise web.HTTPNotFound  # on loopback, `pli open`'s link is the way in
    problem = guard.foreign_origin(request, _lang(request))
    if problem is not None:
        return guard.refuse(403, problem)
    posted = await request.post()
    name, password = str(posted.get("name", "")).strip(), str(posted.get("password", ""))
    by_address, by_name = request.app[TRIES]
    if not by_address.take(request.remote or "?") or not by_name.take(name.casefold()):
        return await form(request, word(_lang(request), "signin_slow_down"), 429)
    try:
        answer = await request.app[API].post(
            "/v1/web/sign-in", {"name": name, "password": password}
        )
    except ApiError as exc:
        if exc.code != "sign-in-refused":
            raise
        return await form(request, said(exc, _lang(request)), 403)
    return guard.start_session(request, user=str(answer.get("name", "")))
