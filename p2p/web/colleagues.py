"""The colleagues: the list, pairing (by code, as a wizard, or by fingerprint), rename, remove.

Every step is one call of the local API, the same as the CLI's ``pli pair`` and
``pli peers`` commands (docs/api.md, "Pairing" and "Peers"); the daemon does the
cryptography. Pairing by code is a wizard at ``/colleagues/pair/{id}``: one page
per state of the attempt (``waiting`` → ``needs-confirmation`` →
``waiting-for-peer`` → ``paired`` | ``failed``), which the page's script reloads
when the daemon says the state changed (``pair_state``, a long poll); without the
script a button reloads it. An invitation's code is kept in the browser's session
only (the API does not give it twice), so that a reload still shows it.

A failed form comes back with the daemon's sentence (``problem``) and what was
typed; a done one redirects with a one-time note (post/redirect/get).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from p2p.web import guard
from p2p.web.api import API, ApiError
from p2p.web.render import lang_of, render
from p2p.web.words import when, word
from p2p.web.words_refusals import pairing_said, said

INVITATION_LIFETIME = 600  # seconds, as `pli pair invite`'s default
MAX_CODES = 8  # invitations a session remembers the code of
LONG_POLL = 20  # seconds the page's script waits for a change of state
STATES = ("waiting", "needs-confirmation", "waiting-for-peer", "paired", "failed")


def _q(text: str) -> str:
    return quote(text, safe="")


async def listing(request: web.Request, status: int = 200, **problem: Any) -> web.Response:
    """The colleagues, the requests waiting for an answer, and the ways to pair."""
    api = request.app[API]
    lang = lang_of(request)
    peers = [
        {
            **p,
            "revoked": bool(p.get("revoked_since")) or p.get("state") == "revoked",
            "last_seen": when(p.get("last_seen"), lang),
            "revoked_since": when(p.get("revoked_since"), lang),
        }
        for p in await api.get("/v1/peers")
    ]
    peers.sort(key=lambda p: (p["revoked"], str(p.get("name", "")).casefold()))
    pending = [
        {**item, "sas": spaced(str(item.get("sas") or ""))}
        for item in await api.get("/v1/pair/pending")
    ]
    return await render(
        request,
        "colleagues.html",
        status=status,
        section="colleagues",
        peers=peers,
        requests=[p for p in pending if p.get("kind") == "fingerprint"],
        to_confirm=[p for p in pending if p.get("kind") == "code"],
        problem=problem.get("problem", ""),
        where=problem.get("where", ""),
        typed=problem.get("typed", {}),
    )


def spaced(code: str) -> str:
    """``123456`` → ``123 456``: six digits are read aloud in two groups."""
    return f"{code[:3]} {code[3:]}" if len(code) == 6 else code


async def _form(request: web.Request) -> dict[str, str]:
    return {key: str(value).strip() for key, value in (await request.post()).items()}


def _note(request: web.Request, key: str, **values: object) -> None:
    guard.session_of(request).notes.append(word(lang_of(request), key, **values))


# --- pairing by code ---------------------------------------------------------------------


async def invite(request: web.Request) -> web.StreamResponse:
    """A one-time code to read to the colleague (``pli pair invite``)."""
    invitation = await request.app[API].post("/v1/pair/invite", {"expires": INVITATION_LIFETIME})
    attempt = str(invitation["id"])
    codes = guard.session_of(request).codes
    while len(codes) >= MAX_CODES:
        codes.pop(next(iter(codes)))
    codes[attempt] = {
        "code": str(invitation["code"]),
        "address": str(invitation.get("address") or ""),
        "expires_at": str(invitation.get("expires_at") or ""),
    }
    raise web.HTTPSeeOther(f"/colleagues/pair/{_q(attempt)}")


async def accept(request: web.Request) -> web.StreamResponse:
    """Join the invitation whose code the colleague read out (``pli pair accept``)."""
    form = await _form(request)
    body: dict[str, Any] = {"code": form.get("code", "")}
    if form.get("address"):
        body["address"] = form["address"]
    try:
        attempt = await request.app[API].post("/v1/pair/accept", body)
    except ApiError as exc:
        problem = said(exc, lang_of(request))
        return await listing(request, 400, problem=problem, where="accept", typed=form)
    raise web.HTTPSeeOther(f"/colleagues/pair/{_q(str(attempt['id']))}")


async def request_by_fingerprint(request: web.Request) -> web.StreamResponse:
    """Ask the practice at an address to pair, if its key has the fingerprint typed."""
    form = await _form(request)
    body = {"fingerprint": form.get("fingerprint", ""), "address": form.get("address", "")}
    try:
        attempt = await request.app[API].post("/v1/peers/add", body)
    except ApiError as exc:
        problem = said(exc, lang_of(request))
        return await listing(request, 400, problem=problem, where="fingerprint", typed=form)
    raise web.HTTPSeeOther(f"/colleagues/pair/{_q(str(attempt['id']))}")


async def pair(request: web.Request) -> web.Response:
    """The wizard's page for one attempt, as it stands now.

    ``?differs=CODE``: the code the person typed was not the one on this screen
    (``confirm``); said only while the check codes are still to compare.
    """
    attempt = request.match_info["attempt"]
    found = await request.app[API].get(f"/v1/pair/{_q(attempt)}")
    problem = ""
    differs = "".join(request.query.get("differs", "").split())[:12]
    if differs and found.get("state") == "needs-confirmation":
        problem = word(lang_of(request), "pair_typed_differs", code=spaced(differs))
    invitation = guard.session_of(request).codes.get(attempt, {})
    expires = invitation.get("expires_at", "")
    shown = {
        **found,
        "sas": spaced(str(found.get("sas") or "")),
        "code": invitation.get("code", ""),
        "address": invitation.get("address", ""),
        "expires": when(float(expires), lang_of(request)) if expires else "",
        "message": pairing_said(found, lang_of(request)),
    }
    return await render(
        request,
        "pair.html",
        section="colleagues",
        attempt=shown,
        problem=problem,
        poll=LONG_POLL,
    )


async def pair_state(request: web.Request) -> web.Response:
    """The attempt's state once it is no longer ``?shown=``, or after ``LONG_POLL`` s."""
    attempt = request.match_info["attempt"]
    shown = request.query.get("shown", "")
    until = ",".join(s for s in STATES if s != shown)
    found = await request.app[API].get(f"/v1/pair/{_q(attempt)}?timeout={LONG_POLL}&until={until}")
    return web.json_response({"state": found.get("state")})


async def confirm(request: web.Request) -> web.StreamResponse:
    """The person compared the check codes: the same (confirm), or not (refuse)."""
    attempt = request.match_info["attempt"]
    form = await _form(request)
    same = form.get("answer") == "same"
    typed = "".join(form.get("their_code", "").split())
    if same and typed:
        found = await request.app[API].get(f"/v1/pair/{_q(attempt)}")
        if typed != str(found.get("sas") or ""):  # a typo refuses nothing: compare again
            where = f"/colleagues/pair/{_q(attempt)}?{urlencode({'differs': typed[:12]})}"
            raise web.HTTPSeeOther(where)
    await request.app[API].post(f"/v1/pair/{_q(attempt)}/confirm", {"yes": same})
    raise web.HTTPSeeOther(f"/colleagues/pair/{_q(attempt)}")


async def cancel(request: web.Request) -> web.StreamResponse:
    """Close an invitation not yet used (``pli pair invite`` interrupted)."""
    attempt = request.match_info["attempt"]
    found = await request.app[API].get(f"/v1/pair/{_q(attempt)}")
    if found.get("nameplate"):
        await request.app[API].call("DELETE", f"/v1/pair/invite/{_q(str(found['nameplate']))}")
    guard.session_of(request).codes.pop(attempt, None)
    _note(request, "pair_cancelled")
    raise web.HTTPSeeOther("/colleagues")


async def answer_request(request: web.Request) -> web.StreamResponse:
    """Accept or decline a colleague's request by fingerprint (``pli peers accept``)."""
    attempt = request.match_info["attempt"]
    yes = (await _form(request)).get("answer") == "accept"
    await request.app[API].post("/v1/peers/accept", {"peer": attempt, "yes": yes})
    if not yes:
        _note(request, "request_declined")
        raise web.HTTPSeeOther("/colleagues")
    raise web.HTTPSeeOther(f"/colleagues/pair/{_q(attempt)}")


# --- one colleague: rename, take the new name, remove ------------------------------------


async def rename(request: web.Request) -> web.StreamResponse:
    peer = request.match_info["peer"]
    form = await _form(request)
    try:
        row = await request.app[API].post(f"/v1/peers/{_q(peer)}/name", {"name": form["name"]})
    except (ApiError, KeyError) as exc:
        lang = lang_of(request)
        message = said(exc, lang) if isinstance(exc, ApiError) else word(lang, "need_name")
        return await listing(request, 400, problem=message, where=peer, typed=form)
    _note(request, "renamed", name=row.get("name", ""))
    raise web.HTTPSeeOther("/colleagues")


async def accept_name(request: web.Request) -> web.StreamResponse:
    peer = request.match_info["peer"]
    try:
        row = await request.app[API].post(f"/v1/peers/{_q(peer)}/accept-name")
    except ApiError as exc:
        return await listing(request, 400, problem=said(exc, lang_of(request)), where=peer)
    _note(request, "renamed", name=row.get("name", ""))
    raise web.HTTPSeeOther("/colleagues")


async def remove_form(request: web.Request) -> web.Response:
    """Ask before forgetting a colleague: what happens, in one sentence."""
    peer = request.match_info["peer"]
    rows = [p for p in await request.app[API].get("/v1/peers") if p.get("peer_id") == peer]
    if not rows:
        raise web.HTTPNotFound
    return await render(request, "remove.html", section="colleagues", peer=rows[0])


async def remove(request: web.Request) -> web.StreamResponse:
    peer = request.match_info["peer"]
    removed = await request.app[API].call("DELETE", f"/v1/peers/{_q(peer)}")
    _note(request, "removed", name=removed.get("name", ""))
    raise web.HTTPSeeOther("/colleagues")


def add_routes(app: web.Application) -> None:
    """The colleagues' routes (the pairing ones before ``{peer}``'s)."""
    app.router.add_get("/colleagues", listing)
    app.router.add_post("/colleagues/invite", invite)
    app.router.add_post("/colleagues/accept", accept)
    app.router.add_post("/colleagues/request", request_by_fingerprint)
    app.router.add_get("/colleagues/pair/{attempt}", pair)
    app.router.add_get("/colleagues/pair/{attempt}/state", pair_state)
    app.router.add_post("/colleagues/pair/{attempt}/confirm", confirm)
    app.router.add_post("/colleagues/pair/{attempt}/cancel", cancel)
    app.router.add_post("/colleagues/requests/{attempt}", answer_request)
    app.router.add_post("/colleagues/{peer}/rename", rename)
    app.router.add_post("/colleagues/{peer}/accept-name", accept_name)
    app.router.add_get("/colleagues/{peer}/remove", remove_form)
    app.router.add_post("/colleagues/{peer}/remove", remove)
