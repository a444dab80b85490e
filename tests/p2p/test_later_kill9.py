"""kill -9 around a later receipt: two ``pli daemon`` processes, nothing lost, nothing twice.

The recipient (B) is killed the moment its integrated receipts are signed (on
disk, maybe not sent); the sender (A) is killed while B's read receipts reach
it (maybe stored, maybe not acknowledged). After the restarts every document
has, at A, exactly one integrated and one read receipt, each the very bytes B
signed before it was killed: B signed each layer once and A stored each once.
(The kills do fall mid-flight: after either restart, some receipts are at A and
some still wait at B, and differently from run to run.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.practice import PracticeProcess, wait_until

from .conftest import send_letters

LETTERS = 8

pytestmark = pytest.mark.slow


def signed(practice: PracticeProcess, doc_id: str, signer: str) -> dict[str, str]:
    """Status -> the receipt (base64) ``signer`` signed about ``doc_id``, held by ``practice``."""
    receipts = practice.client.get(f"/v1/documents/{doc_id}/receipts")
    found = [r for r in receipts if r["recipient"] == signer]
    by_status = {r["status"]: r["receipt"] for r in found}
    assert len(by_status) == len(found), found  # one receipt per status, never two
    return by_status


def said(a: PracticeProcess, layer: str) -> dict[str, Any]:
    return {row["id"]: row[layer] for row in a.client.get("/v1/outbox")}


def test_kill9_of_either_side_around_later_receipts_loses_and_duplicates_nothing(
    processes: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = processes
    ids = send_letters(a, b, tmp_path, LETTERS)
    b_id = b.identity()["peer_id"]

    # B signs "integrated" (902 for the first letter) and dies at once.
    for doc in ids:
        body = {"error_code": 902} if doc == ids[0] else {}
        assert b.client.post(f"/v1/documents/{doc}/integrated", body)["receipt"] == "queued"
    b.kill9()
    b.start()
    wait_until(lambda: all(v is not None for v in said(a, "integrated").values()), 30)

    # B signs "read"; A dies while they arrive, and comes back on the same port.
    for doc in ids:
        assert b.client.post(f"/v1/documents/{doc}/read", {})["receipt"] == "queued"
    a.kill9()
    a.start()
    a.send(b, tmp_path / "lettre-0.txt", kind="letter")  # a session: B sends what waited
    wait_until(lambda: all(said(a, "read")[doc] is not None for doc in ids), 30)
    wait_until(lambda: json.loads(b.pli("--json", "status").stdout)["receipts_unsent"] == 0, 30)

    # Asked again after the restarts, B signs nothing new.
    for doc in ids[1:]:
        assert b.client.post(f"/v1/documents/{doc}/integrated", {})["receipt"] == "already"
        assert b.client.post(f"/v1/documents/{doc}/read", {})["receipt"] == "already"
    for doc in ids:
        at_b, at_a = signed(b, doc, b_id), signed(a, doc, b_id)
        layers = {"delivered", "read", "not-integrated:902" if doc == ids[0] else "integrated"}
        assert set(at_b) == layers
        assert at_a == at_b  # the same bytes: signed once by B, stored once by A
    counted = json.loads(a.pli("--json", "status").stdout)
    assert counted["integrated"] == LETTERS - 1
    assert counted["not_integrated"] == 1
    assert counted["read"] == LETTERS
