"""The revoked state, wherever pli shows a peer or its documents (peers, inbox, show, verify).

In-process daemons on loopback; the CLI runs as a real `pli` process against them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from protocol import Revocation

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, send_file
from .test_revocation import post


async def pli(home: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "p2p",
        "--home",
        str(home),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert b"Traceback" not in err, err.decode()
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_peers_inbox_show_and_verify_say_revoked_since(tmp_path: Path) -> None:
    a, b, c = [await start_daemon(tmp_path / n, f"Dr {n.upper()}") for n in "abc"]
    try:
        await pair(a, b)
        await pair(a, c)  # C is not paired with B: B's gossip does not reach it
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère,\n")
        before = await send_file(a, b, letter)
        await wait_for(lambda: delivered(a, before))
        revocation = Revocation.issue(a.daemon.me.identity, now=int(time.time()))
        assert await post(b, revocation.to_wire()) == 201
        await _peers_and_inbox(b, before)
        await _verify_before_and_after(a, b, c, before, letter, tmp_path)
    finally:
        for node in (a, b, c):
            await node.stop()


async def _peers_and_inbox(b: Running, before: str) -> None:
    code, out, _ = await pli(b.home, "peers")
    assert code == 0
    assert "REVOKED" in out
    assert "pair again with it" in out
    _, out, _ = await pli(b.home, "--json", "peers")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["state"] == "revoked"
    assert isinstance(row["revoked_since"], int)
    day = time.strftime("%Y-%m-%d", time.localtime(row["revoked_since"]))
    _, out, _ = await pli(b.home, "inbox")
    assert f"(revoked since {day})" in out
    _, out, _ = await pli(b.home, "--json", "inbox")
    (entry,) = [json.loads(line) for line in out.splitlines()]
    assert entry["sender_revoked_since"] == row["revoked_since"]
    assert entry["signed_after_revocation"] is False
    _, out, _ = await pli(b.home, "show", before[:12])
    assert f"(revoked since {day})" in out
    assert "came before that" in out


async def _verify_before_and_after(
    a: Running, b: Running, c: Running, before: str, letter: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "exported-by-b"
    exported.mkdir()
    code, _, err = await pli(b.home, "export", before[:12], "--to", str(exported))
    assert code == 0, err
    (sidecar,) = exported.glob("*.pli.json")
    code, out, _ = await pli(b.home, "verify", str(sidecar))
    assert code == 0
    assert "revoked since" in out
    await asyncio.sleep(1.1)  # times are in seconds: "after" is at least the next one
    after = await send_file(a, c, letter)  # C does not know: it accepts, and exports it
    await wait_for(lambda: delivered(a, after))
    from_c = tmp_path / "exported-by-c"
    from_c.mkdir()
    code, _, err = await pli(c.home, "export", after[:12], "--to", str(from_c))
    assert code == 0, err
    (sidecar,) = from_c.glob("*.pli.json")
    code, _, err = await pli(b.home, "verify", str(sidecar))  # B knows the key is revoked
    assert code == 4
    assert "revoked" in err
    code, _, _ = await pli(c.home, "verify", str(sidecar))
    assert code == 0  # C was never told: the signature itself is fine


def test_verify_judges_a_revoked_key_by_the_signing_time_without_a_daemon() -> None:
    from p2p.documents.trust import Keyring, judge
    from p2p.errors import SecurityFailure
    from p2p.storage.trusted import StoredKey
    from protocol import IdentityKey

    key = IdentityKey.generate().public
    stored = StoredKey(key.peer_id.hex, key.key, "Dr A", "revoked", revoked_since=1_800_000_000)
    keyring = Keyring((stored,), frozenset({key.peer_id.fingerprint.replace("-", "")}))
    before = judge(keyring, key.key, signed_at=1_799_999_999)
    assert before.relation == "revoked"
    assert before.as_dict()["revoked_since"] == 1_800_000_000
    for after in (1_800_000_001, None):  # --signer does not override a revocation
        with pytest.raises(SecurityFailure, match="revoked"):
            judge(keyring, key.key, signed_at=after)
