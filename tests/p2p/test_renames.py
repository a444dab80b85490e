"""Issue 8 §1.2: a peer's new name waits until the person accepts it.

Real daemons on loopback: Bob is paired with Alice and with Mallory. Mallory's
signed card update carries a new name: Bob keeps addressing Mallory by the name
chosen at pairing (``pli send "Dr Mallory Faux"`` still reaches it), and shows
the new name in ``pli status``, ``pli peers`` and the API until
``pli peers accept-name`` takes it. ``pli peers rename`` chooses a name of
Bob's own, under the same rules as a card's name. The CLI runs in a worker
thread, since the daemons' API is served by the test's event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from p2p.errors import PeerUnknown
from protocol import ProfileCard, messages

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .conftest import Running, wait_for
from .test_names import card_update

Three = tuple[Running, Running, Running]
NEW = "Dr Mallory Renamed"


async def pli(home: Path, *args: str | Path) -> Result:
    return await asyncio.to_thread(run, "--home", home, *args)


def stored_card(b: Running, peer_hex: str) -> ProfileCard:
    row = b.daemon.store.peer(peer_hex)
    assert row is not None
    return ProfileCard.from_wire(row.card)


def card_name(b: Running, peer_hex: str) -> str:
    return stored_card(b, peer_hex).name


async def renamed(m: Running, b: Running, name: str = NEW, step: int = 10) -> str:
    """Mallory sends Bob a card with ``name``; returns Mallory's peer id once Bob stored it."""
    m_hex = m.daemon.me.peer_id.hex
    await card_update(m, b, name, step)
    await wait_for(lambda: card_name(b, m_hex) == name)
    return m_hex


async def peer_json(b: Running, peer_hex: str) -> dict[str, Any]:
    status, rows = await b.api("GET", "/v1/peers")
    assert status == 200
    return next(row for row in rows if row["peer_id"] == peer_hex)


@pytest.fixture
def letter(tmp_path: Path) -> Path:
    path = tmp_path / "lettre.txt"
    path.write_text("Cher confrère, ...\n")
    return path


async def test_a_new_name_on_a_card_does_not_change_the_name_in_use(
    three: Three, letter: Path
) -> None:
    """The regression test of threat-model §7.2 (pending names): fails on the old code."""
    _, b, m = three
    m_hex = await renamed(m, b)
    assert b.daemon.store.peer(m_hex).name == "Dr Mallory Faux"  # type: ignore[union-attr]
    assert b.daemon.peers.find("Dr Mallory Faux").peer_id == m_hex
    with pytest.raises(PeerUnknown):
        b.daemon.peers.find(NEW)
    sent = await pli(b.home, "send", "Dr Mallory Faux", letter, "--wait")
    assert sent.exit_code == 0, sent.output
    await wait_for(lambda: len(m.daemon.store.inbox()) == 1)
    assert (await pli(b.home, "send", NEW, letter)).exit_code == 1


async def test_status_peers_and_the_log_show_the_new_name(
    three: Three, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pli")
    _, b, m = three
    m_hex = await renamed(m, b)
    shown = await peer_json(b, m_hex)
    assert (shown["name"], shown["card_name"], shown["pending_name"]) == (
        "Dr Mallory Faux",
        NEW,
        NEW,
    )
    assert isinstance(shown["pending_since"], int)
    status, info = await b.api("GET", "/v1/status")
    assert status == 200
    assert info["pending_names"] == 1
    listing = await pli(b.home, "peers")
    assert listing.exit_code == 0
    fingerprint = m.daemon.me.peer_id.fingerprint
    assert f"“{NEW}”" in listing.output
    assert f"pli peers accept-name {fingerprint}" in listing.output
    assert f"pli peers rename {fingerprint} NAME" in listing.output
    assert "1 peer gave a new name" in (await pli(b.home, "status")).output
    as_json = await pli(b.home, "--json", "peers")
    assert {json.loads(line)["pending_name"] for line in as_json.output.splitlines()} == {
        None,
        NEW,
    }
    assert "new card carries another name" in caplog.text
    assert "Renamed" not in caplog.text


async def test_accept_name_takes_the_new_name(three: Three, letter: Path) -> None:
    _, b, m = three
    m_hex = await renamed(m, b)
    accepted = await pli(b.home, "peers", "accept-name", "Dr Mallory Faux")
    assert accepted.exit_code == 0, accepted.output
    assert NEW in accepted.output
    assert b.daemon.peers.find(NEW).peer_id == m_hex
    with pytest.raises(PeerUnknown):
        b.daemon.peers.find("Dr Mallory Faux")
    shown = await peer_json(b, m_hex)
    assert (shown["name"], shown["pending_name"]) == (NEW, None)
    assert (await b.api("GET", "/v1/status"))[1]["pending_names"] == 0
    sent = await pli(b.home, "send", NEW, letter, "--wait")
    assert sent.exit_code == 0, sent.output
    again = await pli(b.home, "peers", "accept-name", NEW)
    assert again.exit_code == 1
    assert "no new name waiting" in again.stderr


async def test_a_card_back_to_the_name_in_use_withdraws_the_new_one(three: Three) -> None:
    _, b, m = three
    m_hex = await renamed(m, b, step=10)
    await renamed(m, b, "Dr Mallory Faux", step=11)
    assert (await peer_json(b, m_hex))["pending_name"] is None


async def test_a_name_chosen_here_survives_card_updates(three: Three) -> None:
    _, b, m = three
    m_hex = m.daemon.me.peer_id.hex
    chosen = await pli(b.home, "peers", "rename", "Dr Mallory Faux", "  Mallory   (labo) ")
    assert chosen.exit_code == 0, chosen.output
    assert "Mallory (labo)" in chosen.output
    assert b.daemon.peers.find("mallory (LABO)").peer_id == m_hex
    card = m.daemon.card()
    wire = dataclasses.replace(card, profession="Biologiste", seq=card.seq + 5)
    channel = await m.daemon.dialler.connect(b.daemon.me.peer_id.hex)
    await channel.send(messages.CardUpdate(wire.sign(m.daemon.me.identity)))
    await wait_for(lambda: stored_card(b, m_hex).profession == "Biologiste")
    shown = await peer_json(b, m_hex)
    assert (shown["name"], shown["card_name"], shown["pending_name"]) == (
        "Mallory (labo)",
        "Dr Mallory Faux",
        None,
    )


async def test_rename_refuses_names_that_could_be_another_peer(
    three: Three, tmp_path: Path
) -> None:
    a, b, m = three
    fingerprint = a.daemon.me.peer_id.fingerprint
    alice_hex = a.daemon.me.peer_id.hex[:12]
    for name in (
        "Dr Alice Martin",
        " dr  ALICE martin",
        fingerprint,
        fingerprint[:5],
        alice_hex,
        "Dr Bob Durand",
        "K7QXA2",
        "Dr\u202eBob",
    ):
        refused = await pli(b.home, "peers", "rename", "Dr Mallory Faux", name)
        assert refused.exit_code == 1, (name, refused.output)
        assert "cannot be called" in refused.stderr
    assert b.daemon.store.peer(m.daemon.me.peer_id.hex).name == "Dr Mallory Faux"  # type: ignore[union-attr]
    # A colleague renamed here keeps the name on their card from being taken.
    assert (await pli(b.home, "peers", "rename", fingerprint, "Alice")).exit_code == 0
    taken = await pli(b.home, "peers", "rename", "Dr Mallory Faux", "Dr Alice Martin")
    assert taken.exit_code == 1
    as_json = await pli(b.home, "--json", "peers", "rename", "Dr Mallory Faux", "Alice")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "name-refused"
    assert (await pli(b.home, "peers", "rename", "Dr Nobody", "X Y")).exit_code == 1
    assert (await pli(b.home, "peers", "rename", "Dr Mallory Faux")).exit_code == 2
    assert (await pli(tmp_path / "no-daemon", "peers", "accept-name", "Dr X")).exit_code == 3


async def test_a_new_name_taken_since_cannot_be_accepted(three: Three) -> None:
    _, b, m = three
    m_hex = await renamed(m, b, "Dr Bob Junior")
    await b.daemon.save_profile(name="dr bob junior")
    refused = await pli(b.home, "peers", "accept-name", m.daemon.me.peer_id.fingerprint)
    assert refused.exit_code == 1
    assert "cannot be used" in refused.stderr
    shown = await peer_json(b, m_hex)
    assert (shown["name"], shown["pending_name"]) == ("Dr Mallory Faux", "Dr Bob Junior")


async def test_the_name_routes_check_their_body(three: Three) -> None:
    _, b, m = three
    path = f"/v1/peers/{m.daemon.me.peer_id.fingerprint}/name"
    status, answer = await b.api("POST", path, {"name": 5})
    assert status == 400
    assert answer["error"]["code"] == "bad-input"
    status, answer = await b.api("POST", path, {"nom": "X"})
    assert status == 400
    assert "“nom”" in answer["error"]["message"]
    status, answer = await b.api("POST", path, {"name": "Dr Alice Martin"})
    assert status == 409
    assert answer["error"]["code"] == "name-refused"
    status, answer = await b.api("POST", path, {"name": "Mallory"})
    assert status == 200
    assert answer["name"] == "Mallory"
    status, answer = await b.api("POST", "/v1/peers/Dr%20Nobody/accept-name", {})
    assert status == 404
    assert answer["error"]["code"] == "peer-unknown"


async def test_pairing_again_settles_a_waiting_name(three: Three) -> None:
    _, b, m = three
    m_hex = await renamed(m, b)
    await b.daemon.add_peer(m.daemon.signed_card(), [m.address])
    assert (await peer_json(b, m_hex))["pending_name"] is None


async def test_the_event_stream_tells_of_a_waiting_name_and_a_rename(three: Three) -> None:
    _, b, m = three
    m_hex = m.daemon.me.peer_id.hex
    async with b.daemon.events.subscribe() as events:
        await renamed(m, b)
        waiting = await asyncio.wait_for(events.get(), 10)
        assert waiting == {"type": "peer-name-waiting", "peer": m_hex}
        await b.daemon.peers.accept_name(m_hex)
        renamed_event = await asyncio.wait_for(events.get(), 10)
        assert renamed_event == {"type": "peer-renamed", "peer": m_hex}
        await renamed(m, b, NEW + " II", step=20)
        await b.daemon.peers.rename(m_hex, "Mallory")
        kinds = [(await asyncio.wait_for(events.get(), 10))["type"] for _ in range(2)]
        assert kinds == ["peer-name-waiting", "peer-renamed"]
        assert events.empty()
