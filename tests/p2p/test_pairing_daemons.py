"""Two daemons find each other by real mDNS on loopback, pair with a code, exchange a letter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Running, start_daemon, wait_for
from .test_exchange import delivered, send_file

LOOPBACK_DISCOVERY: dict[str, Any] = {"discovery": True, "interfaces": ["127.0.0.1"]}


async def pair_by_code(a: Running, b: Running, address: str | None = None) -> tuple[str, str]:
    """A invites, B accepts (both pre-confirm the SAS, as `--yes` does); return both SAS."""
    status, invitation = await a.api("POST", "/v1/pair/invite", {"yes": True})
    assert status == 201, invitation
    body = {"code": invitation["code"], "yes": True}
    if address:
        body["address"] = address
    status, attempt = await b.api("POST", "/v1/pair/accept", body)
    assert status == 202, attempt
    _, b_side = await b.api("GET", f"/v1/pair/{attempt['id']}?timeout=20&until=paired,failed")
    _, a_side = await a.api("GET", f"/v1/pair/{invitation['id']}?timeout=20&until=paired,failed")
    assert b_side["state"] == "paired", b_side
    assert a_side["state"] == "paired", a_side
    return a_side["sas"], b_side["sas"]


async def test_discover_pair_and_send(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin", **LOOPBACK_DISCOVERY)
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", **LOOPBACK_DISCOVERY)
    try:
        assert a.daemon.discovery is not None
        await wait_for(lambda: bool(a.daemon.discovery and a.daemon.discovery.running), 10)
        sas_a, sas_b = await pair_by_code(a, b)
        assert sas_a == sas_b
        assert [p.name for p in a.daemon.store.peers()] == ["Dr Bob Durand"]
        assert [p.name for p in b.daemon.store.peers()] == ["Dr Alice Martin"]
        # Each now recognises the other's hourly hint on the LAN.
        await wait_for(lambda: b.daemon.me.peer_id.hex in a.daemon.dialler.seen, 10)
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère, merci pour votre avis.\n")
        doc_id = await send_file(b, a, letter, kind="letter")
        await wait_for(lambda: delivered(b, doc_id), 10)
    finally:
        await a.stop()
        await b.stop()


async def test_pair_at_an_address_then_unpair(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        await pair_by_code(a, b, address=a.address)
        kept = tmp_path / "avant.txt"
        kept.write_text("before unpairing\n")
        before = await send_file(b, a, kept, kind="letter")
        await wait_for(lambda: delivered(b, before), 10)
        status, removed = await a.api("DELETE", "/v1/peers/Dr Bob Durand")
        assert status == 200, removed
        letter = tmp_path / "lettre.txt"
        letter.write_text("after unpairing\n")
        doc_id = await send_file(b, a, letter, kind="letter")
        await wait_for(lambda: any(r.attempts > 0 for r in b.daemon.store.outbox()), 10)
        assert not delivered(b, doc_id)
        assert [row.doc_id for row in a.daemon.store.inbox()] == [before]  # documents stay
        status, inbox = await a.api("GET", "/v1/inbox")
        assert status == 200
        assert [entry["id"] for entry in inbox] == [before]
    finally:
        await a.stop()
        await b.stop()


async def test_wrong_code_is_refused_and_burns_the_invitation(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        _, invitation = await a.api("POST", "/v1/pair/invite", {"yes": True})
        nameplate, secret = invitation["code"].split("-")
        wrong = f"{nameplate}-{(int(secret) + 1) % 10**7:07d}"
        _, attempt = await b.api(
            "POST", "/v1/pair/accept", {"code": wrong, "yes": True, "address": a.address}
        )
        _, b_side = await b.api("GET", f"/v1/pair/{attempt['id']}?timeout=20&until=paired,failed")
        assert b_side["state"] == "failed"
        assert "code was wrong" in b_side["message"]
        retry = {"code": invitation["code"], "yes": True, "address": a.address}
        _, again = await b.api("POST", "/v1/pair/accept", retry)
        _, second = await b.api("GET", f"/v1/pair/{again['id']}?timeout=20&until=paired,failed")
        assert second["state"] == "failed"
        assert a.daemon.store.peers() == []
        assert b.daemon.store.peers() == []
    finally:
        await a.stop()
        await b.stop()
