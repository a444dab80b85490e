"""Issue 8 §1.2: a paired peer cannot rename itself into a colleague.

Real daemons on loopback: Bob is paired with Alice and with Mallory; Mallory
sends Bob a signed card update naming itself like Alice. Bob keeps Mallory's old
name, and ``send`` to Alice's fingerprint, short id or name still goes to Alice.
An acceptable new name waits for the person: ``test_renames.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from p2p.documents import peer_names as naming
from p2p.errors import NotPaired, PeerUnknown
from protocol import LocalIdentity, messages

from .conftest import Running, pair, start_daemon, wait_for


async def card_update(m: Running, b: Running, name: str, seq_step: int) -> None:
    card = m.daemon.card()
    wire = dataclasses.replace(card, name=name, seq=card.seq + seq_step).sign(m.daemon.me.identity)
    channel = await m.daemon.dialler.connect(b.daemon.me.peer_id.hex)
    await channel.send(messages.CardUpdate(wire))


def _alice_names(a: Running) -> list[str]:
    fingerprint = a.daemon.me.peer_id.fingerprint
    return [
        "Dr Alice Martin",
        "  dr  ALICE martin ",
        "Ｄｒ Alice Martin",
        fingerprint,
        fingerprint[:5],
        a.daemon.me.peer_id.hex,
    ]


@pytest.mark.parametrize("which", range(6))
async def test_a_card_update_cannot_take_a_colleagues_name(
    three: tuple[Running, Running, Running], which: int, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, m = three
    m_hex = m.daemon.me.peer_id.hex
    wanted = _alice_names(a)[which]
    await card_update(m, b, wanted, 10)
    await wait_for(
        lambda: "ignored a card update" in caplog.text or b.daemon.store.peer(m_hex).name == wanted  # type: ignore[union-attr]
    )
    assert b.daemon.store.peer(m_hex).name == "Dr Mallory Faux"  # type: ignore[union-attr]
    fingerprint = a.daemon.me.peer_id.fingerprint
    for typed in (fingerprint, fingerprint[:5], a.daemon.me.peer_id.hex, "Dr Alice Martin"):
        assert b.daemon.peers.find(typed).peer_id == a.daemon.me.peer_id.hex


async def test_the_refused_update_keeps_the_old_name(
    three: tuple[Running, Running, Running], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, m = three
    m_hex = m.daemon.me.peer_id.hex
    fingerprint = a.daemon.me.peer_id.fingerprint
    await card_update(m, b, fingerprint, 10)
    await card_update(m, b, "Dr Alice Martin", 11)
    channel = await m.daemon.dialler.connect(b.daemon.me.peer_id.hex)
    await channel.send(messages.CardUpdate(m.daemon.signed_card()))  # an old one: a no-op
    await wait_for(
        lambda: (
            "ignored a card update" in caplog.text
            and caplog.text.count("ignored a card update") >= 2
        )
    )
    assert b.daemon.store.peer(m_hex).name == "Dr Mallory Faux"  # type: ignore[union-attr]
    assert "Alice" not in caplog.text
    assert fingerprint not in caplog.text


async def test_pairing_refuses_a_card_named_like_a_paired_peer(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    m = await start_daemon(tmp_path / "m", "dr alice  MARTIN")
    try:
        await pair(a, b)
        with pytest.raises(NotPaired, match="another name"):
            await b.daemon.add_peer(m.daemon.signed_card(), [m.address])
        assert b.daemon.store.peer(m.daemon.me.peer_id.hex) is None
    finally:
        for running in (a, b, m):
            await running.stop()


async def test_pairings_at_the_same_time_cannot_give_two_peers_one_name(tmp_path: Path) -> None:
    """The name is checked and the peer stored as one step, though the commit runs on a
    worker thread: of several cards of one name paired at once, one is trusted."""
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        twins = [LocalIdentity.generate(now=0) for _ in range(4)]
        names = ["Dr Mallory X", "dr mallory x", "Dr  Mallory X", "DR MALLORY X"]
        tries = [
            b.daemon.add_peer(twin.card(1, name=name).sign(twin.identity), [])
            for twin, name in zip(twins, names, strict=True)
        ]
        results = await asyncio.gather(*tries, return_exceptions=True)
        trusted = [r for r in results if not isinstance(r, BaseException)]
        assert len(trusted) == 1
        assert all(isinstance(r, NotPaired) for r in results if r not in trusted)
        assert [row.name for row in b.daemon.store.peers()] == [trusted[0].name]
    finally:
        await b.stop()


def test_names_that_look_like_keys() -> None:
    for name in ("ABCDE", "abcd1234", "AB2CD-EFGH3", "deadbeef99", "K7QXA"):
        assert naming.looks_like_key(name), name
    for name in ("Dr Alice Martin", "Alice", "Cabinet Saint-Michel", "Dr Bob"):
        assert not naming.looks_like_key(name), name


def test_a_name_never_shadows_a_fingerprint() -> None:
    alice = naming.Known("aa" * 32, "Dr Alice", "ABCDE-FGHIJ")
    mallory = naming.Known("bb" * 32, "ABCDE", "KLMNO-PQRST")
    assert naming.resolve([mallory, alice], "ABCDE") is alice
    assert naming.resolve([mallory, alice], "dr  ALICE") is alice


def test_a_whole_peer_id_finds_its_peer_alone_in_any_spelling(tmp_path: Path) -> None:
    """The fast path (one row read) finds what ``resolve`` among every peer would."""
    from p2p.services.peers import PeerDirectory
    from p2p.storage.store import PeerRow, PeerState, Store

    store = Store(tmp_path / "pli.db")
    me = naming.Known("ee" * 32, "Dr Me", "ZZZZZ-ZZZZZ")
    peers = PeerDirectory(store, set, lambda: me)
    for hexid, name, state in (
        ("ab" * 32, "Dr A", PeerState.PAIRED),
        ("cd" * 32, "Dr C", PeerState.REMOVED),
    ):
        store.save_peer(
            PeerRow(hexid, b"k", b"c", name, f"{name[-1]}BCDE-FGHIJ", None, (), state, 1)
        )
    spaced = " ".join("AB" * 4 for _ in range(8))
    assert naming.full_peer_id(spaced) == "ab" * 32
    assert naming.full_peer_id("ab" * 31) is None
    assert peers.find(spaced).name == "Dr A"
    assert peers.find("ab" * 32).name == "Dr A"
    with pytest.raises(PeerUnknown):
        peers.find("cd" * 32)  # removed: not among the paired peers
    assert peers.find("cd" * 32, states=(PeerState.REMOVED,)).name == "Dr C"
    with pytest.raises(PeerUnknown):
        peers.find("ef" * 32)
    store.close()
