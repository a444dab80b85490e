"""A sent document's receipts on the sender's page, layer by layer, between real daemons.

The GP (Dr Martin) sends; the cardiologist's practice (Dr Durand, which sends read
receipts: ``receipts_read = true``) says what became of it: its software could not
integrate it (902, unknown patient), then did, then someone opened it on the page.
The GP's outbox and the sent document's page show « Remis le … », the error's code
and words, « Intégré le … », « Lu le … ». Opening a document on the page signs a read
receipt only where the practice allows it, once, and never for a revoked sender.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from p2p.cli.practice import PracticeProcess, kill_all, wait_until
from tests.web.conftest import Practice, delivered, off_loop

_LINE = re.compile(r'data-testid="receipt" data-layer="(\w+)">([^<]*)<')
_OURS = re.compile(r'data-testid="our-receipt" data-layer="(\w+)">([^<]*)<')


def letter(sender: Practice, to: Practice, tmp_path: Path, name: str = "lettre.txt") -> str:
    """A letter from ``sender`` to ``to``, delivered; its id."""
    path = tmp_path / name
    path.write_text("Compte rendu de consultation.\n", encoding="utf-8")
    doc_id = str(off_loop(sender.daemon.send, to.daemon, path, "letter"))
    delivered(sender, doc_id)
    return doc_id


def row_of(page: str, doc_id: str) -> str:
    """``doc_id``'s row of the outbox page."""
    return page.split(f'data-id="{doc_id}"')[1].split("</tr>", maxsplit=1)[0]


def lines(page: str, doc_id: str | None = None) -> dict[str, str]:
    """Layer -> text of the receipt lines on ``page`` (only ``doc_id``'s outbox row, if given)."""
    if doc_id is not None:
        page = row_of(page, doc_id)
    return {layer: html.unescape(text) for layer, text in _LINE.findall(page)}


def api(practice: Practice, method: str, path: str, body: Any = None) -> Any:
    client = practice.daemon.client
    if method == "GET":
        return off_loop(client.get, path)
    return off_loop(client.post, path, body if body is not None else {})


def said(practice: Practice, doc_id: str, layer: str) -> dict[str, Any] | None:
    """What ``practice``'s outbox holds for ``doc_id``'s ``layer`` (its only recipient)."""
    (row,) = [r for r in api(practice, "GET", "/v1/outbox") if r["id"] == doc_id]
    found: dict[str, Any] | None = row[layer]
    return found


def signed_by_us(practice: Practice, doc_id: str) -> list[str]:
    """The statuses of the receipts ``practice`` signed about a document it received."""
    me = api(practice, "GET", "/v1/identity")["peer_id"]
    receipts = api(practice, "GET", f"/v1/documents/{doc_id}/receipts")
    return sorted(r["status"] for r in receipts if r["recipient"] == me)


def test_the_sender_sees_delivered_not_integrated_integrated_then_read(
    reading_practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = reading_practices
    doc_id = letter(gp, cardio, tmp_path)
    doctor = gp.visitor()
    shown = lines(doctor.get("/outbox").text, doc_id)
    assert list(shown) == ["delivered"]
    assert shown["delivered"].startswith("Remis le ")

    api(cardio, "POST", f"/v1/documents/{doc_id}/integrated", {"error_code": 902})
    wait_until(lambda: off_loop(said, gp, doc_id, "integrated") is not None, 20)
    row = row_of(doctor.get("/outbox").text, doc_id)
    failed = lines(row)["integrated"]
    assert failed.startswith("Non intégré le ")
    assert failed.endswith(" : erreur 902 — Patient inconnu")
    assert 'class="sub receipt bad"' in row

    api(cardio, "POST", f"/v1/documents/{doc_id}/integrated")
    wait_until(
        lambda: (off_loop(said, gp, doc_id, "integrated") or {}).get("status") == "integrated", 20
    )
    assert lines(doctor.get("/outbox").text, doc_id)["integrated"].startswith("Intégré le ")
    assert off_loop(said, gp, doc_id, "read") is None

    reader = cardio.visitor()
    opened = reader.get(f"/documents/{doc_id}")  # opened on the page: read
    assert opened.status == 200
    assert off_loop(signed_by_us, cardio, doc_id) == ["delivered", "integrated", "read"]
    told = dict(_OURS.findall(html.unescape(opened.text)))  # what the reader's page says
    assert told["delivered"].startswith("Reçu le ")
    assert told["integrated"].startswith("Intégré le ")
    assert told["integrated"].endswith(" dans votre logiciel")
    assert told["read"].startswith("Lu le ")
    wait_until(lambda: off_loop(said, gp, doc_id, "read") is not None, 20)
    page = doctor.get(f"/documents/{doc_id}").text
    on_page = lines(page)
    assert list(on_page) == ["delivered", "integrated", "read"]
    assert on_page["read"].startswith("Lu le ")
    assert "Dr Durand : Remis" in page

    token = doctor.csrf("/outbox")
    doctor.post_form("/lang", {"csrf": token, "lang": "en", "back": "/outbox"})
    english = lines(doctor.get("/outbox").text, doc_id)
    assert english["delivered"].startswith("Delivered on ")
    assert english["integrated"].startswith("Integrated on ")
    assert english["read"].startswith("Read on ")


def test_opening_again_or_exporting_signs_no_second_read(
    reading_practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = reading_practices
    doc_id = letter(gp, cardio, tmp_path)
    reader = cardio.visitor()
    reader.get(f"/documents/{doc_id}")
    first = api(cardio, "GET", f"/v1/documents/{doc_id}/receipts")
    reader.get(f"/documents/{doc_id}")
    token = reader.csrf(f"/documents/{doc_id}")
    marked = reader.post_form(f"/documents/{doc_id}/read", {"csrf": token})  # an export
    assert marked.status == 303
    assert api(cardio, "GET", f"/v1/documents/{doc_id}/receipts") == first
    assert off_loop(signed_by_us, cardio, doc_id) == ["delivered", "read"]
    wait_until(lambda: off_loop(said, gp, doc_id, "read") is not None, 20)


def test_a_practice_that_sends_no_read_receipts_signs_none_when_it_opens_a_letter(
    reading_practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = reading_practices
    doc_id = letter(cardio, gp, tmp_path)  # to the GP, whose practice keeps reads to itself
    doctor = gp.visitor()
    assert doctor.get(f"/documents/{doc_id}").status == 200
    token = doctor.csrf(f"/documents/{doc_id}")
    assert doctor.post_form(f"/documents/{doc_id}/read", {"csrf": token}).status == 303
    assert off_loop(signed_by_us, gp, doc_id) == ["delivered"]
    assert lines(cardio.visitor().get("/outbox").text, doc_id).keys() == {"delivered"}
    told = dict(_OURS.findall(doctor.get(f"/documents/{doc_id}").text))
    assert told.keys() == {"delivered"}


def test_the_settings_page_says_what_correspondents_learn(
    reading_practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = reading_practices
    keeps = gp.visitor().get("/settings").text
    assert 'data-testid="told-read" data-on="no"' in keeps
    assert "ne sont pas prévenus quand un document est ouvert" in html.unescape(keeps)
    assert 'data-testid="told-integrated" data-on="yes"' in keeps
    tells = html.unescape(cardio.visitor().get("/settings").text)
    assert 'data-testid="told-read" data-on="yes"' in tells
    assert "reçoit un accusé de lecture signé" in tells
    assert "receipts_read" in tells


def test_no_read_receipt_for_a_revoked_sender(
    reading_practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    _, cardio = reading_practices
    stranger = PracticeProcess(tmp_path / "petit", "Dr Petit").start()
    try:
        stranger.trust(cardio.daemon)
        cardio.daemon.trust(stranger)
        sender = Practice(stranger)
        doc_id = letter(sender, cardio, tmp_path)
        revoked = api(sender, "POST", "/v1/revocations", {"self": True})
        assert [p["result"] for p in revoked["pushed"]] == ["stored"]
        reader = cardio.visitor()
        page = reader.get(f"/documents/{doc_id}")
        assert page.status == 200
        assert "est révoquée" in html.unescape(page.text)
        assert off_loop(signed_by_us, cardio, doc_id) == ["delivered"]
        assert off_loop(said, sender, doc_id, "read") is None
        assert dict(_OURS.findall(page.text)).keys() == {"delivered"}
    finally:
        kill_all(stranger)
