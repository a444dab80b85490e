"""The mailboxes on the page, between real daemons and the real nats-server.

The GP's practice joined three mailboxes: one that works, one (the same server
under another name) that refuses its credentials, one where no server runs. The
settings page says each state in French first (English when chosen) with what
waits each way, and the outbox says which way each letter went: « direct » while
the cardiologist is up, « via la boîte aux lettres HOST » once it is off.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from p2p.cli.practice import wait_until
from p2p.daemon.harness import free_port
from p2p.storage import mailboxes
from tests.p2p.natsserver import mailbox_pair
from tests.p2p.test_mailbox_connection import creds_text
from tests.web.conftest import Practice
from tests.web.test_receipts_page import row_of
from tests.web.visitor import Visitor

pytestmark = pytest.mark.slow

_MAILBOX = re.compile(
    r'data-testid="mailbox" data-state="(\w+)"><span class="mono">([^<]*)</span>.*?'
    r'data-testid="mailbox-state">([^<]*)<.*?data-testid="mailbox-waiting">([^<]*)<',
    re.S,
)
_PATH = re.compile(r'data-testid="path" data-via="(\w+)">([^<]*)<')


def shown_mailboxes(visitor: Visitor) -> dict[str, tuple[str, str, str]]:
    """Host -> (state, words, what waits) on the settings page."""
    page = visitor.get("/settings").text
    return {
        html.unescape(host): (state, html.unescape(words), html.unescape(waiting))
        for state, host, words, waiting in _MAILBOX.findall(page)
    }


def path_of(visitor: Visitor, doc_id: str) -> tuple[str, str] | None:
    """The way ``doc_id`` went, as its outbox row says (None before it left)."""
    found = _PATH.findall(row_of(visitor.get("/outbox").text, doc_id))
    assert len(found) <= 1
    return (found[0][0], html.unescape(found[0][1])) if found else None


def letter(gp: Practice, to: Practice, folder: Path, name: str) -> str:
    path = folder / name
    path.write_text("Compte rendu de consultation.\n", encoding="utf-8")
    return gp.daemon.send(to.daemon, path, "letter")


def test_mailbox_states_and_the_way_each_letter_went(tmp_path: Path) -> None:
    with mailbox_pair(tmp_path) as (a, b, server):
        gp, cardio = Practice(a), Practice(b)
        creds = tmp_path / "practice.creds"
        creds.write_text(creds_text(mailboxes.nkey_seed(a.home)))
        refusing, down = f"nats://localhost:{server.port}", f"nats://127.0.0.1:{free_port()}"
        a.pli("mailbox", "add", refusing, "--credentials", str(creds))
        a.pli("mailbox", "add", down)
        wanted = {server.url: "connected", refusing: "refused", down: "unreachable"}
        wait_until(
            lambda: {m["url"]: m["state"] for m in a.client.get("/v1/mailboxes")} == wanted,
            timeout=30,
        )
        visitor = gp.visitor()
        here = server.url.removeprefix("nats://")
        shown = shown_mailboxes(visitor)
        assert shown[here][:2] == ("connected", "Connectée")
        assert shown[f"localhost:{server.port}"][0] == "refused"
        assert shown[f"localhost:{server.port}"][1].startswith(
            "A refusé les identifiants de ce cabinet"
        )
        assert shown[down.removeprefix("nats://")][1].startswith("Injoignable")
        assert "Authorization" not in visitor.get("/settings").text

        direct = letter(gp, cardio, tmp_path, "direct.txt")
        wait_until(lambda: a.outbox_state(direct) == "delivered", timeout=30)
        assert path_of(visitor, direct) == ("direct", "direct")
        b.stop()
        waiting = letter(gp, cardio, tmp_path, "boite.txt")
        wait_until(lambda: path_of(visitor, waiting) is not None, timeout=30)
        assert path_of(visitor, waiting) == ("mailbox", f"via la boîte aux lettres {here}")
        assert "1 document(s) déposé(s) pour des confrères" in shown_mailboxes(visitor)[here][2]

        assert visitor.post_form("/lang", {"csrf": visitor.csrf(), "lang": "en", "back": "/"})
        assert path_of(visitor, waiting) == ("mailbox", f"through the mailbox {here}")
        english = shown_mailboxes(visitor)
        assert english[here][1] == "Connected"
        assert english[f"localhost:{server.port}"][1].startswith(
            "Refused this practice's credentials"
        )
        assert "1 document(s) left for colleagues" in english[here][2]
