"""schemathesis against a real ``pli daemon``: no answer breaks the description, no 5xx.

Two practices run as ``pli daemon`` processes, paired, with a letter delivered each
way and marked integrated, so the listings the description promises are not empty.
Alice serves the API on a loopback TCP port; schemathesis (positive data from
docs/openapi.json's schemas, a bounded number of examples per operation,
deterministic so the suite is stable) calls every operation with a token holding
every scope, and checks each answer: no server error, a documented status and
content type, a body that matches its schema.

Left out, each for a reason: operations that reach beyond this computer or would
end the test's practice (``POST /v1/peers/add``, ``POST /v1/pair/accept``: they dial
the address given or look on the LAN; ``POST /v1/mailboxes``: it connects to the
URL given; ``POST /v1/revocations``: ``{"self": true}`` revokes Alice herself), and
the event stream, which never ends (``GET /v1/events``; tests/web/ reads it). Each
has its own tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from p2p.api import openapi
from p2p.api.scopes import SCOPES
from p2p.cli.practice import PracticeProcess, paired, wait_until

#: Examples per operation: 12 keep ~45 operations to seconds. A deeper, random run by
#: hand: PLI_API_EXAMPLES=500 pytest tests/p2p/test_openapi_daemon.py
EXAMPLES = int(os.environ.get("PLI_API_EXAMPLES", "12"))

config = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "positive", "deterministic": "PLI_API_EXAMPLES" not in os.environ},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
schema = (
    schemathesis.openapi.from_dict(openapi.document(), config=config)
    .exclude(method="POST", path=["/v1/peers/add", "/v1/pair/accept"])
    .exclude(method="POST", path=["/v1/mailboxes", "/v1/revocations"])
    .exclude(method="GET", path="/v1/events")
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Alice:
    """Alice's API on TCP, a token with every scope, and the ids she holds."""

    base_url: str
    headers: dict[str, str]
    sent: str  # a letter to Bob, delivered and integrated
    received: str  # a letter from Bob
    bob: str  # Bob's peer id


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alice]:
    """Alice and Bob as daemon processes, paired, a letter delivered each way."""
    root = tmp_path_factory.mktemp("contract")
    a = PracticeProcess(root / "a", "Dr Alice Martin", api_listen="127.0.0.1:0")
    b = PracticeProcess(root / "b", "Dr Bob Durand")
    with paired(a, b):
        letter = root / "lettre.txt"
        letter.write_text("Cher confrère,\n", encoding="utf-8")
        sent, received = a.send(b, letter, "letter"), b.send(a, letter, "letter")
        wait_until(lambda: a.outbox_state(sent) == "delivered", 30)
        wait_until(lambda: received in a.inbox_ids(), 30)
        a.client.post(f"/v1/documents/{received}/integrated", {})
        b.client.post(f"/v1/documents/{sent}/integrated", {})
        wait_until(lambda: a.client.get("/v1/outbox")[0].get("integrated") is not None, 30)
        made = a.client.post("/v1/api-tokens", {"name": "contract", "scopes": list(SCOPES)})
        address = a.client.get("/v1/status")["api_tcp"]["address"]
        headers = {"Authorization": f"Bearer {made['token']}"}
        yield Alice(f"http://{address}", headers, sent, received, b.identity()["peer_id"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_answer_breaks_the_description(case: Any, alice: Alice) -> None:
    answer = case.call_and_validate(
        base_url=alice.base_url, headers=alice.headers, checks=CHECKS, timeout=30
    )
    assert answer.status_code < 500, "no answer is a server error"


def test_answers_about_real_documents_and_peers_match(alice: Alice) -> None:
    """Random ids find nothing: the routes that take one are called with real ones too."""
    with_ids: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/v1/documents/{doc}", {"doc": alice.sent}, None),
        ("GET", "/v1/documents/{doc}", {"doc": alice.received}, None),
        ("GET", "/v1/documents/{doc}/receipts", {"doc": alice.sent}, None),
        ("GET", "/v1/documents/{doc}/receipts", {"doc": alice.received}, None),
        ("GET", "/v1/documents/{doc}/evidence", {"doc": alice.received}, None),
        ("GET", "/v1/documents/{doc}/files/{index}", {"doc": alice.received, "index": "0"}, None),
        ("POST", "/v1/documents/{doc}/read", {"doc": alice.received}, None),
        ("POST", "/v1/documents/{doc}/exported", {"doc": alice.received}, None),
        ("POST", "/v1/documents/{doc}/integrated", {"doc": alice.received}, {}),
        ("POST", "/v1/outbox/{doc}/{peer}/retry", {"doc": alice.sent, "peer": alice.bob}, None),
        ("POST", "/v1/peers/{peer}/name", {"peer": alice.bob}, {"name": "Dr Bob D."}),
        ("POST", "/v1/peers/{peer}/accept-name", {"peer": alice.bob}, None),
    ]
    statuses = []
    for method, path, ids, body in with_ids:
        operation = schema[path][method]
        case = (
            operation.Case(path_parameters=ids)
            if body is None
            else operation.Case(path_parameters=ids, body=body)
        )
        response = case.call_and_validate(
            base_url=alice.base_url, headers=alice.headers, checks=CHECKS, timeout=30
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [200] * 9 + [400]  # retry: it was delivered already
    assert statuses[10] == 200


def _operations(described: Any) -> set[tuple[str, str]]:
    return {
        (result.ok().method.upper(), result.ok().path)
        for result in described.get_all_operations()
        if isinstance(result, Ok)
    }


def test_the_left_out_operations_are_few() -> None:
    """The exclusions above stay a short, explained list."""
    everything = schemathesis.openapi.from_dict(openapi.document())
    assert _operations(everything) - _operations(schema) == {
        ("POST", "/v1/peers/add"),
        ("POST", "/v1/pair/accept"),
        ("POST", "/v1/mailboxes"),
        ("POST", "/v1/revocations"),
        ("GET", "/v1/events"),
    }


def test_the_checked_practice_has_something_in_each_listing(
    alice: Alice,
) -> None:
    """The listings the schemas describe hold entries (an empty list checks no item)."""
    import json
    import urllib.request

    base_url, headers = alice.base_url, alice.headers
    for path in ("/v1/peers", "/v1/outbox", "/v1/inbox"):
        request = urllib.request.Request(base_url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()), path
    request = urllib.request.Request(base_url + "/v1/outbox", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())[0]["integrated"] is not None
