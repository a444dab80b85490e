"""Pairing through the mailbox: two practices that share only a real nats-server.

Neither can dial the other (no discovery, each advertises an address where
nothing listens), so the code or fingerprint exchange runs through the
mailbox's rendezvous subjects; then a letter goes the same way and its signed
receipt comes back. A wrong code is refused on both sides, a fingerprint that
is nobody's gets a clear answer, and the server stored nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import kill_all, wait_until
from protocol import WRONG_CODE_MESSAGE, LocalIdentity, parse_code
from tests.p2p.natsserver import NatsServer, mailbox_state, member_key, server_for
from tests.p2p.test_mailbox_daemons import LETTER, PATIENT, outbox_entry, send_letter

pytestmark = pytest.mark.slow

#: Where each practice says it listens: nothing does, so no direct path exists.
NOWHERE = ["127.0.0.1:9"]

Strangers = tuple[DaemonProcess, DaemonProcess, NatsServer]


@pytest.fixture
def strangers(tmp_path: Path) -> Iterator[Strangers]:
    """Two practices, not paired, members of one real server and connected to it."""
    a = DaemonProcess(tmp_path / "a", "Dr A Martin", advertise_addresses=NOWHERE)
    b = DaemonProcess(tmp_path / "b", "Dr B Durand", advertise_addresses=NOWHERE)
    server = server_for(tmp_path / "nats", [member_key(a), member_key(b)]).start()
    try:
        for daemon in (a, b):
            daemon.start()
            daemon.pli("mailbox", "add", server.url)
        for daemon in (a, b):
            wait_until(lambda d=daemon: mailbox_state(d) == "connected", timeout=20)
        yield a, b, server
    finally:
        kill_all(a, b)
        server.stop()


def settled(daemon: DaemonProcess, key: str) -> dict[str, Any]:
    answer: dict[str, Any] = daemon.client.get(f"/v1/pair/{key}?timeout=30&until=paired,failed")
    return answer


def invite(daemon: DaemonProcess) -> dict[str, Any]:
    invitation: dict[str, Any] = daemon.client.post("/v1/pair/invite", {"yes": True})
    return invitation


def peer_names(daemon: DaemonProcess) -> list[str]:
    return [row["name"] for row in daemon.client.get("/v1/peers")]


def test_pair_by_code_through_the_mailbox_then_a_letter_and_its_receipt(
    strangers: Strangers, tmp_path: Path
) -> None:
    a, b, server = strangers
    invitation = invite(a)
    accepted = b.client.post("/v1/pair/accept", {"code": invitation["code"], "yes": True})
    assert accepted["address"] == f"mailbox {server.url}"
    b_side, a_side = settled(b, accepted["id"]), settled(a, invitation["id"])
    assert (a_side["state"], b_side["state"]) == ("paired", "paired"), (a_side, b_side)
    assert a_side["sas"] == b_side["sas"]
    assert peer_names(a) == ["Dr B Durand"]
    assert peer_names(b) == ["Dr A Martin"]
    for daemon in (a, b):  # the mailbox's name is no address to dial
        assert all("mailbox" not in address for address in _addresses(daemon))

    doc_id = send_letter(a, b, tmp_path)
    wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=60)
    assert outbox_entry(a, doc_id)["via"] == f"mailbox {server.url}"
    assert outbox_entry(a, doc_id)["receipt_via"] == "mailbox"
    assert b.inbox_ids() == [doc_id]
    stored = server.stored_bytes()
    for secret in (LETTER.encode(), PATIENT.encode(), b"Durand", invitation["code"].encode()):
        assert secret not in stored


def _addresses(daemon: DaemonProcess) -> list[str]:
    return [address for row in daemon.client.get("/v1/peers") for address in row["addresses"]]


def test_a_wrong_code_through_the_mailbox_is_refused_on_both_sides(strangers: Strangers) -> None:
    a, b, _server = strangers
    invitation = invite(a)
    code = parse_code(invitation["code"])
    wrong = f"{code.nameplate}-{(int(code.secret) + 1) % 10**7:07d}"
    accepted = b.client.post("/v1/pair/accept", {"code": wrong, "yes": True})
    b_side, a_side = settled(b, accepted["id"]), settled(a, invitation["id"])
    assert (b_side["state"], b_side["reason"]) == ("failed", "wrong-code"), b_side
    assert (a_side["state"], a_side["reason"]) == ("failed", "wrong-code"), a_side
    assert b_side["message"] == WRONG_CODE_MESSAGE
    assert peer_names(a) == peer_names(b) == []
    # One attempt per code: as on the local network, a used invitation is heard no more.
    again = b.pli("pair", "accept", invitation["code"], "--yes", check=False)
    assert again.returncode == 1, again.stderr
    assert "No invitation with this code was found" in again.stderr


def test_a_code_nobody_offers_is_a_clear_error(strangers: Strangers) -> None:
    _a, b, _server = strangers
    done = b.pli("pair", "accept", "123-4567890", "--yes", check=False)
    assert done.returncode == 1, done.stderr
    assert "No invitation with this code was found" in done.stderr
    assert "mailboxes" in done.stderr
    assert "Traceback" not in done.stderr


def test_pair_by_fingerprint_through_the_mailbox(strangers: Strangers, tmp_path: Path) -> None:
    a, b, server = strangers
    fingerprint = a.identity()["fingerprint"]
    asked = b.client.post("/v1/peers/add", {"fingerprint": fingerprint})
    wait_until(lambda: len(a.client.get("/v1/pair/pending")) == 1, timeout=30)
    pending = a.client.get("/v1/pair/pending")[0]
    assert pending["fingerprint"] == b.identity()["fingerprint"]
    requester = b.client.get(f"/v1/pair/{asked['id']}")
    assert requester["sas"] == pending["sas"]  # the check code the colleagues compare
    a.client.post("/v1/peers/accept", {"peer": pending["id"], "yes": True})
    assert settled(b, asked["id"])["state"] == "paired"
    # A stores the new colleague when its own side ends, which may be just after B's.
    wait_until(lambda: peer_names(a) == ["Dr B Durand"], timeout=30)
    assert peer_names(b) == ["Dr A Martin"]
    doc_id = send_letter(b, a, tmp_path)
    wait_until(lambda: outbox_entry(b, doc_id)["state"] == "delivered", timeout=60)
    assert outbox_entry(b, doc_id)["via"] == f"mailbox {server.url}"


def test_a_fingerprint_nobody_has_and_a_refusal(strangers: Strangers) -> None:
    a, b, _server = strangers
    nobody = LocalIdentity.generate(now=0).peer_id.fingerprint
    done = b.pli("peers", "add", nobody, check=False)
    assert done.returncode == 1, done.stderr
    assert "No practice with this fingerprint answered" in done.stderr
    asked = b.client.post("/v1/peers/add", {"fingerprint": a.identity()["fingerprint"]})
    wait_until(lambda: len(a.client.get("/v1/pair/pending")) == 1, timeout=30)
    pending = a.client.get("/v1/pair/pending")[0]
    a.client.post("/v1/peers/accept", {"peer": pending["id"], "yes": False})
    refused = settled(b, asked["id"])
    assert (refused["state"], refused["reason"]) == ("failed", "declined"), refused
    assert peer_names(a) == peer_names(b) == []
