"""Discovery with real mDNS: on loopback, and across two network namespaces.

Every zeroconf instance here is bound to 127.0.0.1 (or to an address inside a
namespace the test created): no multicast leaves on the machine's interfaces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ifaddr
import pytest
from hypothesis import given
from hypothesis import strategies as st
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from p2p.errors import ConfigError, PeerUnreachable
from p2p.events import InvitationSeen, PeerGone, PeerSeen
from p2p.net.discovery import SERVICE_TYPE, Discovery, Event, _txt_properties
from protocol import ProfileCard, discovery_hint, new_discovery_secret

from . import netns
from .conftest import Running, pair, start_daemon, wait_for
from .netns import Lan

netns_lan = netns.netns_lan  # the fixture, requested by name below

LOOPBACK = ["127.0.0.1"]
ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600


class Node:
    """One ``Discovery`` on loopback and the events it reported."""

    def __init__(self, port: int, now: Callable[[], float]) -> None:
        self.peer_id = secrets.token_hex(32)
        self.secret = new_discovery_secret()
        self.port = port
        self.peers: dict[str, bytes] = {}  # read by Discovery at each match
        self.events: list[Event] = []
        self.discovery = Discovery(
            port=port,
            interfaces=LOOPBACK,
            own_secret=self.secret,
            peer_secrets=lambda: self.peers,
            on_event=self.events.append,
            now=now,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def knows(self, *others: Node) -> None:
        self.peers.update({other.peer_id: other.secret for other in others})

    def saw(self, other: Node) -> bool:
        return PeerSeen(other.peer_id, other.address) in self.events

    def peer_events(self) -> list[Event]:
        return [e for e in self.events if isinstance(e, PeerSeen | PeerGone)]


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Node]]:
    """Make loopback nodes with distinct (advertised, never bound) ports; stop them all."""
    made: list[Node] = []

    def make(now: Callable[[], float] = time.time) -> Node:
        used = {node.port for node in made}
        port = next(p for p in iter(lambda: 20000 + secrets.randbelow(40000), 0) if p not in used)
        node = Node(port, now)
        made.append(node)
        return node

    yield make
    for node in made:
        await node.discovery.stop()


def nameplate() -> str:
    """A random one: other test runs on this machine may announce on loopback too."""
    return f"{secrets.randbelow(1000):03d}"


async def start_all(*nodes: Node) -> None:
    await asyncio.gather(*(node.discovery.start() for node in nodes))


# --- loopback ---------------------------------------------------------------------------


async def test_paired_instances_see_each_other_and_not_a_stranger(
    nodes: Callable[..., Node],
) -> None:
    a, b, stranger = nodes(), nodes(), nodes()
    a.knows(b)
    b.knows(a)
    started = time.monotonic()
    await start_all(a, b, stranger)
    await wait_for(lambda: a.saw(b) and b.saw(a), timeout=10)
    assert time.monotonic() - started < 5  # ~1.2 s of probing; bench/discovery.py measures
    # The stranger's announcement reached both (its invitation was seen) ...
    plate = nameplate()
    await stranger.discovery.set_invitation(plate)
    await wait_for(lambda: all(InvitationSeen(plate, stranger.address) in n.events for n in (a, b)))
    # ... and was never reported as a peer; nobody reported itself.
    assert a.peer_events() == [PeerSeen(b.peer_id, b.address)]
    assert b.peer_events() == [PeerSeen(a.peer_id, a.address)]
    assert not any(isinstance(e, PeerSeen) for e in stranger.events)
    assert InvitationSeen(plate, stranger.address) not in stranger.events


async def test_invitation_is_found_then_withdrawn(nodes: Callable[..., Node]) -> None:
    inviter, invitee, early = nodes(), nodes(), nodes()
    early_plate = nameplate()
    await early.discovery.set_invitation(early_plate)  # before start: announced from the first
    await start_all(inviter, invitee, early)
    plate = nameplate()
    waiting = asyncio.create_task(invitee.discovery.find_invitation(plate, timeout=5))
    await asyncio.sleep(0.1)
    await inviter.discovery.set_invitation(plate)
    assert await waiting == inviter.address
    assert invitee.discovery.invitation_address(plate) == inviter.address
    assert await invitee.discovery.find_invitation(early_plate, timeout=5) == early.address
    # Withdrawn at once (right after opening: see the TTL comment in discovery.py).
    await inviter.discovery.set_invitation(None)
    await wait_for(lambda: invitee.discovery.invitation_address(plate) is None, timeout=5)
    assert await invitee.discovery.find_invitation(plate, timeout=0.3) is None
    for bad in ("31", "3141", "abc", "٣١٤"):
        with pytest.raises(ValueError, match="nameplate"):
            await inviter.discovery.set_invitation(bad)


async def test_invitation_opened_while_probing_is_announced(nodes: Callable[..., Node]) -> None:
    inviter, invitee = nodes(), nodes()
    await invitee.discovery.start()
    starting = asyncio.create_task(inviter.discovery.start())
    await asyncio.sleep(0.3)  # inside the ~1.2 s of probing
    plate = nameplate()
    await inviter.discovery.set_invitation(plate)
    await starting
    assert await invitee.discovery.find_invitation(plate, timeout=5) == inviter.address


async def test_stop_withdraws_the_announcement(nodes: Callable[..., Node]) -> None:
    a, b = nodes(), nodes()
    a.knows(b)
    b.knows(a)
    await start_all(a, b)
    await wait_for(lambda: a.saw(b) and b.saw(a), timeout=10)
    stopped = time.monotonic()
    await a.discovery.stop()
    assert time.monotonic() - stopped < 2
    await wait_for(lambda: PeerGone(a.peer_id) in b.events, timeout=5)
    await a.discovery.stop()  # twice is fine
    assert not a.discovery.running


async def test_txt_holds_only_version_hint_and_nameplate(nodes: Callable[..., Node]) -> None:
    moment = time.time()
    a = nodes(now=lambda: moment)
    await a.discovery.start()
    name = a.discovery.instance_name
    assert name is not None
    assert re.fullmatch(r"[0-9a-f]{16}\._pli\._tcp\.local\.", name)
    hint = discovery_hint(a.secret, int(moment) // HOUR).encode()

    async def browse() -> AsyncServiceInfo:
        raw = AsyncZeroconf(interfaces=LOOPBACK)  # a fresh cache each time
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            assert await info.async_request(raw.zeroconf, 3000)
            return info
        finally:
            await raw.async_close()

    info = await browse()
    assert info.properties == {b"v": b"1", b"h": hint}
    assert info.port == a.port
    assert info.parsed_addresses() == ["127.0.0.1"]
    assert info.server is not None
    assert socket.gethostname().lower() not in info.server.lower()
    plate = nameplate()
    await a.discovery.set_invitation(plate)
    info = await browse()
    assert info.properties == {b"v": b"1", b"h": hint, b"pair": plate.encode()}


async def test_hint_follows_the_hour(nodes: Callable[..., Node]) -> None:
    clock = {"now": time.time()}
    a, b = nodes(now=lambda: clock["now"]), nodes(now=lambda: clock["now"])
    a.knows(b)
    b.knows(a)
    await start_all(a, b)
    await wait_for(lambda: b.saw(a), timeout=10)
    clock["now"] += HOUR  # a's hint is an hour old: still accepted (clock skew)
    b.discovery.recheck()
    assert b.peer_events() == [PeerSeen(a.peer_id, a.address)]
    clock["now"] += HOUR  # two hours old: no longer a's
    b.discovery.recheck()
    assert b.peer_events()[-1] == PeerGone(a.peer_id)
    await a.discovery.refresh_hint()  # the minute loop's job: re-announce for the new hour
    await wait_for(lambda: b.peer_events().count(PeerSeen(a.peer_id, a.address)) == 2)


async def test_peer_paired_after_its_announcement_is_reported_on_recheck(
    nodes: Callable[..., Node],
) -> None:
    a, b = nodes(), nodes()
    b.knows(a)
    await start_all(a, b)
    await wait_for(lambda: b.saw(a), timeout=10)
    name = b.discovery.instance_name
    assert name is not None
    await wait_for(lambda: name.lower() in a.discovery._remotes, timeout=10)  # a heard b
    assert a.peer_events() == []
    a.knows(b)  # pairing just finished: the store now holds b's secret
    a.discovery.recheck()
    assert a.saw(b)
    a.peers.clear()  # unpaired
    a.discovery.recheck()
    assert a.peer_events()[-1] == PeerGone(b.peer_id)


async def test_malformed_announcements_are_ignored(nodes: Callable[..., Node]) -> None:
    a = nodes()
    victim = secrets.token_hex(32)
    secret = new_discovery_secret()
    a.peers[victim] = secret
    hint = discovery_hint(secret, int(time.time()) // HOUR)
    failures: list[Event] = []

    def explode(event: Event) -> None:  # a buggy daemon handler must not stop discovery
        a.events.append(event)
        failures.append(event)
        raise RuntimeError("handler bug")

    a.discovery._on_event = explode
    await a.discovery.start()
    junk: list[tuple[dict[str, Any], int, list[str]]] = [
        ({"v": "2", "h": hint}, 7001, LOOPBACK),  # another protocol version
        ({"v": "1", "h": hint, "x": "y" * 200, "z": "y" * 200}, 7002, LOOPBACK),  # too long
        ({"v": "1", "h": hint.upper() + "0"}, 7003, LOOPBACK),  # hint of the wrong length
        ({"v": "1", "h": "zz" * 8, "pair": "12345"}, 7004, LOOPBACK),  # bad hint, bad nameplate
        ({"v": "1", "pair": b"\xc3\xa912"}, 7005, LOOPBACK),  # non-ASCII nameplate
        ({"v": "1", "h": hint}, 7006, ["0.0.0.0"]),  # unusable address
        ({"v": "1", "h": hint}, 7007, ["224.0.0.1"]),  # multicast address
        ({"h": hint}, 7008, LOOPBACK),  # no version
    ]
    raw = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        for properties, port, addresses in junk:
            token = secrets.token_hex(8)
            info = AsyncServiceInfo(
                SERVICE_TYPE,
                f"{token}.{SERVICE_TYPE}",
                port=port,
                properties=properties,
                server=f"junk-{token}.local.",
                parsed_addresses=addresses,
            )
            await raw.async_register_service(info, cooperating_responders=True)
        # One well-formed announcement after the junk: it goes through, nothing else did.
        token = secrets.token_hex(8)
        good = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{token}.{SERVICE_TYPE}",
            port=7010,
            properties={"v": "1", "h": hint},
            server=f"good-{token}.local.",
            parsed_addresses=LOOPBACK,
        )
        await raw.async_register_service(good, cooperating_responders=True)
        await wait_for(lambda: PeerSeen(victim, "127.0.0.1:7010") in a.events, timeout=10)
        await asyncio.sleep(1.0)
        assert a.peer_events() == [PeerSeen(victim, "127.0.0.1:7010")]
        junk_ports = {f":{port}" for _, port, _ in junk}
        # (Other test runs on this machine may have invitations open on loopback.)
        assert not [
            e for e in a.events if not isinstance(e, PeerGone) and e.address[-5:] in junk_ports
        ]
        assert failures == a.events
    finally:
        await raw.async_close()
    await wait_for(lambda: PeerGone(victim) in a.events, timeout=5)  # goodbyes on close


async def test_resolutions_in_flight_are_cancelled_on_stop(nodes: Callable[..., Node]) -> None:
    a = nodes()
    await a.discovery.start()
    raw = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        token = secrets.token_hex(8)
        info = AsyncServiceInfo(  # its host has no address record: resolution waits 3 s
            SERVICE_TYPE,
            f"{token}.{SERVICE_TYPE}",
            port=7020,
            properties={"v": "1"},
            server=f"nowhere-{token}.local.",
            addresses=[],
        )
        await raw.async_register_service(info, cooperating_responders=True)
        await wait_for(lambda: bool(a.discovery._resolving), timeout=10)
        tasks = list(a.discovery._resolving.values())
        await a.discovery.stop()
        assert all(task.done() for task in tasks)
        assert a.discovery._resolving == {}
    finally:
        await raw.async_close()


@given(st.binary(max_size=400))
def test_any_txt_bytes_parse_without_error(text: bytes) -> None:
    properties = _txt_properties(text)
    assert all(isinstance(key, bytes) for key in properties)
    node = Discovery(
        port=1,
        interfaces=LOOPBACK,
        own_secret=bytes(32),
        peer_secrets=lambda: {"p": bytes(32)},
        on_event=lambda e: None,
    )
    remote = node._parse(text, "127.0.0.1:1")
    assert remote.nameplate is None or re.fullmatch(r"[0-9]{3}", remote.nameplate)


def test_txt_parsing() -> None:
    assert _txt_properties(b"\x03v=1\x12h=0123456789abcdef\x08pair=314") == {
        b"v": b"1",
        b"h": b"0123456789abcdef",
        b"pair": b"314",
    }
    assert _txt_properties(b"\x03v=1\x03v=2\x04flag") == {b"v": b"1", b"flag": None}
    assert _txt_properties(b"\x09v=1") == {b"v": b"1"}  # truncated: what is there
    assert _txt_properties(b"\x05" + b"x" * 300) == {}  # too long
    assert _txt_properties(b"") == {}


# --- a spoofed announcement ends in a failed handshake ----------------------------------


def _rows(home: Path, table: str) -> int:
    with sqlite3.connect(f"file:{home / 'pli.db'}?mode=ro", uri=True) as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


async def test_spoofed_announcement_gets_a_failed_handshake(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    mallory = await start_daemon(tmp_path / "m", "Mallory")  # paired with nobody
    running: list[Running] = [a, b, mallory]
    b_id = b.daemon.me.peer_id
    b_secret = new_discovery_secret()  # b's discovery secret, as a holds it after pairing
    raw = AsyncZeroconf(interfaces=LOOPBACK)
    events: list[Event] = []
    watcher = Discovery(  # what a's daemon would run: it knows b's discovery secret
        port=a.port,
        interfaces=LOOPBACK,
        own_secret=new_discovery_secret(),
        peer_secrets=lambda: {b_id.hex: b_secret},
        on_event=events.append,
    )
    try:
        await pair(a, b)
        await watcher.start()
        # Mallory copies b's current hint (it is public) and points it at her daemon.
        token = secrets.token_hex(8)
        spoof = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{token}.{SERVICE_TYPE}",
            port=mallory.port,
            properties={"v": "1", "h": discovery_hint(b_secret, int(time.time()) // HOUR)},
            server=f"{token}.local.",
            parsed_addresses=LOOPBACK,
        )
        await raw.async_register_service(spoof)
        await wait_for(lambda: PeerSeen(b_id.hex, mallory.address) in events, timeout=10)
        # Discovery believed it: the address is only a hint. The handshake decides.
        with pytest.raises(PeerUnreachable, match="did not prove it is the expected peer"):
            await a.daemon.transport.connect(b_id, mallory.address)
        assert a.daemon.transport.channel(b_id) is None
        # A letter queued for b while a only knows Mallory's address is not sent there
        # (a also dials the addresses of b's signed card: here b signs one without any).
        row = a.daemon.store.peer(b_id.hex)
        assert row is not None
        card = ProfileCard.from_wire(row.card)
        bare = dataclasses.replace(card, seq=card.seq + 1, addresses=())
        row = dataclasses.replace(row, card=bare.sign(b.daemon.me.identity))
        await asyncio.to_thread(
            a.daemon.store.save_peer, dataclasses.replace(row, addresses=(mallory.address,))
        )
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère, ...")
        status, body = await a.api(
            "POST",
            "/v1/documents",
            {
                "to": [b_id.hex],
                "files": [{"path": str(letter)}],
                "kind": "letter",
            },
        )
        assert status == 202, body
        await wait_for(lambda: any(r.attempts >= 2 for r in a.daemon.store.outbox()), timeout=20)
        assert [r.state for r in a.daemon.store.outbox()] != ["delivered"]
        # Mallory learnt nothing and stored nothing.
        assert _rows(mallory.home, "peers") == 0
        assert _rows(mallory.home, "inbox") == 0
        assert [p for p in (mallory.home / "documents").rglob("*") if p.is_file()] == []
        assert [p for p in (mallory.home / "quarantine").rglob("*") if p.is_file()] == []
        # The real b, at its real address, gets the letter.
        await asyncio.to_thread(
            a.daemon.store.save_peer, dataclasses.replace(row, addresses=(b.address,))
        )
        await wait_for(lambda: [r.state for r in a.daemon.store.outbox()] == ["delivered"], 20)
        assert _rows(b.home, "inbox") == 1
    finally:
        await watcher.stop()
        await raw.async_close()
        for daemon in running:
            await daemon.stop()


# --- two network namespaces -------------------------------------------------------------


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.netns
def test_discovery_across_namespaces(netns_lan: Lan) -> None:
    ids = {ns.name: secrets.token_hex(32) for ns in netns_lan.namespaces}
    keys = {ns.name: new_discovery_secret() for ns in netns_lan.namespaces}
    port = 7717  # each namespace has its own ports
    processes = {}
    for ns, other in ((netns_lan.a, netns_lan.b), (netns_lan.b, netns_lan.a)):
        argv = [
            sys.executable,
            "-m",
            "tests.p2p.discovery_node",
            "--interface",
            ns.ip,
            "--port",
            str(port),
            "--secret",
            keys[ns.name].hex(),
            "--peer",
            f"{ids[other.name]}={keys[other.name].hex()}",
            "--expect",
            ids[other.name],
            "--linger",
            "2",
            "--seconds",
            "20",
        ]
        processes[ns.name] = netns_lan.run_in(
            ns, argv, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    outputs = {}
    for name, process in processes.items():
        out, err = process.communicate(timeout=40)
        outputs[name] = _lines(out)
        assert process.returncode == 0, f"{name}: {out}\n{err}"
    for ns, other in ((netns_lan.a, netns_lan.b), (netns_lan.b, netns_lan.a)):
        seen = [e for e in outputs[ns.name] if e["event"] == "PeerSeen"]
        assert seen[0]["peer_id"] == ids[other.name]
        assert seen[0]["address"] == f"{other.ip}:{port}"
        assert seen[0]["t"] < 5, seen
        assert {e["address"] for e in seen} == {f"{other.ip}:{port}"}


@pytest.mark.netns
def test_link_down_and_up_in_namespaces(netns_lan: Lan) -> None:
    """The helpers the daemon-level namespace test uses: reach across, cut, restore."""
    server = netns_lan.run_in(
        netns_lan.b,
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            netns_lan.b.ip,
            "8000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connect = (
        "import socket, sys, time\n"
        "deadline = time.monotonic() + float(sys.argv[2])\n"
        "while True:\n"
        "    try:\n"
        "        socket.create_connection((sys.argv[1], 8000), timeout=1).close()\n"
        "        sys.exit(0)\n"
        "    except OSError:\n"
        "        if time.monotonic() > deadline:\n"
        "            sys.exit(1)\n"
        "        time.sleep(0.1)\n"
    )

    def reachable(within: float) -> bool:
        client = netns_lan.run_in(
            netns_lan.a, [sys.executable, "-c", connect, netns_lan.b.ip, str(within)]
        )
        return client.wait(timeout=within + 10) == 0

    probe = netns_lan.run_in(
        netns_lan.a, [sys.executable, "-c", "print('inside')"], stdout=subprocess.PIPE, text=True
    )
    assert probe.communicate(timeout=10)[0].strip() == "inside"
    addresses = netns_lan.exec(netns_lan.a, "-4", "-o", "addr").stdout
    assert f"{netns_lan.a.ip}/24" in addresses
    assert "127.0.0.1" in addresses
    assert "224.0.0.0/4" in netns_lan.exec(netns_lan.b, "route").stdout
    assert reachable(within=10)
    netns_lan.link_down(netns_lan.b)
    assert not reachable(within=1)
    netns_lan.link_up(netns_lan.b)
    assert reachable(within=10)
    assert server.poll() is None  # still serving; teardown stops it


@pytest.mark.netns
def test_stale_namespaces_from_dead_runs_are_removed() -> None:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    stale = "pli-a-99999999-1"  # above any pid_max: its process is certainly gone
    netns.ip("netns", "add", stale)
    try:
        assert stale in netns.cleanup_stale()
    finally:
        netns.ip("netns", "delete", stale, check=False)
    assert stale not in netns.ip("netns", "list").stdout


def test_namespace_tests_skip_with_a_reason_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "network namespaces need root (CI runs as root)"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "iproute2" in str(netns.unavailable())


async def test_an_interface_address_the_machine_lacks_is_a_config_error() -> None:
    missing = "198.51.100.77"  # TEST-NET-2: never a local address; nothing is sent
    local = {str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips}
    assert missing not in local
    discovery = Discovery(
        port=7717,
        interfaces=[missing],
        own_secret=new_discovery_secret(),
        peer_secrets=dict,
        on_event=lambda e: None,
    )
    with pytest.raises(ConfigError, match="interfaces"):
        await discovery.start()
    assert not discovery.running
