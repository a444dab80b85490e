"""Two network namespaces on one bridge: a private LAN for real multicast tests.

::

    ┌ pli-a-<pid>-<n> ┐      ┌──── pli-br-<pid>-<n> ────┐      ┌ pli-b-<pid>-<n> ┐
    │ eth0 10.231.7.1 ├─veth─┤ veth-a ─ br0 ─ veth-b    ├─veth─┤ eth0 10.231.7.2 │
    │ lo up           │      │ (bridge, no snooping)    │      │ lo up           │
    └─────────────────┘      └──────────────────────────┘      └─────────────────┘

Everything lives inside namespaces this module creates (nothing is added to
the machine's own namespace, no address outside them is used), and a
``224.0.0.0/4`` route on each ``eth0`` sends multicast onto the bridge.
Teardown kills the processes started with ``run_in`` and deletes the three
namespaces even when the test failed; at start, namespaces named ``pli-*-<pid>``
left by a process that no longer exists are deleted too.

Use the ``netns_lan`` fixture (bind it in the test module; a plain import of a
fixture used as an argument trips ruff's F811) or the ``lan()`` context
manager for another scope::

    from . import netns
    from .netns import Lan

    netns_lan = netns.netns_lan

    @pytest.mark.netns
    def test_x(netns_lan: Lan) -> None:
        proc = netns_lan.run_in(netns_lan.a, ["python", "-c", "..."], stdout=PIPE)
        netns_lan.link_down(netns_lan.b)   # cable pulled (bridge side down)
        netns_lan.link_up(netns_lan.b)

``routed()`` / ``netns_routed`` build another shape: A and B each on a link of
their own to the middle namespace (``lan.bridge``), which holds ``SERVER_IP`` and
forwards nothing — both reach the server there, never each other::

    pli-a 10.231.8.1 ── 10.231.8.254 [pli-br: SERVER_IP on lo] 10.231.9.254 ── 10.231.9.1 pli-b

Needs root and iproute2 (``apt-get install -y iproute2``); the fixture skips
with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

SUBNET = "10.231.7"  # /24, only ever inside the namespaces below
PREFIX = 24
IFACE = "eth0"  # each namespace's end of its veth pair
BRIDGE = "br0"
SERVER_IP = "10.231.10.1"  # the middle namespace's own address in ``routed()``
_STALE = re.compile(r"^pli-(?:a|b|br)-(\d+)-\d+$")
_counter = itertools.count(1)


@dataclass(frozen=True)
class Namespace:
    name: str  # e.g. pli-a-4242-1
    ip: str  # its address on the bridge, e.g. 10.231.7.1
    iface: str = IFACE
    bridge_port: str = ""  # the veth end plugged into the bridge, in the bridge namespace

    def __str__(self) -> str:
        return self.name


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` and return its result (``check``: raise with stderr on failure)."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def unavailable() -> str | None:
    """Why namespaces cannot be built here, or None if they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the ip command is missing (apt-get install -y iproute2)"
    probe = f"pli-probe-{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    return None


def _namespaces() -> list[str]:
    listing = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete ``pli-*`` namespaces whose creating process is gone; return their names."""
    removed = []
    for name in _namespaces():
        match = _STALE.match(name)
        stale = match is not None and not _alive(int(match.group(1)))
        if stale and ip("netns", "delete", name, check=False).returncode == 0:
            removed.append(name)
    return removed


def run_in(ns: Namespace | str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` inside namespace ``ns`` (``ip netns exec``)."""
    return subprocess.Popen(["ip", "netns", "exec", str(ns), *argv], **popen_kwargs)


@dataclass
class Lan:
    a: Namespace
    b: Namespace
    bridge: str  # the namespace that holds br0
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def namespaces(self) -> tuple[Namespace, Namespace]:
        return self.a, self.b

    def _ns(self, ns: Namespace | str) -> Namespace:
        for candidate in self.namespaces:
            if ns in (candidate, candidate.name):
                return candidate
        raise ValueError(f"{ns} is not a namespace of this LAN")

    def run_in(
        self, ns: Namespace | str, argv: Sequence[str], **popen_kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``ns``; it is killed at teardown if still running."""
        process = run_in(self._ns(ns), argv, **popen_kwargs)
        self.processes.append(process)
        return process

    def exec(self, ns: Namespace | str, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n NS ARGS`` (e.g. ``lan.exec(lan.a, "addr")``)."""
        return ip("-n", self._ns(ns).name, *args)

    def link_down(self, ns: Namespace | str) -> None:
        """Pull ``ns``'s cable: its bridge port goes down (``eth0`` loses carrier).

        The namespace keeps its address and routes, as a laptop whose cable is
        unplugged does; packets to and from it are lost until ``link_up``.
        """
        ip("-n", self.bridge, "link", "set", self._ns(ns).bridge_port, "down")

    def link_up(self, ns: Namespace | str) -> None:
        """Plug ``ns``'s cable back in."""
        ip("-n", self.bridge, "link", "set", self._ns(ns).bridge_port, "up")

    def stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextlib.contextmanager
def _three_namespaces(a_ip: str, b_ip: str) -> Iterator[Lan]:
    """A, B and the middle namespace, named after this process, with ``lo`` up in the
    middle; on exit the processes started in them are stopped and all three deleted."""
    cleanup_stale()
    tag = f"{os.getpid()}-{next(_counter)}"
    a = Namespace(f"pli-a-{tag}", a_ip, bridge_port="veth-a")
    b = Namespace(f"pli-b-{tag}", b_ip, bridge_port="veth-b")
    network = Lan(a, b, f"pli-br-{tag}")
    created: list[str] = []
    try:
        for name in (network.bridge, a.name, b.name):
            ip("netns", "add", name)
            created.append(name)
        ip("-n", network.bridge, "link", "set", "lo", "up")
        yield network
    finally:
        network.stop_processes()
        for name in reversed(created):
            ip("netns", "delete", name, check=False)


def _bring_up(ns: Namespace) -> None:
    """``lo`` and ``eth0`` up in ``ns``, with its address (its veth end is already in it)."""
    ip("-n", ns.name, "link", "set", "lo", "up")
    ip("-n", ns.name, "addr", "add", f"{ns.ip}/{PREFIX}", "dev", ns.iface)
    ip("-n", ns.name, "link", "set", ns.iface, "up")


def _skip_without_namespaces() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


@contextlib.contextmanager
def lan() -> Iterator[Lan]:
    """Build the two namespaces and the bridge; tear everything down on exit."""
    with _three_namespaces(f"{SUBNET}.1", f"{SUBNET}.2") as network:
        bridge = network.bridge
        ip("-n", bridge, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
        ip("-n", bridge, "link", "set", BRIDGE, "up")
        for ns in network.namespaces:
            veth = ["link", "add", ns.bridge_port, "type", "veth", "peer", "name", ns.iface]
            ip("-n", bridge, *veth, "netns", ns.name)
            ip("-n", bridge, "link", "set", ns.bridge_port, "master", BRIDGE)
            ip("-n", bridge, "link", "set", ns.bridge_port, "up")
            _bring_up(ns)
            ip("-n", ns.name, "route", "add", "224.0.0.0/4", "dev", ns.iface)
        yield network


@pytest.fixture
def netns_lan() -> Iterator[Lan]:
    """Two namespaces on a private bridge (skips unless root with iproute2)."""
    _skip_without_namespaces()
    with lan() as network:
        yield network


@contextlib.contextmanager
def routed() -> Iterator[Lan]:
    """A and B routed only to the middle namespace (``bridge``), which holds ``SERVER_IP``."""
    with _three_namespaces("10.231.8.1", "10.231.9.1") as network:
        middle = network.bridge
        ip("-n", middle, "addr", "add", f"{SERVER_IP}/32", "dev", "lo")
        forwarding = ["ip", "netns", "exec", middle, "sh", "-c"]
        subprocess.run([*forwarding, "echo 0 > /proc/sys/net/ipv4/ip_forward"], check=True)
        for ns in network.namespaces:
            gateway = ns.ip.rpartition(".")[0] + ".254"
            port = ns.bridge_port
            ip("-n", middle, "link", "add", port, "type", "veth", "peer", "name", ns.iface)
            ip("-n", middle, "link", "set", ns.iface, "netns", ns.name)
            ip("-n", middle, "addr", "add", f"{gateway}/{PREFIX}", "dev", port)
            ip("-n", middle, "link", "set", port, "up")
            _bring_up(ns)
            ip("-n", ns.name, "route", "add", "default", "via", gateway)
        yield network


@pytest.fixture
def netns_routed() -> Iterator[Lan]:
    """A and B that reach only the middle namespace (skips unless root with iproute2)."""
    _skip_without_namespaces()
    with routed() as network:
        yield network
