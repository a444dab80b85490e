"""The sender's CLI shows what its recipients said after delivery: two ``pli daemon``
processes, ``pli`` run as a person runs it.

``pli show DOC`` prints, under each recipient, « integrated » (or the error's code
and words) and « read »; ``pli status`` (and ``--json``) counts them, and the
recipient's status counts its later receipts not yet with their sender;
``pli outbox --json`` carries them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from p2p.cli.practice import PracticeProcess, wait_until

from .conftest import send_letters


def outbox(a: PracticeProcess) -> dict[str, dict[str, Any]]:
    """``pli --json outbox``: document id -> its (only) recipient's entry."""
    listed = a.pli("--json", "outbox").stdout.splitlines()
    return {row["id"]: row for row in map(json.loads, listed)}


def test_show_status_and_outbox_carry_integrated_and_read(
    processes: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = processes
    first, second, third = send_letters(a, b, tmp_path, 3)
    b.client.post(f"/v1/documents/{first}/integrated", {})
    b.client.post(f"/v1/documents/{first}/read", {})
    b.client.post(f"/v1/documents/{second}/integrated", {"error_code": 902})
    wait_until(lambda: outbox(a)[first]["read"] is not None, 20)
    wait_until(lambda: outbox(a)[second]["integrated"] is not None, 20)

    shown = a.pli("show", first).stdout
    assert "To Dr Bob Durand: delivered, signed receipt" in shown
    assert "  Integrated into their software: " in shown
    assert "  Read: " in shown
    failed = a.pli("show", second).stdout
    assert "  Not integrated: " in failed
    assert ", error 902 Unknown patient (signed)" in failed
    untouched = a.pli("show", third).stdout
    assert "Integrated" not in untouched
    assert "Read:" not in untouched

    rows = outbox(a)
    assert rows[first]["integrated"]["status"] == "integrated"
    assert rows[second]["integrated"]["code"] == 902
    assert rows[third]["integrated"] is None
    assert rows[third]["read"] is None

    counted = json.loads(a.pli("--json", "status").stdout)
    assert (counted["integrated"], counted["not_integrated"], counted["read"]) == (1, 1, 1)
    status = a.pli("status").stdout
    assert "1 integrated, 1 not integrated, 1 read (recipients' signed receipts)" in status
    assert "Our receipts" in status
    assert "integrated on, read off" in status  # A keeps its reads to itself (the default)
    recipient = json.loads(b.pli("--json", "status").stdout)
    assert recipient["signs_receipts"] == {"integrated": True, "read": True}
    assert recipient["receipts_unsent"] == 0  # all three are with their sender
    assert (recipient["integrated"], recipient["read"]) == (0, 0)  # it sent nothing itself


def test_status_counts_the_receipts_waiting_for_a_sender_away(
    processes: tuple[PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b = processes
    (doc,) = send_letters(a, b, tmp_path, 1)
    a.stop()
    answer = b.client.post(f"/v1/documents/{doc}/integrated", {})
    assert answer["receipt"] == "queued"
    assert json.loads(b.pli("--json", "status").stdout)["receipts_unsent"] == 1
    assert "integrated on, read on; 1 not with their sender yet" in b.pli("status").stdout
    a.start()
    a.send(b, tmp_path / "lettre-0.txt", kind="letter")  # a session: B sends what waited
    wait_until(lambda: json.loads(b.pli("--json", "status").stdout)["receipts_unsent"] == 0, 30)
    assert json.loads(a.pli("--json", "status").stdout)["integrated"] == 1
