"""A lost laptop's key, revoked from a replacement machine, is refused by every peer.

Three real ``pli daemon`` processes on loopback, A, B and C, all paired with
each other (discovery off). A's printed certificate is pushed by `pli revoke`
from a brand-new home (no identity, no daemon) that reaches only B. B refuses
A's key at once, C learns it through B's gossip, and A's old daemon, which
still believes it is paired, delivers nothing more.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, paired, wait_until


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[PracticeProcess, PracticeProcess, PracticeProcess]]:
    nodes = [PracticeProcess(tmp_path / name, f"Dr {name.upper()}") for name in "abc"]
    with paired(*nodes):
        yield nodes[0], nodes[1], nodes[2]


def revoked(node: PracticeProcess, who: PracticeProcess) -> bool:
    peer_id = who.identity()["peer_id"]
    return any(row["peer_id"] == peer_id for row in node.client.get("/v1/revocations"))


def pli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2p", "--home", str(home), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_certificate_pushed_to_one_peer_reaches_all_and_the_old_key_is_refused(
    three: tuple[PracticeProcess, PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b, c = three
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    first = a.send(c, letter)
    wait_until(lambda: a.outbox_state(first) == "delivered", timeout=30)
    c_inbox, b_inbox = c.inbox_ids(), b.inbox_ids()

    replacement = tmp_path / "replacement"  # the new laptop: no identity, no daemon
    replacement.mkdir(mode=0o700)
    (replacement / "config.toml").write_text("discovery = false\n")
    certificate = a.home / "revocation-certificate.txt"
    started = time.monotonic()
    result = pli(replacement, "revoke", "--certificate", str(certificate), "--address", b.address)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["via"] == "direct"
    assert answer["pushed"] == [{"address": b.address, "peer_id": None, "result": "stored"}]
    wait_until(lambda: revoked(b, a), timeout=10)
    at_b = time.monotonic() - started
    wait_until(lambda: revoked(c, a), timeout=10)  # never reached directly: B's gossip
    at_c = time.monotonic() - started
    print(f"\nB refuses A's key {at_b:.2f} s after `pli revoke`, C {at_c:.2f} s after")
    assert not list(replacement.glob("keys/*"))  # it needed no identity of its own

    for peer in (b, c):
        rows = {row["peer_id"]: row for row in peer.client.get("/v1/peers")}
        assert rows[a.identity()["peer_id"]]["state"] == "revoked"
    to_b, to_c = a.send(b, letter), a.send(c, letter)  # A's old daemon still tries
    wait_until(
        lambda: all(
            e["attempts"] >= 2 for e in a.client.get("/v1/outbox") if e["id"] in (to_b, to_c)
        ),
        timeout=30,
    )
    for refused in (to_b, to_c):  # still in A's outbox ("sending" during a retry)
        assert a.outbox_state(refused) in ("queued", "sending")
    assert b.inbox_ids() == b_inbox  # nothing new stored
    assert c.inbox_ids() == c_inbox
    assert first in c.inbox_ids()  # what came before the revocation is kept
    for peer in (b, c):
        assert "its key is revoked" in peer.logs()


def test_revoke_yes_on_the_machine_itself_tells_its_peers(
    three: tuple[PracticeProcess, PracticeProcess, PracticeProcess],
) -> None:
    a, b, c = three
    result = pli(a.home, "revoke", "--yes")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["via"] == "daemon"
    assert sorted(p["result"] for p in answer["pushed"]) == ["stored", "stored"]
    assert revoked(b, a)
    assert revoked(c, a)


def test_an_altered_certificate_is_refused_and_nothing_is_sent(
    three: tuple[PracticeProcess, PracticeProcess, PracticeProcess], tmp_path: Path
) -> None:
    a, b, _c = three
    text = (a.home / "revocation-certificate.txt").read_text()
    token = text[text.index("PLI1-REVOKE:") :].split()[0]
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    altered = tmp_path / "altered.txt"
    altered.write_text(text.replace(token, flipped))
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    (empty / "config.toml").write_text("discovery = false\n")
    result = pli(empty, "revoke", "--certificate", str(altered), "--address", b.address)
    assert result.returncode == 4
    assert "not a valid revocation certificate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not revoked(b, a)
