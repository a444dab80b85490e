"""The page served to a practice's LAN for real: a daemon in one network namespace,
its page on the namespace's own address with ``web_tls``, a browser-like client in
the other namespace across the bridge (tests/p2p/netns.py; nothing leaves them).

The client trusts only the page's certificate (made for that address), signs in
with a name and a password, and gets a Secure cookie; the one-time link does not
sign it in; the same address without ``web_tls`` makes the daemon refuse to start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2p.cli.client import Client
from p2p.daemon import harness
from p2p.storage import webcert
from tests.p2p import netns
from tests.p2p.netns import Lan

netns_lan = netns.netns_lan
pytestmark = [pytest.mark.netns, pytest.mark.slow]
PASSWORD = "le secrétariat du port"

#: Run in the client's namespace: sign in over HTTPS, print what came back as JSON.
CLIENT = r"""
import http.client, json, ssl, sys, urllib.parse
host, port, ca, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=ca)
def ask(method, path, body=None, headers=None):
    connection = http.client.HTTPSConnection(host, port, timeout=20, context=context)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    return answer.status, answer.getheader("Set-Cookie") or "", answer.read().decode()
form = urllib.parse.urlencode({"name": "secretariat", "password": password})
status, cookie, _ = ask("POST", "/signin", form, {
    "Content-Type": "application/x-www-form-urlencoded", "Origin": f"https://{host}:{port}"})
session = cookie.split(";")[0]
inbox = ask("GET", "/", headers={"Cookie": session})
link = ask("GET", "/login/" + "a" * 43)
print(json.dumps({"signin": status, "cookie": cookie, "inbox": inbox[0],
                  "inbox_text": inbox[2][:4000], "link": link[0]}))
"""


def in_ns(ns: netns.Namespace, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` run inside the namespace ``ns``; what it printed."""
    command = ["ip", "netns", "exec", ns.name, *argv]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def test_the_page_on_a_lan_address_with_tls_and_a_password(netns_lan: Lan, tmp_path: Path) -> None:
    server, browser = netns_lan.a, netns_lan.b
    home = tmp_path / "gp"
    plain = {"discovery": False, "web_listen": f"{server.ip}:7718"}
    harness.prepare_home(home, "Dr Martin", settings=plain)
    refused = in_ns(server, *harness.pli_command(home, "daemon"))
    assert refused.returncode == 1
    assert "web_tls = true" in refused.stderr

    (home / "config.toml").write_text(
        f'discovery = false\nweb_listen = "{server.ip}:7718"\nweb_tls = true\n', encoding="utf-8"
    )
    daemon = harness.DaemonProcess(
        home, listen=f"{server.ip}:7717", wrapper=["ip", "netns", "exec", str(server)]
    )
    daemon.start(timeout=20)
    assert daemon.proc is not None
    netns_lan.processes.append(daemon.proc)
    page = Client(home).get("/v1/status")["page"]
    assert page["listen"] == f"{server.ip}:7718"
    made = subprocess.run(
        harness.pli_command(home, "web-user", "set", "secretariat"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PLI_WEB_PASSWORD": PASSWORD},
    )
    assert made.returncode == 0, made.stderr

    ca = str(home / webcert.CERT_FILE)
    seen = in_ns(browser, sys.executable, "-c", CLIENT, server.ip, "7718", ca, PASSWORD)
    assert seen.returncode == 0, seen.stderr
    answer = json.loads(seen.stdout)
    assert answer["signin"] == 303  # the certificate names the LAN address: verified
    assert "Secure" in answer["cookie"]
    assert "HttpOnly" in answer["cookie"]
    assert answer["inbox"] == 200
    assert "Boîte de réception" in answer["inbox_text"]
    assert answer["link"] == 403
