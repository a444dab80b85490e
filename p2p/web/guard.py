"""The page's defences, each one a middleware or a small check (docs/threat-model.md).

- **Host allowlist** (DNS rebinding): a request whose Host is not localhost,
  127.0.0.1 or ::1 (or, with ``web_tls``, a name the page is set up with) is
  refused (403) before anything else runs.
- **Session**: ``/login/{token}`` redeems a one-time link (``pli open``) and sets an
  HttpOnly, SameSite=Strict cookie naming a session held in memory; a session ends
  after ``IDLE`` seconds unused or ``LIFETIME`` seconds in all. Without one, every
  page answers 401 with a sentence saying to run ``pli open``. With ``web_tls`` the
  page is HTTPS, there are no links, and a person signs in with a name and a
  password (``signin.py``); the cookie is then also Secure, and HSTS is sent.
- **Origin and CSRF**: every request that is not GET/HEAD must carry an Origin equal
  to the page's own and the session's CSRF token (header ``X-CSRF-Token``, form
  field or query ``csrf``), compared in constant time.
- **Headers** on every answer: a CSP with no inline script (``default-src 'self';
  frame-ancestors 'none'``), nosniff, no referrer to other sites, no caching.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from p2p.daemon.weblinks import LoginLinks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "pli_session"
IDLE = 2 * 3600.0  # seconds a session may stay unused
LIFETIME = 12 * 3600.0  # seconds a session lasts at most (a working day)
MAX_SESSIONS = 64
ALLOWED_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = ("/login/", "/static/", "/signin")  # reachable without a session
HSTS = "max-age=31536000"  # with TLS: browsers never fall back to http for this page


@dataclass
class Session:
    csrf: str
    created: float
    seen: float
    lang: str = "fr"
    notes: list[str] = field(default_factory=list)  # one-time messages for the next page
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # invitations shown here
    user: str = ""  # the name signed in with (web_tls); "" for a `pli open` link


class Sessions:
    """The page's sessions, in memory: a restart of the daemon ends them all."""

    def __init__(self, idle: float = IDLE, lifetime: float = LIFETIME) -> None:
        self.idle, self.lifetime = idle, lifetime
        self._by_id: dict[str, Session] = {}

    def new(self) -> tuple[str, Session]:
        now = time.monotonic()
        self._expire(now)
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.pop(next(iter(self._by_id)))
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), created=now, seen=now)
        self._by_id[session_id] = session
        return session_id, session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        self._expire(now)
        session = self._by_id.get(session_id)
        if session is not None:
            session.seen = now
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for key, session in list(self._by_id.items()):
            if now - session.seen > self.idle or now - session.created > self.lifetime:
                del self._by_id[key]


SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
LINKS: web.AppKey[LoginLinks] = web.AppKey("links", LoginLinks)
#: The names the page answers at (Host): the loopback ones, more with ``web_tls``.
HOSTS: web.AppKey[frozenset[str]] = web.AppKey("hosts", frozenset)
SESSION = "pli.session"  # request key: the request's Session


def host_name(host: str) -> str:
    """``localhost:7718`` → ``localhost``; ``[::1]:7718`` → ``[::1]``."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def refuse(status: int, text: str) -> web.Response:
    """A short plain-text refusal (no page, no template: nothing a hostile request shapes)."""
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The security headers on every answer, refusals included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null"
    # with a form's POST, and the Origin check would refuse the page's own forms.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        response.headers["Strict-Transport-Security"] = HSTS
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def allowed_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    named = request.app.get(HOSTS)
    if host_name(request.headers.get("Host", "").lower()) not in (named or ALLOWED_HOSTS):
        if named:
            return refuse(
                403,
                "pli : cette page ne répond qu'aux noms donnés dans web_names.\n"
                "pli: this page answers only at the names set in web_names.",
            )
        return refuse(
            403,
            "pli : cette page ne répond qu'à http://127.0.0.1 ou http://localhost.\n"
            "pli: this page answers only at http://127.0.0.1 or http://localhost.",
        )
    return await handler(request)


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session for every path but the login link and the static files."""
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    session = request.app[SESSIONS].find(request.cookies.get(COOKIE))
    if session is None and request.app[LINKS].password_sign_in and request.method == "GET":
        raise web.HTTPSeeOther("/signin")  # the page on the network: a name and a password
    if session is None:
        return refuse(
            401,
            "pli : vous n'êtes pas connecté(e). Ouvrez la page avec la commande `pli open`.\n"
            "pli: you are not signed in. Open the page with the command `pli open`.",
        )
    request[SESSION] = session
    if request.method not in SAFE_METHODS:
        problem = await _forgery(request, session)
        if problem is not None:
            return refuse(403, problem)
    return await handler(request)


async def _forgery(request: web.Request, session: Session) -> str | None:
    """Why a state-changing request may come from another site, or None."""
    problem = foreign_origin(request, session.lang)
    if problem is not None:
        return problem
    token = request.headers.get("X-CSRF-Token") or request.query.get("csrf")
    if token is None and request.content_type == "application/x-www-form-urlencoded":
        token = str((await request.post()).get("csrf", ""))
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        return FORGED[session.lang == "en"]
    return None


def foreign_origin(request: web.Request, lang: str) -> str | None:
    """Why this request's Origin is not the page's own (scheme, Host), or None."""
    expected = f"{request.scheme}://{request.headers.get('Host', '')}"
    if request.headers.get("Origin") != expected:
        return FOREIGN[lang == "en"]
    return None


#: A form without the session's CSRF token, or from elsewhere: (French, English).
FORGED = (
    "pli : ce formulaire est périmé ou falsifié (jeton CSRF) : rechargez la page.",
    "pli: this form is out of date or forged (CSRF token): reload the page.",
)
FOREIGN = (
    "pli : cette demande ne vient pas de la page de pli (Origin) : elle a été refusée.",
    "pli: this request did not come from pli's own page (Origin), so it was refused.",
)


def start_session(request: web.Request, user: str = "") -> web.StreamResponse:
    """A new session and its cookie (Secure when the page is HTTPS), then the inbox."""
    session_id, session = request.app[SESSIONS].new()
    session.user = user
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int(LIFETIME),
    )
    return response


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session
