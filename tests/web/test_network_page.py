"""The practice's page on the network (``web_tls = true``): HTTPS and a password sign-in.

A real daemon serves its page with TLS on a loopback port (the tests never listen
beyond 127.0.0.1; what differs for another address is only the Host allowlist,
tested with ``web_names``). Its self-signed certificate names the page's
addresses, so a client that trusts that one certificate verifies the connection;
its SHA-256 is what ``pli open`` and ``pli status`` print. A one-time link is not
enough any more: a person signs in with a name and a password from
``pli web-user set``; the cookie is Secure, HSTS is sent, tries are limited.
Without ``web_tls`` an address other machines reach is refused (test_guard.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, kill_all
from p2p.daemon import harness
from p2p.errors import ConfigError
from p2p.storage import config, webcert, webusers
from p2p.web import signin
from tests.web import browser as chromium
from tests.web.conftest import off_loop
from tests.web.visitor import Visitor

PASSWORD = "le secrétariat du port"
EXTRA_NAME = "pli.cabinet.test"


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeProcess]:
    root: Path = tmp_path_factory.mktemp("tls")
    daemon = PracticeProcess(root / "gp", "Dr Martin", web_tls=True, web_names=[EXTRA_NAME]).start()
    try:
        yield daemon
    finally:
        kill_all(daemon)


def page_of(daemon: PracticeProcess) -> dict[str, str]:
    page: dict[str, str] = off_loop(daemon.client.get, "/v1/status")["page"]
    return page


def trusting(daemon: PracticeProcess) -> ssl.SSLContext:
    """A TLS client that trusts the page's own certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(daemon.home / webcert.CERT_FILE))


def visitor(daemon: PracticeProcess) -> Visitor:
    port = page_of(daemon)["listen"].rpartition(":")[2]
    return Visitor(f"https://127.0.0.1:{port}", tls=trusting(daemon))


def web_user(daemon: PracticeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harness.pli_command(daemon.home, "web-user", *args),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PLI_WEB_PASSWORD": PASSWORD},
    )


def test_an_address_other_machines_reach_needs_tls(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('web_listen = "0.0.0.0:7718"\n')
    with pytest.raises(ConfigError, match="web_tls = true"):
        config.load(tmp_path)
    (tmp_path / "config.toml").write_text('web_listen = "192.168.1.20:7718"\nweb_tls = true\n')
    loaded = config.load(tmp_path)
    assert (loaded.web_host, loaded.web_tls) == ("192.168.1.20", True)


def test_the_page_is_https_with_the_certificate_pli_open_prints(
    practice: PracticeProcess,
) -> None:
    page = page_of(practice)
    assert page["sign_in"] == "password"
    port = int(page["listen"].rpartition(":")[2])
    served = ssl.get_server_certificate(("127.0.0.1", port))
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(served)).hexdigest().upper()
    assert page["tls_fingerprint"].replace(":", "") == digest
    shown = practice.pli("--json", "open", "--no-browser")
    opened = json.loads(shown.stdout)
    assert opened == {
        "url": f"https://127.0.0.1:{port}/signin",
        "tls_fingerprint": page["tls_fingerprint"],
    }
    status = practice.pli("status")
    assert page["tls_fingerprint"] in status.stdout

    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = plain.recv(4096)
    assert b"<html" not in answer  # nothing over plain HTTP
    assert b"pli" not in answer

    for name in ("127.0.0.1", "localhost", EXTRA_NAME):  # the names the certificate carries
        context = trusting(practice)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_a_link_alone_no_longer_signs_in(practice: PracticeProcess) -> None:
    stranger = visitor(practice)
    first = stranger.get("/")
    assert (first.status, first.headers["location"]) == (303, "/signin")
    assert stranger.get("/login/" + "a" * 43).status == 403
    assert "name and a password" in stranger.get("/login/anything").text
    assert stranger.get("/colleagues").status == 303
    assert stranger.request("POST", "/compose").status == 401
    assert stranger.get("/", Host="evil.example").status == 403  # rebinding, as on loopback


def test_sign_in_by_name_and_password_with_a_secure_cookie(
    practice: PracticeProcess,
) -> None:
    nobody = visitor(practice).post_form("/signin", {"name": "secretariat", "password": PASSWORD})
    assert nobody.status == 403
    assert "Personne ne peut encore se connecter" in nobody.text  # the page is French first
    made = web_user(practice, "set", "secretariat")
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in (practice.home / "web" / "users.json").read_text(encoding="utf-8")
    assert "secretariat" in web_user(practice, "--json").stdout

    person = visitor(practice)
    wrong = person.post_form("/signin", {"name": "secretariat", "password": "pas le bon mot"})
    assert wrong.status == 403
    unknown = person.post_form("/signin", {"name": "inconnu", "password": PASSWORD})
    assert (unknown.status, unknown.text.count("Nom ou mot de passe incorrect.")) == (403, 1)
    assert "Nom ou mot de passe incorrect." in wrong.text
    forged = person.post_form(
        "/signin", {"name": "secretariat", "password": PASSWORD}, Origin="https://evil.example"
    )
    assert forged.status == 403
    assert not person.cookies

    signed = person.post_form("/signin", {"name": "secretariat", "password": PASSWORD})
    assert signed.status == 303
    cookie = next(c for c in person.set_cookies if c.startswith("pli_session="))
    assert re.search(r";\s*Secure", cookie), cookie
    assert re.search(r";\s*HttpOnly", cookie), cookie
    assert re.search(r";\s*SameSite=Strict", cookie), cookie
    assert signed.headers["strict-transport-security"].startswith("max-age=")
    inbox = person.get("/")
    assert inbox.status == 200
    assert "Boîte de réception" in inbox.text
    assert person.post_form("/lang", {"lang": "en"}).status == 403  # still the CSRF token
    assert person.post_form("/lang", {"lang": "en", "csrf": person.csrf()}).status == 303
    port = person.base.rsplit(":", 1)[1]
    assert person.get("/", Host=f"{EXTRA_NAME}:{port}").status == 200  # a name of web_names

    assert web_user(practice, "remove", "secretariat").returncode == 0
    again = visitor(practice).post_form("/signin", {"name": "secretariat", "password": PASSWORD})
    assert again.status == 403


def test_tries_are_limited(tmp_path: Path) -> None:
    """A program on the LAN cannot guess passwords quickly (its own daemon: fresh limits)."""
    daemon = PracticeProcess(tmp_path / "gp", "Dr Martin", web_tls=True).start()
    try:
        assert web_user(daemon, "set", "secretariat").returncode == 0
        guesser = visitor(daemon)
        answers = [
            guesser.post_form("/signin", {"name": "secretariat", "password": f"essai {n:04}"})
            for n in range(signin.PER_ADDRESS[0] + 1)
        ]
        assert [a.status for a in answers[:-1]] == [403] * signin.PER_ADDRESS[0]
        assert answers[-1].status == 429
        assert "attendez une minute" in answers[-1].text
        right = guesser.post_form("/signin", {"name": "secretariat", "password": PASSWORD})
        assert right.status == 429  # even the right one waits: nothing is learnt by trying
    finally:
        kill_all(daemon)


def test_the_certificate_is_kept_renewed_for_new_names_or_the_practices_own(
    tmp_path: Path,
) -> None:
    first = webcert.ensure(tmp_path, ["127.0.0.1", "pli.cabinet.test"])
    assert first.made_here
    assert webcert.ensure(tmp_path, ["127.0.0.1"]).fingerprint == first.fingerprint
    more = webcert.ensure(tmp_path, ["127.0.0.1", "192.168.1.20"])
    assert more.fingerprint != first.fingerprint  # a new address: a certificate naming it
    assert oct((tmp_path / webcert.KEY_FILE).stat().st_mode & 0o777) == "0o600"
    own = webcert.ensure(
        tmp_path / "elsewhere",
        [],
        own_cert=str(more.certificate),
        own_key=str(more.private_key),
    )
    assert (own.fingerprint, own.made_here) == (more.fingerprint, False)
    with pytest.raises(ConfigError, match="web_certificate"):
        webcert.ensure(tmp_path, [], own_cert=str(tmp_path / "nope.pem"), own_key="nope.key")


def test_signing_in_in_chromium(practice: PracticeProcess) -> None:
    if not chromium.CHROMIUM.exists():
        pytest.skip(f"no chromium at {chromium.CHROMIUM}")
    from playwright.sync_api import expect

    assert web_user(practice, "set", "dr.martin").returncode == 0
    url = json.loads(practice.pli("--json", "open", "--no-browser").stdout)["url"]
    with chromium.launched() as browser:
        page = chromium.french_page(browser, ignore_https_errors=True)
        context = page.context
        page.goto(url.replace("/signin", "/"))
        expect(page.get_by_test_id("signin-form")).to_be_visible()
        expect(page.get_by_test_id("tls-fingerprint")).to_have_text(
            page_of(practice)["tls_fingerprint"]
        )
        chromium.shoot(page, "signin")
        chromium.accessible(page)
        page.get_by_test_id("signin-name").fill("dr.martin")
        page.get_by_test_id("signin-password").fill(PASSWORD)
        page.get_by_test_id("signin").click()
        expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()
        cookies = context.cookies()
        assert [c["secure"] for c in cookies if c["name"] == "pli_session"] == [True]


def test_web_user_refuses_short_passwords_and_odd_names(tmp_path: Path) -> None:
    from tests.p2p.clirun import run

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    short = run("--home", home, "web-user", "set", "secretariat", answer="court\ncourt\n")
    assert short.exit_code == 1
    assert "too short" in short.output
    spaced = run("--home", home, "web-user", "set", "le secrétariat")
    assert spaced.exit_code == 1
    assert "without spaces" in spaced.output
    made = run("--home", home, "web-user", "set", "secretariat", answer=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    assert webusers.check(home, "secretariat", PASSWORD)
    assert not webusers.check(home, "secretariat", PASSWORD + "!")
    assert not webusers.check(home, "personne", PASSWORD)
    listed = run("--home", home, "--json", "web-user")
    assert json.loads(listed.stdout)["name"] == "secretariat"
    assert run("--home", home, "web-user", "remove", "personne").exit_code == 1
