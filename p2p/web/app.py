"""The page's aiohttp app: its routes, its templates, and rendering with the session.

``build_app`` is the whole page at a glance: the route table, the middlewares of
``guard.py`` (the headers on every answer, then the Host, then the session and CSRF checks), the
jinja2 environment (autoescaping on, ``inert`` for peer text) and the one error map:
an ``ApiError`` becomes a page with the API's sentence (in the page's language) and
its status; anything else
a page that says to look at the daemon's log, which alone has the details.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from p2p.daemon.weblinks import LoginLinks
from p2p.web import colleagues, compose, guard, live, prescribe, settings, signin, views
from p2p.web.api import API, Api, ApiError
from p2p.web.render import lang_of, render
from p2p.web.words import inert
from p2p.web.words_refusals import said

log = logging.getLogger("pli.web")
HERE = Path(__file__).parent
UNEXPECTED = (
    "pli : la page a rencontré un problème inattendu ; voyez le journal du démon.\n"
    "pli: the page hit an unexpected problem; see the daemon's log."
)


def build_app(
    api: Api, links: LoginLinks, *, hosts: frozenset[str] | None = None
) -> web.Application:
    """The page, talking to the daemon through ``api`` and redeeming ``links``; ``hosts``
    are the names it answers at, when served to the network (``web_tls``). It reads its
    templates from the disk: call it off the event loop."""
    app = web.Application(
        middlewares=[guard.headers, guard.allowed_host, errors_as_pages, guard.signed_in],
        client_max_size=64 * 1024,  # forms; files stream through compose.send
    )
    app[API] = api
    app[guard.LINKS] = links
    app[guard.SESSIONS] = guard.Sessions()
    app[prescribe.DRAFTS] = prescribe.Drafts()
    app[signin.TRIES] = signin.tries()
    if hosts is not None:
        app[guard.HOSTS] = hosts
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # the package's own files: no stat() on the loop at each page
    )
    env.filters["inert"] = inert
    for name in env.list_templates():  # read now (off the loop), not at the first page
        env.get_template(name)
    app.router.add_get("/login/{token}", live.login)
    app.router.add_get("/signin", signin.form)
    app.router.add_post("/signin", signin.sign_in)
    app.router.add_post("/logout", live.logout)
    app.router.add_post("/lang", live.language)
    app.router.add_get("/events", live.events)
    app.router.add_get("/", views.inbox)
    app.router.add_get("/outbox", views.outbox)
    app.router.add_post("/outbox/{doc}/{peer}/{action}", views.outbox_action)
    app.router.add_get("/documents/{doc}", views.document)
    app.router.add_post("/documents/{doc}/read", views.mark_read)
    app.router.add_get("/documents/{doc}/files/{index}/{mode}", views.file)
    app.router.add_get("/compose", compose.form)
    app.router.add_post("/compose", compose.send)
    colleagues.add_routes(app)
    settings.add_routes(app)
    app.router.add_get("/prescribe", prescribe.form)
    app.router.add_post("/prescribe", prescribe.submit)
    app.router.add_get("/prescribe/draft", prescribe.draft)
    app.router.add_get("/documents/{doc}/ordonnance", prescribe.ordonnance)
    app.router.add_static("/static", HERE / "static", append_version=False)
    app.on_cleanup.append(_close_api)
    return app


async def _close_api(app: web.Application) -> None:
    await app[API].close()


@web.middleware
async def errors_as_pages(request: web.Request, handler: guard.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        status = exc.status if 400 <= exc.status < 600 else 500
        message = said(exc, lang_of(request))
        return await render(request, "error.html", status=status, message=message)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("the page failed on %s %s", request.method, request.path)
        return guard.refuse(500, UNEXPECTED)
