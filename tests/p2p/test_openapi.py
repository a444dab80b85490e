"""The local API's OpenAPI description: complete, committed, served, and valid.

The description is ``p2p/api/openapi.py``; docs/openapi.json is its text. A route
added to ``server.build_app`` without a line in ``openapi.OPERATIONS`` fails the
first test, which names it. tests/p2p/test_openapi_daemon.py runs schemathesis
against a real daemon with it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from p2p.api import openapi
from p2p.api.server import build_app
from p2p.daemon import harness

from .conftest import Running, start_daemon

DOCS = Path(__file__).parents[2] / "docs" / "openapi.json"


def served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    daemon = harness.open_daemon(tmp_path / "a", "Dr Alice Martin")
    try:
        app = build_app(daemon)
    finally:
        daemon.store.close()
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def test_every_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    served = served_routes(tmp_path)
    missing = sorted(served - openapi.OPERATIONS.keys())
    assert not missing, (
        f"these routes are not in the OpenAPI description: add each to OPERATIONS in "
        f"p2p/api/openapi.py (its answer in shapes.py), then run "
        f"`python -m p2p.api.openapi docs/openapi.json`: {missing}"
    )
    stale = sorted(openapi.OPERATIONS.keys() - served)
    assert not stale, f"p2p/api/openapi.py describes routes the API does not have: {stale}"


def test_docs_openapi_json_is_the_description() -> None:
    assert DOCS.read_text(encoding="utf-8") == openapi.text(), (
        "docs/openapi.json is not the API's description any more: run "
        "`python -m p2p.api.openapi docs/openapi.json` and commit it"
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_the_description_is_whole() -> None:
    """Every reference resolves; every operation has a success and an error answer."""
    described = openapi.document()
    assert described["openapi"] == "3.1.0"
    components = described["components"]["schemas"]
    for ref in _refs(described):
        assert ref.startswith("#/components/schemas/")
        assert ref.rpartition("/")[2] in components, ref
    for path, item in described["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "default" in answers, (method, path)
            assert any(code.startswith("2") for code in answers), (method, path)
            assert operation["x-pli-scope"], (method, path)


def test_bodies_come_from_the_structs() -> None:
    """The request bodies are msgspec's schemas of bodies.py: a field added there shows."""
    described = openapi.document()
    token = described["components"]["schemas"]["NewToken"]
    assert set(token["properties"]) == {"name", "scopes", "expires_at"}
    assert token["required"] == ["name", "scopes"]
    operation = described["paths"]["/v1/api-tokens"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewToken"
    }


def test_the_scopes_shown_are_the_ones_enforced() -> None:
    from p2p.api.scopes import OWNER, scope_of

    for path, item in openapi.document()["paths"].items():
        for method, operation in item.items():
            scope = scope_of(method.upper(), path)
            assert operation["x-pli-scope"] == scope
            if scope == OWNER:
                assert "security" not in operation
            else:
                assert operation["security"][0]["token"] in ([], [scope])


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    daemon = await start_daemon(tmp_path / "a", "Dr Alice Martin", api_listen="127.0.0.1:0")
    yield daemon
    await daemon.stop()


async def test_the_daemon_serves_it_to_its_user_and_to_any_token(running: Running) -> None:
    status, served = await running.api("GET", "/v1/openapi.json")
    assert status == 200
    assert served == json.loads(openapi.text())
    _, answer = await running.api("POST", "/v1/api-tokens", {"name": "LGC", "scopes": ["events"]})
    _, daemon_status = await running.api("GET", "/v1/status")
    url = f"http://{daemon_status['api_tcp']['address']}/v1/openapi.json"
    headers = {"Authorization": f"Bearer {answer['token']}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            assert response.status == 200
            assert await response.json() == served
        async with session.get(url) as response:
            assert response.status == 401
