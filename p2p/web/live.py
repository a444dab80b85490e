"""Signing in and out, the language, and the live stream of events for the page.

``/login/{token}`` spends a one-time link from ``pli open`` (whatever the outcome)
and, if it was valid, starts a session and sets its cookie: HttpOnly (no script
reads it), SameSite=Strict (no other site's page sends it), path ``/``. ``/events``
relays the local API's ``GET /v1/events`` to the signed-in browser as server-sent
events; the page's script refreshes what changed.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from p2p.web import guard
from p2p.web.api import API, ApiError

LOGIN_REFUSED = (
    "pli : ce lien de connexion a déjà servi ou a expiré. "
    "Lancez `pli open` pour en obtenir un nouveau.\n"
    "pli: this sign-in link was already used or has expired. Run `pli open` for a new one."
)


LINK_NOT_ENOUGH = (
    "pli : cette page se connecte avec un nom et un mot de passe : allez sur /signin.\n"
    "pli: this page signs you in with a name and a password: go to /signin."
)


async def login(request: web.Request) -> web.StreamResponse:
    links = request.app[guard.LINKS]
    if links.password_sign_in:
        return guard.refuse(403, LINK_NOT_ENOUGH)
    if not links.redeem(request.match_info["token"]):
        return guard.refuse(403, LOGIN_REFUSED)
    return guard.start_session(request)


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[guard.SESSIONS].end(request.cookies.get(guard.COOKIE))
    response = guard.refuse(200, "pli : vous êtes déconnecté(e). / pli: signed out.")
    response.del_cookie(guard.COOKIE, path="/")
    return response


async def language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    session = guard.session_of(request)
    if form.get("lang") in ("fr", "en"):
        session.lang = str(form["lang"])
    back = str(form.get("back", "/"))
    if not back.startswith("/") or back.startswith("//"):  # only our own pages
        back = "/"
    raise web.HTTPSeeOther(back)


async def events(request: web.Request) -> web.StreamResponse:
    """The daemon's events, relayed line by line until the browser leaves."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    with contextlib.suppress(ApiError, ConnectionResetError):
        async with request.app[API].stream("/v1/events") as upstream:
            async for line in upstream.content:
                await response.write(line)
    return response
