"""Scoped tokens for other software: every route has a scope, every refusal its answer.

A real daemon serves its local API on the unix socket and on a loopback TCP port
(``api_listen``); tokens are made through the API (as ``pli api-token`` does) and
presented as ``Authorization: Bearer`` over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from p2p.api import scopes
from p2p.api.server import build_app
from p2p.api.tokens import _digest
from p2p.errors import ConfigError
from p2p.storage import config
from p2p.storage.store import TokenRow

from .clirun import run
from .conftest import Running, start_daemon


async def pli(home: Path, *args: str) -> Any:
    """The CLI in a thread: the daemon it talks to runs on this test's loop."""
    return await asyncio.to_thread(run, "--home", str(home), *args)


def router_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves; a HEAD is its GET."""
    found = set()
    for route in app.router.routes():
        if route.method != "HEAD" and route.resource is not None:
            found.add((route.method, route.resource.canonical))
    return found


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    running = await start_daemon(tmp_path / "a", "Dr Alice Martin", api_listen="127.0.0.1:0")
    _, status = await running.api("GET", "/v1/status")
    yield running, f"http://{status['api_tcp']['address']}"
    await running.stop()


async def make_token(running: Running, *wanted: str, name: str = "LGC") -> str:
    status, answer = await running.api(
        "POST", "/v1/api-tokens", {"name": name, "scopes": list(wanted)}
    )
    assert status == 201, answer
    return str(answer["token"])


async def call(
    url: str, method: str, path: str, token: str | None = None, **headers: str
) -> tuple[int, dict[str, Any], Any]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url + path, headers=headers) as response,
    ):
        return response.status, dict(response.headers), json.loads(await response.read())


def test_every_route_has_a_scope_and_every_scope_line_a_route(tmp_path: Path) -> None:
    from p2p.daemon import harness

    daemon = harness.open_daemon(tmp_path / "a", "Dr Alice Martin")
    try:
        served = router_routes(build_app(daemon))
    finally:
        daemon.store.close()
    missing = sorted(served - scopes.ROUTE_SCOPES.keys())
    assert not missing, (
        f"these routes have no scope in p2p/api/scopes.py ROUTE_SCOPES (tokens are "
        f"refused there until they do): {missing}"
    )
    stale = sorted(scopes.ROUTE_SCOPES.keys() - served)
    assert not stale, f"p2p/api/scopes.py ROUTE_SCOPES names routes the API lacks: {stale}"
    used = set(scopes.ROUTE_SCOPES.values()) - {scopes.OWNER, scopes.ANY}
    assert used == set(scopes.SCOPES), "a scope that opens nothing, or one not described"


def test_the_cli_help_lists_every_scope() -> None:
    text = run("api-token", "create", "--help").output
    for scope, _words in scopes.SCOPES.items():
        assert f"  {scope} " in text, scope


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "token-missing"),
        ("Bearer pli_0123456789abcdef_" + "A" * 43, "token-invalid"),
        ("Bearer not-a-token", "token-invalid"),
        ("Basic dXNlcjpwYXNz", "token-invalid"),
    ],
)
async def test_tcp_refuses_a_missing_or_wrong_token(
    served: tuple[Running, str], header: str | None, code: str
) -> None:
    _, url = served
    headers = {"Authorization": header} if header else {}
    status, got, body = await call(url, "GET", "/v1/status", **headers)
    assert status == 401
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert got["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_opens_its_scopes_only(served: tuple[Running, str]) -> None:
    running, url = served
    token = await make_token(running, "status", "inbox:read")
    status, _, body = await call(url, "GET", "/v1/status", token)
    assert status == 200
    assert body["fingerprint"] == running.daemon.me.peer_id.fingerprint
    assert (await call(url, "GET", "/v1/inbox", token))[0] == 200
    status, _, body = await call(url, "GET", "/v1/outbox", token)
    assert status == 403
    assert body["error"]["code"] == "scope-missing"
    assert "outbox:read" in body["error"]["message"]
    status, _, body = await call(url, "POST", "/v1/documents", token)
    assert status == 403
    assert "“send”" in body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/api-tokens"), ("POST", "/v1/api-tokens"), ("POST", "/v1/web/link")],
)
async def test_no_token_reaches_the_owner_routes(
    served: tuple[Running, str], method: str, path: str
) -> None:
    running, url = served
    token = await make_token(running, *scopes.SCOPES)  # every scope there is
    status, _, body = await call(url, method, path, token)
    assert status == 403
    assert body["error"]["code"] == "scope-missing"


async def test_an_expired_token_is_refused(served: tuple[Running, str]) -> None:
    running, url = served
    now = int(time.time())
    row = TokenRow(
        "00112233445566aa", "Old", ("status",), _digest("S" * 43), now - 99, now - 1, None
    )
    assert await asyncio.to_thread(running.daemon.store.add_token, row)
    status, _, body = await call(url, "GET", "/v1/status", "pli_00112233445566aa_" + "S" * 43)
    assert status == 401
    assert body["error"]["code"] == "token-expired"
    assert "“Old” has expired" in body["error"]["message"]


async def test_a_revoked_token_is_refused_at_once(served: tuple[Running, str]) -> None:
    running, url = served
    token = await make_token(running, "status")
    assert (await call(url, "GET", "/v1/status", token))[0] == 200
    status, answer = await running.api("DELETE", "/v1/api-tokens/LGC")
    assert status == 200
    assert answer["state"] == "revoked"
    assert not answer["already_revoked"]
    status, _, body = await call(url, "GET", "/v1/status", token)
    assert status == 401
    assert body["error"]["code"] == "token-revoked"
    status, answer = await running.api("DELETE", f"/v1/api-tokens/{answer['id']}")
    assert status == 200
    assert answer["already_revoked"]


async def test_a_token_with_a_changed_secret_is_refused(served: tuple[Running, str]) -> None:
    running, url = served
    token = await make_token(running, "status")
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    status, _, body = await call(url, "GET", "/v1/status", changed)
    assert status == 401
    assert body["error"]["code"] == "token-invalid"


async def test_tcp_refuses_a_host_that_is_not_this_computer(served: tuple[Running, str]) -> None:
    """A page whose name was rebound to 127.0.0.1 sends its own name as Host."""
    running, url = served
    token = await make_token(running, "status")
    status, _, body = await call(url, "GET", "/v1/status", token, Host="evil.example:7719")
    assert status == 403
    assert body["error"]["code"] == "host-refused"
    port = url.rpartition(":")[2]
    assert (await call(url, "GET", "/v1/status", token, Host=f"localhost:{port}"))[0] == 200


async def test_the_unix_socket_is_the_owner_without_a_token_and_the_token_with_one(
    served: tuple[Running, str],
) -> None:
    running, _ = served
    token = await make_token(running, "status")
    assert (await running.api("GET", "/v1/outbox"))[0] == 200  # the CLI: same user, no token
    connector = aiohttp.UnixConnector(path=str(running.daemon.config.api_socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(
            "http://pli/v1/outbox", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "scope-missing"


async def test_the_store_keeps_no_token(served: tuple[Running, str]) -> None:
    running, _ = served
    token = await make_token(running, "send")
    secret = token.split("_", 2)[2].encode()  # pli_<id>_<secret>; the secret may hold "_"
    status, listed = await running.api("GET", "/v1/api-tokens")
    assert status == 200
    assert [t["name"] for t in listed] == ["LGC"]
    assert "token" not in listed[0]
    assert "secret_hash" not in listed[0]
    database = running.daemon.store.path
    stored = b"".join(
        p.read_bytes() for p in database.parent.iterdir() if p.name.startswith(database.name)
    )
    assert secret not in stored
    assert token.encode() not in stored


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "LGC", "scopes": ["everything"]}, "“everything” is not a scope"),
        ({"name": "LGC", "scopes": []}, "at least one scope"),
        ({"name": "", "scopes": ["send"]}, "Name the token"),
        ({"name": "0123456789abcdef", "scopes": ["send"]}, "cannot look like a token id"),
        ({"name": "LGC", "scopes": ["send"], "expires_at": 1}, "expires in the future"),
    ],
)
async def test_a_wrong_token_request_is_refused_in_words(
    served: tuple[Running, str], body: dict[str, Any], words: str
) -> None:
    running, _ = served
    status, answer = await running.api("POST", "/v1/api-tokens", body)
    assert status == 400
    assert words in answer["error"]["message"]


async def test_a_name_is_taken_until_its_token_is_revoked(served: tuple[Running, str]) -> None:
    running, _ = served
    await make_token(running, "send")
    status, answer = await running.api(
        "POST", "/v1/api-tokens", {"name": "LGC", "scopes": ["send"]}
    )
    assert status == 400
    assert "exists already" in answer["error"]["message"]
    await running.api("DELETE", "/v1/api-tokens/LGC")
    await make_token(running, "send")
    status, answer = await running.api("DELETE", "/v1/api-tokens/nobody")
    assert status == 404
    assert answer["error"]["code"] == "token-unknown"


async def test_the_tcp_port_is_off_by_default(tmp_path: Path) -> None:
    running = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        _, status = await running.api("GET", "/v1/status")
        assert status["api_tcp"] == {"address": None, "error": None}
    finally:
        await running.stop()


@pytest.mark.parametrize("listen", ["0.0.0.0:7719", "192.168.1.20:7719", "example.org"])
def test_api_listen_is_loopback_only(tmp_path: Path, listen: str) -> None:
    (tmp_path / "config.toml").write_text(f'api_listen = "{listen}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="this computer only"):
        config.load(tmp_path)


def test_api_listen_takes_the_default_port(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('api_listen = "127.0.0.1"\n', encoding="utf-8")
    assert config.load(tmp_path).api_tcp == ("127.0.0.1", 7719)


async def test_pli_api_token_create_list_revoke(served: tuple[Running, str]) -> None:
    running, url = served
    scope = ["--scope", "send,inbox:read", "--scope", "status"]
    create = ["api-token", "create", "--name", "LGC", *scope, "--expires", "90d"]
    made = await pli(running.home, "--json", *create)
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)
    assert token["scopes"] == ["inbox:read", "send", "status"]
    assert 89 * 86400 < token["expires_at"] - time.time() <= 90 * 86400
    assert (await call(url, "GET", "/v1/status", token["token"]))[0] == 200
    shown = await pli(running.home, "api-token", "create", "--name", "Agenda", "--scope", "events")
    assert shown.exit_code == 0
    assert "pli_" in shown.output
    assert "cannot show it again" in shown.output
    listed = await pli(running.home, "--json", "api-token", "list")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["name"], r["state"]) for r in rows] == [("LGC", "active"), ("Agenda", "active")]
    assert "pli_" not in listed.output
    revoked = await pli(running.home, "api-token", "revoke", "LGC")
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    assert (await call(url, "GET", "/v1/status", token["token"]))[0] == 401
    table = (await pli(running.home, "api-token", "list")).output
    assert "revoked" in table
    assert "Agenda" in table


@pytest.mark.parametrize(
    ("args", "exit_code", "words"),
    [
        (["create", "--name", "X", "--scope", "all"], 1, "is not a scope"),
        (["create", "--name", "X", "--scope", "send", "--expires", "soon"], 2, "not a lifetime"),
        (["create", "--name", "X", "--scope", "send", "--expires", "2001-01-01"], 1, "future"),
        (["create", "--scope", "send"], 2, "--name"),
        (["revoke", "nobody"], 1, "No API token"),
    ],
)
async def test_pli_api_token_mistakes(
    served: tuple[Running, str], args: list[str], exit_code: int, words: str
) -> None:
    running, _ = served
    result = await pli(running.home, "api-token", *args)
    assert result.exit_code == exit_code, result.output
    assert words in result.output


def test_pli_api_token_without_a_daemon_exits_3(tmp_path: Path) -> None:
    result = run("--home", str(tmp_path), "api-token", "list")
    assert result.exit_code == 3
