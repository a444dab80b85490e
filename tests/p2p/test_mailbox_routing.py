"""Which mailbox a letter goes to: one the colleague's signed card lists too.

Two real nats-servers on loopback, both practices members of both. The
colleague leaves the first mailbox (its stream stays there: the server would
take a letter and keep it a month for nobody); its new card reaches us, and a
letter written while it is off waits in the second mailbox only. The outbox,
``pli outbox`` and ``--json`` say which mailbox it took.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import kill_all, wait_until
from p2p.storage import mailboxes
from p2p.storage.mailboxes import servers, shared
from tests.p2p.natsserver import NatsServer, member_key, messages_in, server_for
from tests.p2p.test_mailbox_daemons import outbox_entry, send_letter

Group = tuple[DaemonProcess, DaemonProcess, NatsServer, NatsServer]


def states(daemon: DaemonProcess) -> list[str]:
    return [row["state"] for row in daemon.client.get("/v1/mailboxes")]


def card_mailboxes(holder: DaemonProcess, peer: DaemonProcess) -> object:
    """The mailboxes ``peer``'s card lists, as ``holder`` has it."""
    listed = holder.client.get("/v1/peers")
    return next(p["mailboxes"] for p in listed if p["peer_id"] == peer.identity()["peer_id"])


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    a = DaemonProcess(tmp_path / "a", "Dr A")
    b = DaemonProcess(tmp_path / "b", "Dr B")
    keys = [member_key(a), member_key(b)]
    first = server_for(tmp_path / "nats1", keys).start()
    second = server_for(tmp_path / "nats2", keys).start()
    try:
        for daemon in (a, b):
            daemon.start()
            for server in (first, second):
                daemon.pli("mailbox", "add", server.url)
        a.trust(b)  # each card lists both mailboxes
        b.trust(a)
        for daemon in (a, b):
            wait_until(lambda d=daemon: states(d) == ["connected", "connected"], timeout=20)
        yield a, b, first, second
    finally:
        kill_all(a, b)
        first.stop()
        second.stop()


@pytest.mark.slow
def test_a_letter_waits_only_in_a_mailbox_the_colleague_still_reads(
    group: Group, tmp_path: Path
) -> None:
    a, b, first, second = group
    assert card_mailboxes(a, b) == [first.url, second.url]
    left = json.loads(b.pli("--json", "mailbox", "remove", first.url).stdout)
    assert left["card"]["sent_to"] == 1
    wait_until(lambda: card_mailboxes(a, b) == [second.url], timeout=20)
    b.stop()

    doc_id = send_letter(a, b, tmp_path)
    wait_until(lambda: outbox_entry(a, doc_id).get("via") == f"mailbox {second.url}", timeout=30)
    b_seed = mailboxes.nkey_seed(b.home)
    assert messages_in(first, b_seed) == 0  # B's stream is still there, and empty
    assert messages_in(second, b_seed) == 1
    listed = [json.loads(line) for line in a.pli("--json", "outbox").stdout.splitlines()]
    assert [(e["id"], e["via"]) for e in listed] == [(doc_id, f"mailbox {second.url}")]
    shown = a.pli("outbox").stdout
    assert f"mailbox 127.0.0.1:{second.port}" in shown
    assert str(first.port) not in shown

    b.start()
    wait_until(lambda: b.inbox_ids() == [doc_id], timeout=30)
    wait_until(lambda: outbox_entry(a, doc_id)["state"] == "delivered", timeout=30)
    assert outbox_entry(a, doc_id)["via"] == f"mailbox {second.url}"
    assert messages_in(second, b_seed) == 0  # acknowledged once the letter was safe


def test_shared_mailboxes_are_those_with_a_server_in_common() -> None:
    one, two = "nats://10.0.0.5:4222", "tls://mailbox.msp.fr:4223"
    cluster = "nats://n1.msp.fr:4222,nats://n2.msp.fr:4222,nats://n3.msp.fr:4222"
    ours = [one, two, cluster]
    assert shared(ours, None) == ours  # an older card does not say: any of ours
    assert shared(ours, ()) == []  # the colleague joined none
    assert shared(ours, ("nats://MAILBOX.msp.fr:4223",)) == [two]
    assert shared(ours, ("nats://10.0.0.5",)) == [one]  # 4222 when no port is given
    assert shared(ours, ("nats://10.0.0.5:4223",)) == []
    assert shared(ours, ("nats://n3.msp.fr:4222", one)) == [one, cluster]
    assert shared(ours, ("not a url", "nats://[::1", "nats://h:99999", "")) == []
    assert servers(cluster) == {("n1.msp.fr", 4222), ("n2.msp.fr", 4222), ("n3.msp.fr", 4222)}


@pytest.mark.slow
def test_a_colleague_no_session_reaches_gets_the_new_card_through_a_mailbox(
    group: Group,
) -> None:
    """A leaves the first mailbox while B is off, then goes off itself: B, started
    alone, learns from the card waiting in the second that A reads only that one."""
    a, b, first, second = group
    b.identity()
    b.stop()
    left = json.loads(a.pli("--json", "mailbox", "remove", first.url).stdout)
    b_seed = mailboxes.nkey_seed(b.home)
    wait_until(lambda: messages_in(second, b_seed) == 1, timeout=30)  # A's card, sealed
    assert messages_in(first, b_seed) == 0
    a.stop()
    b.start()
    wait_until(lambda: card_mailboxes(b, a) == [second.url], timeout=30)
    wait_until(lambda: messages_in(second, b_seed) == 0, timeout=30)  # read, acknowledged
    shown = next(p for p in b.client.get("/v1/peers") if p["peer_id"] == a.identity()["peer_id"])
    assert shown["online"] is False
    assert left["card"]["seq"] > 0
