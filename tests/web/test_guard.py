"""The page's defences against other programs and other sites (docs/threat-model.md §7.9).

Each test sends the request an attacker's page or a local program would send, to a
real daemon's page, and checks it is refused with pli's words; ``test_chromium.py``
checks the same refusals in a real browser.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, kill_all
from p2p.daemon.harness import free_port
from p2p.daemon.weblinks import LoginLinks, PageNotRunning
from p2p.errors import ConfigError
from p2p.storage import config
from p2p.web.guard import CSP, Sessions
from tests.web.conftest import Practice
from tests.web.visitor import Visitor

PAGES = ("/", "/outbox", "/compose", "/prescribe", "/colleagues", "/settings")


def test_login_link_sets_a_strict_httponly_cookie_and_is_spent(
    practices: tuple[Practice, Practice],
) -> None:
    gp, _ = practices
    url = gp.link()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/login/[A-Za-z0-9_-]{43}", url)
    first = Visitor(url.split("/login/")[0])
    answer = first.login(url)
    assert answer.status == 303
    assert answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert first.get("/").status == 200
    second = Visitor(first.base)  # the same link again, e.g. from the browser's history
    spent = second.login(url)
    assert spent.status == 403
    assert "pli open" in spent.text
    assert "pli_session" not in second.cookies


def test_without_a_session_nothing_is_shown(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    stranger = Visitor(gp.visitor().base)  # another local user: the port, no cookie
    for path in (*PAGES, "/events", "/documents/0000"):
        answer = stranger.get(path)
        assert answer.status == 401, path
        assert "pli open" in answer.text
    stranger.cookies["pli_session"] = "guessed"
    assert stranger.get("/").status == 401


def test_without_a_session_the_page_tells_nothing_of_its_paths(
    practices: tuple[Practice, Practice],
) -> None:
    """A page that exists and one that does not, any method: the same plain answer,
    which says how to open the page and nothing of what is behind it."""
    gp, _ = practices
    stranger = Visitor(gp.visitor().base)
    answers = [
        stranger.request(method, path)
        for method in ("GET", "POST", "PUT", "DELETE")
        for path in (
            "/compose",
            "/colleagues/pair/x",
            "/no/such/page",
            "/documents/0000/files/0/view",
        )
    ]
    assert {(a.status, a.body) for a in answers} == {(answers[0].status, answers[0].body)}
    assert answers[0].status == 401
    assert answers[0].headers["content-type"].startswith("text/plain")
    assert answers[0].text.startswith("pli : vous n'êtes pas connecté(e).")
    assert "pli open" in answers[0].text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7718", "127.0.0.1.nip.io", ""])
def test_a_foreign_host_is_refused_before_anything(
    practices: tuple[Practice, Practice], host: str
) -> None:
    """DNS rebinding: a site whose name resolves to 127.0.0.1 reads nothing, even signed in."""
    gp, _ = practices
    visitor = gp.visitor()
    for path in ("/", "/login/x", "/static/style.css"):
        answer = visitor.get(path, Host=host)
        assert answer.status == 403, path
        assert "127.0.0.1" in answer.text
    assert visitor.get("/", Host="localhost").status == 200


def test_state_changes_need_our_origin_and_the_csrf_token(
    practices: tuple[Practice, Practice],
) -> None:
    gp, _ = practices
    visitor = gp.visitor()
    token = visitor.csrf()
    fields = {"csrf": token, "lang": "en", "back": "/"}
    foreign = visitor.post_form("/lang", fields, Origin="http://evil.example")
    assert foreign.status == 403
    assert "Origin" in foreign.text
    no_origin = visitor.request(
        "POST", "/lang", b"lang=en", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert no_origin.status == 403
    no_token = visitor.post_form("/lang", {"lang": "en", "back": "/"})
    assert no_token.status == 403
    assert "CSRF" in no_token.text
    wrong = visitor.post_form("/lang", {**fields, "csrf": token[:-1] + "x"})
    assert wrong.status == 403
    assert 'lang="fr"' in visitor.get("/").text  # nothing changed so far
    done = visitor.post_form("/lang", fields)
    assert done.status == 303
    assert 'lang="en"' in visitor.get("/").text
    assert visitor.post_form("/lang", {**fields, "lang": "fr"}).status == 303


def test_every_page_reads_in_french_and_english(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    visitor = gp.visitor()
    french = {path: visitor.get(path) for path in PAGES}
    assert all(answer.status == 200 for answer in french.values())
    assert "Boîte de réception" in french["/"].text
    assert (
        visitor.post_form("/lang", {"csrf": visitor.csrf(), "lang": "en", "back": "/"}).status
        == 303
    )
    english = {path: visitor.get(path) for path in PAGES}
    assert all(answer.status == 200 for answer in english.values())
    assert "Inbox" in english["/"].text
    assert "Recipient" in english["/compose"].text
    assert (
        visitor.post_form("/lang", {"csrf": visitor.csrf(), "lang": "fr", "back": "/"}).status
        == 303
    )


def test_every_answer_has_the_strict_headers(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    visitor = gp.visitor()
    answers = [visitor.get(path) for path in PAGES]
    answers += [Visitor(visitor.base).get("/"), visitor.get("/", Host="evil.example")]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP
        assert "default-src 'self'" in CSP
        assert "frame-ancestors 'none'" in CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        # not no-referrer: with it a browser's form POST says "Origin: null" and is refused
        assert answer.headers["referrer-policy"] == "same-origin"


def test_no_page_has_inline_script_or_handlers(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    visitor = gp.visitor()
    for path in PAGES:
        html = visitor.get(path).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
        assert scripts, path
        assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "javascript:" not in html


def test_pli_open_prints_a_one_time_link_as_json(practices: tuple[Practice, Practice]) -> None:
    gp, _ = practices
    shown = gp.daemon.pli("--json", "open", "--no-browser")
    url = json.loads(shown.stdout)["url"]
    visitor = Visitor(url.split("/login/")[0])
    assert visitor.login(url).status == 303
    assert visitor.login(url).status == 403


def test_links_expire_and_are_used_once() -> None:
    links = LoginLinks(lifetime=0.05)
    with pytest.raises(PageNotRunning, match="web_listen"):
        links.new_link()
    links.address = "127.0.0.1:7718"
    token = links.new_link().rsplit("/", 1)[1]
    late = links.new_link().rsplit("/", 1)[1]
    assert links.redeem(token)
    assert not links.redeem(token)
    time.sleep(0.1)
    assert not links.redeem(late)
    assert not links.redeem("")


def test_sessions_end_when_idle_or_too_old() -> None:
    sessions = Sessions(idle=0.05, lifetime=10)
    key, _ = sessions.new()
    assert sessions.find(key) is not None
    time.sleep(0.1)
    assert sessions.find(key) is None
    old = Sessions(idle=10, lifetime=0.05)
    key, _ = old.new()
    time.sleep(0.06)
    assert old.find(key) is None


@pytest.mark.parametrize("address", ["0.0.0.0:7718", "192.168.1.20:7718", "pli.example:80"])
def test_the_page_refuses_an_address_other_machines_reach(tmp_path: Path, address: str) -> None:
    (tmp_path / "config.toml").write_text(f'web_listen = "{address}"\n')
    with pytest.raises(ConfigError, match="on this computer only"):
        config.load(tmp_path)
    (tmp_path / "config.toml").write_text('web_listen = "[::1]:7718"\n')
    assert config.load(tmp_path).web_host == "::1"


def test_a_taken_page_port_leaves_the_daemon_running(tmp_path: Path) -> None:
    port = free_port()
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        daemon = PracticeProcess(tmp_path / "a", "Dr A", web_listen=f"127.0.0.1:{port}").start()
        try:
            assert daemon.client.get("/v1/status")["name"] == "Dr A"
            shown = daemon.pli("open", "--no-browser", check=False)
            assert shown.returncode == 1
            assert f"127.0.0.1:{port} could not be opened" in shown.stderr
            assert "Traceback" not in shown.stderr + daemon.logs()
        finally:
            kill_all(daemon)
