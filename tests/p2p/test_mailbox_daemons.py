"""Two real daemons and the real nats-server: letters that wait in a mailbox.

The practices dial each other on loopback when both are up; when the
recipient is down, the sealed envelope waits in its mailbox and its signed
receipt comes back the same way — even when the two are never up together.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import wait_until
from p2p.storage import mailboxes
from tests.p2p.natsserver import NatsServer, mailbox_pair, mailbox_state, messages_in
from tests.p2p.test_mailbox_connection import creds_text

pytestmark = pytest.mark.slow

LETTER = "Cher confrère, je vous adresse Mme Mailbox-Témoin pour une échographie.\n"
PATIENT = "Mailbox-Témoin Jeanne"

Group = tuple[DaemonProcess, DaemonProcess, NatsServer]


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    with mailbox_pair(tmp_path) as pair:
        yield pair


def send_letter(a: DaemonProcess, b: DaemonProcess, folder: Path) -> str:
    path = folder / "lettre.txt"
    path.write_text(LETTER, encoding="utf-8")
    body = {
        "to": [b.identity()["peer_id"]],
        "kind": "letter",
        "files": [{"path": str(path)}],
        "metadata": {"patient_name": PATIENT, "subject": "Adressage"},
    }
    doc_id: str = a.client.post("/v1/documents", body)["id"]
    return doc_id


def outbox_entry(daemon: DaemonProcess, doc_id: str) -> dict[str, object]:
    return next(e for e in daemon.client.get("/v1/outbox") if e["id"] == doc_id)


def test_never_online_together(group: Group, tmp_path: Path) -> None:
    a, b, server = group
    b.identity()
    b.stop()
    doc_id = send_letter(a, b, tmp_path)
    wait_until(lambda: outbox_entry(a, doc_id).get("via") == f"mailbox {server.url}", timeout=30)
    assert outbox_entry(a, doc_id)["state"] == "queued"
    a.stop()

    stored = server.stored_bytes()
    assert stored  # the envelope is there, sealed
    for secret in (LETTER.encode(), PATIENT.encode(), "Mailbox-Témoin".encode()):
        assert secret not in stored

    b.start()
    wait_until(lambda: b.inbox_ids() == [doc_id], timeout=30)
    seed = mailboxes.nkey_seed(a.home)
    wait_until(lambda: messages_in(server, seed) == 1, timeout=30)  # the receipt
    b.stop()
    a.start()
    wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=30)
    assert outbox_entry(a, doc_id)["receipt_via"] == "mailbox"
    assert [e["id"] for e in a.client.get("/v1/outbox")] == [doc_id]
    b.start()  # both up at last: nothing arrives twice
    assert b.inbox_ids() == [doc_id]
    shown = b.client.get(f"/v1/documents/{doc_id}")
    assert shown["metadata"]["patient_name"] == PATIENT


def test_mailbox_down_never_blocks_direct_delivery(group: Group, tmp_path: Path) -> None:
    a, b, server = group
    server.stop()
    wait_until(lambda: mailbox_state(a) == "unreachable", timeout=30)
    doc_id = send_letter(a, b, tmp_path)
    wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=20)
    assert outbox_entry(a, doc_id)["via"] == "direct"
    status = a.client.get("/v1/status")
    assert status["mailboxes"][0]["state"] == "unreachable"
    done = a.pli("status", check=False)
    assert "cannot be reached" in done.stdout


def test_mailbox_commands(group: Group) -> None:
    a, _b, server = group
    done = a.pli("--json", "mailbox", "status")
    assert json.loads(done.stdout)["state"] == "connected"
    bad = a.pli("mailbox", "add", "http://example.org", check=False)
    assert bad.returncode == 1
    assert "nats://HOST:PORT" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert a.pli("mailbox", "remove", server.url).returncode == 0
    assert "No mailbox joined" in a.pli("mailbox", "status").stdout
    again = a.pli("mailbox", "remove", server.url, check=False)
    assert again.returncode == 1
    assert "has not joined" in again.stderr
    a.stop()
    down = a.pli("mailbox", "add", server.url, check=False)
    assert down.returncode == 3


def test_a_practice_the_server_does_not_list_is_refused(group: Group, tmp_path: Path) -> None:
    _a, _b, server = group
    c = DaemonProcess(tmp_path / "c", "Dr C").start()
    try:
        c.pli("mailbox", "add", server.url)
        wait_until(lambda: mailbox_state(c) == "refused", timeout=20)
        shown = c.pli("mailbox", "status").stdout
        assert "refused this practice's key" in shown
        assert "pli mailbox key" in shown
        assert "refused" in c.pli("status").stdout
    finally:
        c.stop()


def test_an_integrated_receipt_through_the_mailbox_survives_kill_9(
    group: Group, tmp_path: Path
) -> None:
    """B integrates while A is away: the signed receipt waits in A's mailbox, once."""
    a, b, server = group
    doc_id = send_letter(a, b, tmp_path)
    wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=30)
    a.stop()
    answer = b.client.post(f"/v1/documents/{doc_id}/integrated", {"error_code": 902})
    assert answer["receipt"] == "queued"
    seed = mailboxes.nkey_seed(a.home)
    wait_until(lambda: messages_in(server, seed) == 1, timeout=60)  # B could not dial A
    b.kill9()
    b.start()  # what B had sent is not sent again; nothing more waits
    answer = b.client.post(f"/v1/documents/{doc_id}/integrated", {"error_code": 902})
    assert answer["receipt"] == "already"
    b.stop()
    a.start()

    def integrated() -> object:
        return outbox_entry(a, doc_id)["integrated"]

    wait_until(lambda: integrated() is not None, timeout=30)
    shown = integrated()
    assert isinstance(shown, dict)
    assert (shown["status"], shown["code"], shown["via"]) == ("not-integrated", 902, "mailbox")
    assert shown["label"] == "Patient inconnu"
    wait_until(lambda: messages_in(server, seed) == 0, timeout=30)  # acknowledged, deleted
    receipts = a.client.get(f"/v1/documents/{doc_id}/receipts")
    assert sorted(r["status"] for r in receipts) == ["delivered", "not-integrated:902"]


def test_refused_credentials_are_said_in_words(group: Group, tmp_path: Path) -> None:
    """A second mailbox (the same server by another name) whose .creds it refuses."""
    a, _b, server = group
    junk = tmp_path / "junk.creds"
    junk.write_text("not a creds file\n")
    other = f"nats://localhost:{server.port}"
    bad = a.pli("mailbox", "add", other, "--credentials", str(junk), check=False)
    assert bad.returncode == 1
    assert "not a NATS .creds file" in bad.stderr
    assert "Traceback" not in bad.stderr
    creds = tmp_path / "practice.creds"
    creds.write_text(creds_text(mailboxes.nkey_seed(a.home)))
    a.pli("mailbox", "add", other, "--credentials", str(creds))

    def states() -> dict[str, str]:
        return {m["url"]: m["state"] for m in a.client.get("/v1/status")["mailboxes"]}

    wait_until(lambda: states() == {server.url: "connected", other: "refused"}, timeout=20)
    row = next(m for m in a.client.get("/v1/status")["mailboxes"] if m["url"] == other)
    assert row["message"] == "the mailbox server refused this practice's credentials"
    assert (row["credentials"], row["waiting_in"], row["waiting_out"]) == (True, 0, 0)
    for shown in (a.pli("mailbox", "status").stdout, a.pli("status").stdout):
        assert "refused this practice's credentials" in shown
        assert "--credentials FILE" in shown
        assert "Authorization" not in shown


def test_a_frozen_mailbox_never_blocks_direct_delivery(group: Group, tmp_path: Path) -> None:
    """The server stops answering but keeps its connections (SIGSTOP: a hung machine):
    a letter to a colleague who was off goes directly once it is back, and the
    daemon still stops cleanly."""
    a, b, server = group
    assert server.proc is not None
    b.identity()
    b.stop()
    server.proc.send_signal(signal.SIGSTOP)
    try:
        doc_id = send_letter(a, b, tmp_path)
        wait_until(lambda: int(str(outbox_entry(a, doc_id)["attempts"])) >= 2, timeout=60)
        b.start()
        wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=60)
        assert outbox_entry(a, doc_id)["via"] == "direct"
        assert b.inbox_ids() == [doc_id]
        assert a.stop() == 0  # not killed: closing a hung connection did not hang
    finally:
        server.proc.send_signal(signal.SIGCONT)


def test_a_mailbox_back_takes_the_waiting_letters_at_once(tmp_path: Path) -> None:
    """A letter that found neither the colleague nor the mailbox backs off for minutes;
    the mailbox coming back sends it now, not at its next attempt."""
    with mailbox_pair(tmp_path, retry_min=120.0, retry_max=300.0) as (a, b, server):
        b.identity()
        b.stop()
        server.stop()
        wait_until(lambda: mailbox_state(a) == "unreachable", timeout=30)
        doc_id = send_letter(a, b, tmp_path)
        wait_until(lambda: outbox_entry(a, doc_id).get("last_error"), timeout=30)  # backing off
        assert outbox_entry(a, doc_id)["via"] is None  # nowhere yet
        server.start()
        wait_until(lambda: outbox_entry(a, doc_id).get("via") is not None, timeout=45)
        assert outbox_entry(a, doc_id)["via"] == f"mailbox {server.url}"
