"""Revocation on the peer port: accepted from anyone, checked, stored, applied, bounded.

Two in-process daemons on loopback with real keys and sockets; statements are
POSTed the way any stranger could, without a Noise session.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from p2p.daemon.harness import free_port
from p2p.net.transport import REVOKE_PATH
from protocol import IdentityKey, Revocation, limits

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, send_file


async def post(target: Running, body: bytes, **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{target.address}{REVOKE_PATH}", data=body, headers=headers) as r,
    ):
        return r.status


def revocation_of(daemon: Running) -> Revocation:
    return Revocation.issue(daemon.daemon.me.identity, now=int(time.time()))


async def test_a_statement_from_anyone_revokes_the_key_and_keeps_its_documents(
    two: tuple[Running, Running], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    before = await send_file(a, b, letter)
    await wait_for(lambda: delivered(a, before))
    a_hex = a.daemon.me.peer_id.hex

    assert await post(b, revocation_of(a).to_wire()) == 201  # no session: anyone may bring it
    row = b.daemon.store.revocation(a_hex)
    assert row is not None
    assert row.known_peer
    peer = b.daemon.store.peer(a_hex)
    assert peer is not None
    assert peer.state == "revoked"
    assert [r.doc_id for r in b.daemon.store.inbox()] == [before]  # kept
    await wait_for(lambda: a_hex not in b.daemon.online())  # the live session was cut

    after = await send_file(a, b, letter)  # A's old daemon does not know it is revoked
    await wait_for(
        lambda: any(r.doc_id == after and r.attempts > 0 for r in a.daemon.store.outbox())
    )
    assert not delivered(a, after)
    assert [r.doc_id for r in b.daemon.store.inbox()] == [before]  # nothing new stored
    assert "its key is revoked" in caplog.text  # B refused A's handshake


async def test_the_same_statement_twice_is_known_and_queued_letters_are_cancelled(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    await a.stop()  # A is away: B's letter to it waits in the outbox
    letter = tmp_path / "lettre.txt"
    letter.write_text("Réponse\n")
    doc_id = await send_file(b, a, letter)
    statement = revocation_of(a).to_wire()
    assert await post(b, statement) == 201
    assert await post(b, statement) == 200
    (row,) = [r for r in b.daemon.store.outbox() if r.doc_id == doc_id]
    assert row.state == "cancelled"
    status, body = await b.api("POST", "/v1/peers", {"card": _card(a), "address": a.address})
    assert status == 403
    assert "revoked" in body["error"]["message"]


def _card(node: Running) -> str:
    import base64

    return base64.b64encode(node.daemon.signed_card()).decode()


async def test_forged_altered_or_misdirected_statements_are_refused(
    two: tuple[Running, Running],
) -> None:
    a, b = two
    wire = revocation_of(a).to_wire()
    altered = bytearray(wire)
    altered[40] ^= 0x01  # the time, after signing
    stranger = IdentityKey.generate()
    own = Revocation.issue(stranger, now=int(time.time())).to_wire()
    forged = own[:1] + a.daemon.me.public.key + own[33:]  # a stranger's signature, A's key
    for bad in (bytes(altered), forged, wire[:-1], b"", b"\x02" + wire[1:]):
        assert await post(b, bad) == 400
    assert b.daemon.store.revocations() == []
    peer = b.daemon.store.peer(a.daemon.me.peer_id.hex)
    assert peer is not None
    assert peer.state == "paired"


async def test_an_oversized_statement_is_refused_without_reading_it(
    two: tuple[Running, Running],
) -> None:
    _a, b = two
    wire = revocation_of(b).to_wire()
    assert await post(b, wire + b"\x00") == 413
    assert await post(b, wire + b"\x00" * 10_000_000) == 413

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"\x00" * 1000

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{b.address}{REVOKE_PATH}", data=endless()) as response,
    ):
        assert response.status == 413  # chunked, no length: cut at 106 bytes
    assert b.daemon.store.revocations() == []


async def test_statements_are_rate_limited_per_source(two: tuple[Running, Running]) -> None:
    _a, b = two
    statements = [Revocation.issue(IdentityKey.generate(), now=1).to_wire() for _ in range(40)]
    answers = [await post(b, wire) for wire in statements]
    burst = limits.REVOCATION_BURST_PER_IP
    assert answers[:burst].count(201) >= burst - 1  # refill during the run may add one
    assert answers.count(429) >= len(statements) - burst - 5
    assert len(b.daemon.store.revocations()) == answers.count(201)


async def test_gossip_reaches_a_peer_never_told_directly(tmp_path: Path) -> None:
    a, b, c = [await start_daemon(tmp_path / n, f"Dr {n}") for n in "abc"]
    try:
        for one, other in ((a, b), (a, c), (b, c)):
            await pair(one, other)
        a_hex = a.daemon.me.peer_id.hex
        assert await post(b, revocation_of(a).to_wire()) == 201  # B only
        await wait_for(lambda: c.daemon.store.revocation(a_hex) is not None, timeout=10)
        row = c.daemon.store.revocation(a_hex)
        assert row is not None
        assert row.known_peer
        await wait_for(lambda: not b.daemon.revocations._pending)  # C acknowledged
        assert a.daemon.store.revocation(a_hex) is None  # never pushed back to the revoked one
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_statements_of_unknown_identities_are_kept_but_not_passed_on(
    two: tuple[Running, Running],
) -> None:
    a, b = two
    stranger = Revocation.issue(IdentityKey.generate(), now=int(time.time()))
    assert await post(b, stranger.to_wire()) == 201
    row = b.daemon.store.revocation(stranger.peer_id.hex)
    assert row is not None
    assert not row.known_peer
    assert not b.daemon.revocations._pending
    assert a.daemon.store.revocations() == []


async def test_pli_revoke_with_a_certificate_needs_no_identity_nor_daemon(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    certificate = tmp_path / "certificate.txt"
    certificate.write_text(f"printed and scanned back\n{revocation_of(a).to_text()}\n")
    home = tmp_path / "new-laptop"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("discovery = false\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "p2p",
        "--home",
        str(home),
        "revoke",
        "--certificate",
        str(certificate),
        "--address",
        b.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "told: it will refuse this key from now on" in out.decode()
    assert b.daemon.store.revocation(a.daemon.me.peer_id.hex) is not None
    assert not (home / "keys").exists()
    nobody = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "p2p",
        "--home",
        str(home),
        "revoke",
        "--certificate",
        str(certificate),
        "--address",
        f"127.0.0.1:{free_port()}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await nobody.communicate()
    assert nobody.returncode == 1
    assert "nobody was told yet" in err.decode()


async def test_revoking_its_own_identity_is_shown_in_status(two: tuple[Running, Running]) -> None:
    a, b = two
    status, answer = await a.api("POST", "/v1/revocations", {"self": True})
    assert status == 200
    assert answer["self"] is True
    assert [p["result"] for p in answer["pushed"]] == ["stored"]
    assert b.daemon.store.revocation(a.daemon.me.peer_id.hex) is not None
    _, info = await a.api("GET", "/v1/status")
    assert isinstance(info["revoked_since"], int)
    status, answer = await a.api("POST", "/v1/revocations", {"statement": "PLI1-REVOKE:AAAA"})
    assert status == 422
    assert answer["error"]["code"] == "security"


async def test_a_peer_that_was_off_learns_it_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pli.revocation")
    a, b, c = [await start_daemon(tmp_path / n, f"Dr {n}") for n in "abc"]
    nodes = [a, b, c]
    try:
        for one, other in ((a, b), (a, c), (b, c)):
            await pair(one, other)
        await c.stop()  # C is off while B learns it
        a_hex = a.daemon.me.peer_id.hex
        assert await post(b, revocation_of(a).to_wire()) == 201
        await wait_for(lambda: not b.daemon.revocations._tasks)  # the push to C failed
        assert b.daemon.revocations._pending
        nodes[2] = c = await start_daemon(c.home, "Dr c", port=c.port)
        assert c.daemon.store.revocation(a_hex) is None
        letter = tmp_path / "lettre.txt"
        letter.write_text("Bonjour\n")
        await send_file(c, b, letter)  # C's session with B: B is reminded to tell it
        await wait_for(lambda: c.daemon.store.revocation(a_hex) is not None, timeout=10)
        await b.stop()  # and after a restart, B passes on again what it learned lately
        caplog.clear()
        nodes[1] = b = await start_daemon(b.home, "Dr b", port=b.port)
        told = f"passed on to {c.daemon.me.peer_id.hex[:8]}: known"
        await wait_for(lambda: told in caplog.text, timeout=10)
    finally:
        for node in nodes:
            await node.stop()
