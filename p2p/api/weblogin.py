"""``POST /v1/web/sign-in``: check a name and password for the practice's page.

Used by the page when it is served with TLS to the practice's network
(``web_tls``); the page rate-limits the attempts per address and per name, this
handler checks the Argon2id hash on a worker thread (``storage/webusers.py``). The
password is never logged nor kept; a refusal does not say whether the name exists.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from p2p.api.bodies import SignIn
from p2p.api.request import DAEMON, read_body
from p2p.errors import PliError
from p2p.storage import webusers


class SignInRefused(PliError):
    code = "sign-in-refused"
    http_status = 403


async def sign_in(request: web.Request) -> web.Response:
    body = await read_body(request, SignIn)
    home = request.app[DAEMON].config.home
    if not await asyncio.to_thread(webusers.load, home):
        raise SignInRefused(
            "No one can sign in to this page yet: on the server, run `pli web-user set NAME` "
            "to give a person a name and a password.",
            french="Personne ne peut encore se connecter à cette page : sur le serveur, lancez "
            "`pli web-user set NOM` pour donner un nom et un mot de passe.",
        )
    if not await asyncio.to_thread(webusers.check, home, body.name, body.password):
        raise SignInRefused("Wrong name or password.", french="Nom ou mot de passe incorrect.")
    return web.json_response({"name": body.name.strip()})
