"""Two practices in two network namespaces that reach only a third, holding nats-server.

Issue 12 §2, first bullet: A and B cannot reach each other (the middle
namespace forwards nothing), only the mailbox server between them. They pair by
code through the mailbox (the local network search finds nothing), then a letter
goes from A to B through the mailbox and its signed receipt comes back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.client import Client
from p2p.cli.practice import wait_until
from p2p.daemon import harness
from p2p.services.mailbox import server_config

from . import netns
from .natsserver import nats_binary
from .netns import SERVER_IP, Lan, Namespace

netns_routed = netns.netns_routed
pytestmark = [pytest.mark.netns, pytest.mark.slow]

PORT = 4222
URL = f"nats://{SERVER_IP}:{PORT}"


class Practice:
    def __init__(self, lan: Lan, ns: Namespace, home: Path, name: str) -> None:
        self.ns, self.home = ns, home
        settings = {"discovery": True, "interfaces": [ns.ip], "retry_min": 0.2, "retry_max": 1.0}
        harness.prepare_home(home, name, settings=settings)
        self.daemon = harness.DaemonProcess(
            home, listen=f"{ns.ip}:7717", wrapper=["ip", "netns", "exec", str(ns)]
        )
        self.client = Client(home)

    def member_key(self) -> str:
        done = subprocess.run(
            harness.pli_command(self.home, "--json", "mailbox", "key"),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        key: str = json.loads(done.stdout)["member"]
        return key

    def start(self, lan: Lan) -> None:
        self.daemon.start(timeout=20)
        assert self.daemon.proc is not None
        lan.processes.append(self.daemon.proc)  # stopped with the namespaces' processes
        self.client.post("/v1/mailboxes", {"url": URL})

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, body)

    def outbox(self, doc_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = next(e for e in self.get("/v1/outbox") if e["id"] == doc_id)
        return entry

    def connected(self) -> bool:
        return [m["state"] for m in self.get("/v1/mailboxes")] == ["connected"]


def start_server(lan: Lan, folder: Path, members: list[str]) -> None:
    folder.mkdir(parents=True)
    config = folder / "nats.conf"
    config.write_text(
        server_config.render(
            [server_config.Member.parse(m) for m in members],
            listen=f"{SERVER_IP}:{PORT}",
            store_dir=str(folder / "store"),
            quota_gb=1,
        )
    )
    log = folder / "nats.log"
    with open(log, "ab") as out:
        server = netns.run_in(
            lan.bridge, [nats_binary(), "-c", str(config)], stdout=out, stderr=out
        )
    lan.processes.append(server)  # stopped at teardown
    wait_until(lambda: "Server is ready" in log.read_text(errors="replace"), timeout=20)


def reaches(lan: Lan, ns: Namespace, address: str, port: int) -> bool:
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=2).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    done = lan.run_in(ns, [sys.executable, "-c", probe])
    return done.wait(timeout=10) == 0


def test_pair_through_the_mailbox_then_a_letter_and_its_receipt(
    netns_routed: Lan, tmp_path: Path
) -> None:
    lan = netns_routed
    a = Practice(lan, lan.a, tmp_path / "a", "Dr Alice Martin")
    b = Practice(lan, lan.b, tmp_path / "b", "Dr Bob Durand")
    start_server(lan, tmp_path / "nats", [a.member_key(), b.member_key()])
    try:
        for practice in (a, b):
            practice.start(lan)
        assert reaches(lan, lan.a, SERVER_IP, PORT)
        assert reaches(lan, lan.b, SERVER_IP, PORT)
        assert not reaches(lan, lan.a, lan.b.ip, 7717)  # no direct path, either way
        assert not reaches(lan, lan.b, lan.a.ip, 7717)
        wait_until(lambda: a.connected() and b.connected(), timeout=30)

        invitation = a.post("/v1/pair/invite", {"yes": True})
        attempt = b.post("/v1/pair/accept", {"code": invitation["code"], "yes": True})
        assert attempt["address"] == f"mailbox {URL}"
        until = "?timeout=30&until=paired,failed"
        assert b.get(f"/v1/pair/{attempt['id']}{until}")["state"] == "paired"
        assert a.get(f"/v1/pair/{invitation['id']}{until}")["state"] == "paired"
        b_id = a.get("/v1/peers")[0]["peer_id"]

        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère, je vous adresse Mme D.\n")
        body = {"to": [b_id], "kind": "letter", "files": [{"path": str(letter)}]}
        doc_id = a.post("/v1/documents", body)["id"]
        wait_until(lambda: a.outbox(doc_id)["state"] == "delivered", timeout=90, interval=0.2)
        assert a.outbox(doc_id)["via"] == f"mailbox {URL}"
        assert a.outbox(doc_id)["receipt_via"] == "mailbox"
        assert [e["id"] for e in b.get("/v1/inbox")] == [doc_id]
    finally:
        lan.stop_processes()
        a.daemon.stop()
        b.daemon.stop()
