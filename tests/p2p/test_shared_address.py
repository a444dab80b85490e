"""Many paired practices behind one address are all served; a flood from it is not.

Issue 8 §3 (the storm) against §1.4 (the per-IP cap): every daemon here
reaches the receiver from 127.0.0.1, as practices behind one NAT would. A
connection counts against its IP only until its Noise handshake proves a
paired peer; then it counts against that peer (and the total). Connections
that prove nothing are still capped per IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from p2p.net.transport.guard import Guard
from protocol import limits

from .conftest import Running, pair, start_daemon, wait_for
from .flood import close_all, still_open
from .test_exchange import delivered, send_file

NAMES = (
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
)
#: More paired peers on one address than that address may hold unauthenticated.
PEERS = limits.MAX_CONNECTIONS_PER_IP + 4
assert len(NAMES) >= PEERS


async def _letters(team: list[Running], b: Running, folder: Path, tag: str) -> None:
    """One letter from each of ``team`` to ``b``, all delivered (bounded wait)."""
    ids = []
    for index, sender in enumerate(team):
        path = folder / f"{tag}-{index}.txt"
        path.write_text(f"Cher confrère, lettre {tag} {index}.\n")
        ids.append(await send_file(sender, b, path, kind="letter"))
    await wait_for(lambda: all(delivered(s, d) for s, d in zip(team, ids, strict=True)), timeout=30)


def _silent_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` connections from 127.0.0.1 that send nothing (they prove no key)."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5.0) for _ in range(count)]


async def test_paired_peers_on_one_address_are_served_and_a_flood_from_it_is_capped(
    tmp_path: Path,
) -> None:
    b = await start_daemon(tmp_path / "b", "Dr Rose Lefebvre")
    team: list[Running] = []
    held: list[socket.socket] = []
    try:
        for index in range(PEERS):
            team.append(await start_daemon(tmp_path / f"s{index}", f"Dr {NAMES[index]}"))
            await pair(team[-1], b)
        await _letters(team, b, tmp_path, "before")
        guard = b.daemon.transport.guard
        # Every session is open at once and none counts against 127.0.0.1.
        assert len(b.daemon.transport.online()) == PEERS
        assert sorted(guard.per_peer.values()) == [1] * PEERS
        assert guard.per_ip.get("127.0.0.1", 0) == 0
        # A flood from the same address that proves no paired key: capped at accept.
        held = await asyncio.to_thread(_silent_connections, b.port, PEERS)
        assert await asyncio.to_thread(still_open, held, 1.0) == limits.MAX_CONNECTIONS_PER_IP
        assert guard.per_ip["127.0.0.1"] == limits.MAX_CONNECTIONS_PER_IP
        # The paired peers' sessions are untouched by the flood: letters still arrive.
        await _letters(team, b, tmp_path, "during")
        assert len(b.daemon.transport.online()) == PEERS
    finally:
        close_all(held)
        for running in (*team, b):
            with contextlib.suppress(Exception):
                await running.stop()


def test_a_peer_holds_at_most_its_sessions_and_frees_its_address_slot() -> None:
    guard = Guard(cap=16, deadline=1.0)
    peer = bytes(32)
    for _ in range(limits.MAX_SESSIONS_PER_PEER + 1):
        assert guard.accept("192.0.2.7")
    for _ in range(limits.MAX_SESSIONS_PER_PEER):
        assert guard.promote("192.0.2.7", peer)
    assert not guard.promote("192.0.2.7", peer)  # refused: still counted on its address
    assert guard.per_ip == {"192.0.2.7": 1}
    assert guard.per_peer == {peer: limits.MAX_SESSIONS_PER_PEER}
    assert guard.open == limits.MAX_SESSIONS_PER_PEER + 1  # the total counts them all
    guard.release("192.0.2.7")
    for _ in range(limits.MAX_SESSIONS_PER_PEER):
        guard.release_session(peer)
    assert (guard.open, guard.per_ip, guard.per_peer) == (0, {}, {})
