"""Two `pli daemon` processes in two network namespaces on one bridge.

Real multicast discovery across the bridge, pairing by code found by mDNS, a
letter delivered; then a cable pulled: the next letter waits in the outbox and
goes by itself once the cable is back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.client import Client
from p2p.cli.practice import wait_until
from p2p.daemon import harness

from . import netns
from .netns import Lan, Namespace

netns_lan = netns.netns_lan
pytestmark = [pytest.mark.netns, pytest.mark.slow]


class Practice:
    def __init__(self, lan: Lan, ns: Namespace, home: Path, name: str) -> None:
        self.lan, self.ns, self.home = lan, ns, home
        settings = {"discovery": True, "interfaces": [ns.ip], "retry_min": 0.2, "retry_max": 1.0}
        harness.prepare_home(home, name, settings=settings)
        self.daemon = harness.DaemonProcess(
            home, listen=f"{ns.ip}:7717", wrapper=["ip", "netns", "exec", str(ns)]
        )
        self.daemon.start(timeout=20)
        assert self.daemon.proc is not None
        lan.processes.append(self.daemon.proc)  # stopped with the LAN's processes at teardown
        self.client = Client(home)

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, body)

    def send(self, to_peer: str, path: Path) -> str:
        body = {"to": [to_peer], "kind": "letter", "files": [{"path": str(path)}]}
        doc_id: str = self.post("/v1/documents", body)["id"]
        return doc_id

    def state(self, doc_id: str) -> str:
        state: str = next(e["state"] for e in self.get("/v1/outbox") if e["id"] == doc_id)
        return state


def test_discover_pair_deliver_and_survive_a_pulled_cable(netns_lan: Lan, tmp_path: Path) -> None:
    a = Practice(netns_lan, netns_lan.a, tmp_path / "a", "Dr Alice Martin")
    b = Practice(netns_lan, netns_lan.b, tmp_path / "b", "Dr Bob Durand")
    try:
        invitation = a.post("/v1/pair/invite", {"yes": True})
        attempt = b.post("/v1/pair/accept", {"code": invitation["code"], "yes": True})
        assert attempt["address"] == f"{netns_lan.a.ip}:7717"  # found by multicast DNS
        until = "?timeout=30&until=paired,failed"
        assert b.get(f"/v1/pair/{attempt['id']}{until}")["state"] == "paired"
        assert a.get(f"/v1/pair/{invitation['id']}{until}")["state"] == "paired"
        b_id = a.get("/v1/peers")[0]["peer_id"]

        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère, je vous adresse Mme D.\n")
        first = a.send(b_id, letter)
        wait_until(lambda: a.state(first) == "delivered", timeout=30)

        netns_lan.link_down(netns_lan.b)
        second = a.send(b_id, letter)
        time.sleep(3)
        assert a.state(second) in ("queued", "sending")
        netns_lan.link_up(netns_lan.b)
        wait_until(lambda: a.state(second) == "delivered", timeout=90, interval=0.2)
        assert {e["id"] for e in b.get("/v1/inbox")} == {first, second}
    finally:
        netns_lan.stop_processes()
        a.daemon.stop()
        b.daemon.stop()
