"""The daemon dials only a few checked addresses, whatever a paired peer's card lists."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from p2p.net.addresses import allowed, dial_plan, resolve
from p2p.storage import keystore
from protocol import limits

from .conftest import Running, start_daemon, wait_for

REFUSED_ANYWHERE = [
    "0.0.0.0:7717",  # unspecified
    "[::]:7717",
    "224.0.0.251:7717",  # multicast (mDNS)
    "[ff02::1]:7717",
    "255.255.255.255:7717",  # limited broadcast
    "240.0.0.1:7717",  # reserved
    "169.254.10.1:7717",  # link-local
    "[fe80::1]:7717",
    "192.168.1.20:22",  # a machine's own services
    "192.168.1.20:80",
    "192.168.1.20:0",
    "192.168.1.20:70000",
    "192.168.1.20",  # no port
    "fe80::1:7717",  # unbracketed IPv6
    "host name:7717",
]


def test_what_is_never_dialled() -> None:
    for address in REFUSED_ANYWHERE:
        assert not allowed(address, loopback=True), address
    for address in ("192.168.1.20:7717", "10.0.0.5:7717", "[2001:db8::5]:7717", "cabinet:7717"):
        assert allowed(address, loopback=False), address


def test_loopback_only_for_a_daemon_on_loopback() -> None:
    for address in ("127.0.0.1:7717", "127.9.9.9:7717", "[::1]:7717", "localhost:7717"):
        assert not allowed(address, loopback=False), address
        assert allowed(address, loopback=True), address


def test_the_plan_is_short_and_in_order() -> None:
    card = [f"10.0.0.{i}:7717" for i in range(1, 9)]
    plan = dial_plan("192.168.1.7:7717", ["10.0.0.3:7717", "0.0.0.0:7717"], card, loopback=False)
    assert plan == ["192.168.1.7:7717", "10.0.0.3:7717", "10.0.0.1:7717", "10.0.0.2:7717"]
    assert len(dial_plan(None, [], card, loopback=False)) == limits.MAX_DIAL_ADDRESSES


async def test_a_name_is_checked_where_it_points() -> None:
    assert await resolve("localhost:7717", loopback=False) is None
    assert await resolve("localhost:7717", loopback=True) in ("127.0.0.1:7717", "[::1]:7717")
    assert await resolve("[::1]:7717", loopback=False) is None


async def test_a_card_full_of_addresses_gets_few_dials(tmp_path: Path) -> None:
    """A paired peer whose card lists 8 listeners of ours: at most 4 are knocked on."""
    a: Running = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    knocks: list[int] = []
    servers = []

    def knocked(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        knocks.append(writer.get_extra_info("sockname")[1])
        writer.close()

    for _ in range(limits.MAX_ADDRESSES):
        servers.append(await asyncio.start_server(knocked, "127.0.0.1", 0))
    low = socket.socket()
    with contextlib.suppress(OSError):  # a port below 1024 needs root: checked when possible
        low.bind(("127.0.0.1", 999))
        low.listen()
    try:
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        if low.getsockname()[1] == 999:
            addresses[0] = "127.0.0.1:999"
        keys = await asyncio.to_thread(keystore.create, tmp_path / "mallory")
        card = keys.identity.card(1, name="Dr Mallory", addresses=tuple(addresses))
        row = await a.daemon.add_peer(card.sign(keys.identity.identity), [])
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère,\n")
        await a.api(
            "POST",
            "/v1/documents",
            {"to": [row.peer_id], "kind": "letter", "files": [{"path": str(letter)}]},
        )
        await wait_for(lambda: len(set(knocks)) >= limits.MAX_DIAL_ADDRESSES, timeout=10)
        await asyncio.sleep(1.5)  # retries (every second at most here) try the same plan
        assert len(set(knocks)) == limits.MAX_DIAL_ADDRESSES
        low.setblocking(False)
        with contextlib.suppress(OSError):  # nothing pending: nobody knocked on port 999
            low.accept()[0].close()
            knocks.append(999)
        assert 999 not in knocks
    finally:
        low.close()
        for server in servers:
            server.close()
        await a.stop()
