"""What every handler of the local API shares: the daemon's app key and the JSON body readers.

A handler reads its body with ``read_json`` and its fields with ``text`` / ``flag``; a
bad body is a ``BadInput`` whose sentence says what to change (400, docs/api.md).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from p2p.daemon.core import Daemon
from p2p.errors import BadInput

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon", Daemon)
MAX_JSON = 1024 * 1024


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise BadInput("The request is too large.")
    try:
        body = await request.json()
    except ValueError:
        raise BadInput("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise BadInput("The request body must be a JSON object.")
    return body


def text(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"“{key}” must be text.")
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise BadInput(f"“{key}” must be true or false.")
    return value
