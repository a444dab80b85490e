"""The practice's page in a real browser: Debian's chromium, two real daemons.

The GP writes a letter with a PDF and the patient's details and sends it; the
cardiologist's page, already open, shows it within 2 s without a reload, opens it
(preview, trust line) and replies; the GP sees the reply under the letter, and the
receipt. Then the refusals, as a browser meets them, and axe-core on every page.
Screenshots of each page go to build/screenshots/ (tests/web/browser.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.web import browser as chromium
from tests.web.browser import accessible
from tests.web.conftest import Practice, delivered, signed_in
from tests.web.files import HOSTILE_HTML, HOSTILE_NAME, pdf

if not chromium.CHROMIUM.exists():  # .ci/run installs it: in CI these tests run
    pytest.skip(
        f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, FilePayload, expect

SUBJECT = "Avis cardiologique"


def test_a_letter_and_its_reply_between_two_pages(
    browser: Browser, practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = practices
    letter = tmp_path / "courrier-dupont.pdf"
    letter.write_bytes(pdf("Courrier de liaison - DUPONT Jean"))
    specialist = signed_in(browser, cardio)
    specialist.evaluate("window.stillTheSamePage = true")
    chromium.shoot(specialist, "inbox-empty")
    accessible(specialist)

    doctor = signed_in(browser, gp)
    doctor.get_by_role("link", name="Écrire").click()
    form = doctor.get_by_test_id("compose-form")
    expect(form).to_be_visible()
    doctor.get_by_test_id("recipient").select_option(cardio.peer_id)
    doctor.get_by_test_id("subject").fill(SUBJECT)
    doctor.get_by_test_id("patient-name").fill("DUPONT, Jean")
    doctor.get_by_test_id("patient-birthdate").fill("1984-05-23")
    doctor.get_by_test_id("files").set_input_files(str(letter))
    expect(doctor.locator("[data-chosen] li")).to_have_text(re.compile("courrier-dupont.pdf"))
    chromium.shoot(doctor, "compose")
    accessible(doctor)
    doctor.get_by_test_id("send").click()
    sent_at = time.monotonic()
    expect(doctor.get_by_test_id("document-view")).to_be_visible()
    doc_id = str(doctor.get_by_test_id("document-view").get_attribute("data-id"))

    row = specialist.get_by_test_id("inbox-row").filter(has_text=SUBJECT)
    expect(row).to_be_visible(timeout=2000)  # live: no reload
    assert time.monotonic() - sent_at < 2.5
    assert specialist.evaluate("window.stillTheSamePage") is True
    expect(row).to_contain_text("DUPONT Jean")
    expect(row.get_by_test_id("inbox-birthdate")).to_have_text("né(e) le 23/05/1984")
    expect(row).to_contain_text("Dr Martin")
    expect(row).to_have_class("unread")
    chromium.shoot(specialist, "inbox")
    accessible(specialist)

    row.get_by_role("link", name=SUBJECT).click()
    view = specialist.get_by_test_id("document-view")
    expect(view).to_be_visible()
    specialist.get_by_test_id("mark-read").click()  # a plain form: Origin and CSRF pass
    expect(specialist.get_by_role("status").filter(has_text="Marqué comme lu.")).to_be_visible()
    expect(specialist.get_by_test_id("trust")).to_contain_text("Signé par Dr Martin")
    expect(specialist.get_by_test_id("trust")).to_contain_text("appairé")
    preview = specialist.get_by_test_id("preview")
    expect(preview).to_be_visible()
    assert preview.evaluate("e => e.tagName") == "IFRAME"
    origin = specialist.url.split("/documents/")[0]
    response = specialist.request.get(origin + str(preview.get_attribute("src")))
    assert response.headers["content-type"] == "application/pdf"
    chromium.shoot(specialist, "document")
    accessible(specialist)

    specialist.get_by_test_id("reply").click()
    expect(specialist.get_by_test_id("compose-form")).to_be_visible()
    expect(specialist.get_by_test_id("patient-name")).to_have_value("DUPONT, Jean")
    expect(specialist.get_by_test_id("patient-birthdate")).to_have_value("1984-05-23")
    expect(specialist.get_by_test_id("subject")).to_have_value(f"Re: {SUBJECT}")
    answer = tmp_path / "reponse.txt"
    answer.write_text("Echographie normale. Revoir dans un an.\n", encoding="utf-8")
    specialist.get_by_test_id("files").set_input_files(str(answer))
    chromium.shoot(specialist, "reply")
    specialist.get_by_test_id("send").click()
    expect(specialist.get_by_test_id("document-view")).to_be_visible()

    delivered(gp, doc_id)
    doctor.goto(doctor.url)  # the GP's letter, where the reply is threaded
    expect(doctor.get_by_test_id("thread-reply")).to_contain_text(f"Re: {SUBJECT}")
    expect(doctor.get_by_test_id("receipt-recipient")).to_contain_text("Dr Durand : Remis")
    expect(doctor.get_by_test_id("receipt")).to_contain_text("Remis le ")
    chromium.shoot(doctor, "sent-letter-with-reply")
    accessible(doctor)
    doctor.get_by_role("link", name="Envoyés").click()
    expect(doctor.get_by_test_id("outbox-row").filter(has_text=SUBJECT)).to_contain_text("Remis")
    chromium.shoot(doctor, "outbox")
    accessible(doctor)
    doctor.get_by_role("link", name="Confrères").click()
    colleague = doctor.get_by_test_id("colleague-row").filter(has_text="Dr Durand")
    expect(colleague).to_contain_text("En ligne")
    chromium.shoot(doctor, "colleagues")
    accessible(doctor)
    doctor.get_by_role("link", name="Boîte de réception").click()
    expect(doctor.get_by_test_id("inbox-row")).to_contain_text(f"Réponse à « {SUBJECT} »")
    doctor.get_by_role("button", name="English").click()
    expect(doctor.get_by_role("heading", name="Inbox")).to_be_visible()
    chromium.shoot(doctor, "inbox-english")
    doctor.get_by_role("button", name="Français").click()
    expect(doctor.get_by_role("heading", name="Boîte de réception")).to_be_visible()


def test_refusals_as_a_browser_meets_them(
    browser: Browser, practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = practices
    link = gp.link()
    base = link.split("/login/")[0]
    stranger = chromium.french_page(browser)
    first = stranger.goto(base + "/")
    assert _status(first) == 401
    assert "pli open" in stranger.content()
    assert _status(stranger.goto(link)) == 303 or stranger.url == base + "/"
    again = chromium.french_page(browser)
    assert _status(again.goto(link)) == 403  # a spent link
    port = base.rsplit(":", 1)[1]
    assert _status(stranger.goto(f"http://{chromium.REBOUND}:{port}/")) == 403  # rebinding
    stranger.goto(base + "/")
    forged = stranger.evaluate(
        """async () => (await fetch('/lang', {method: 'POST', body: new URLSearchParams(
            {lang: 'en', back: '/'})})).status"""
    )
    assert forged == 403  # our own origin, but no CSRF token

    hostile = tmp_path / "page.html"
    hostile.write_bytes(HOSTILE_HTML)
    page = signed_in(browser, gp)
    page.goto(base + "/compose")
    page.get_by_test_id("recipient").select_option(cardio.peer_id)
    page.get_by_test_id("subject").fill("Pièce jointe HTML")
    payload: FilePayload = {"name": HOSTILE_NAME, "mimeType": "text/html", "buffer": HOSTILE_HTML}
    page.get_by_test_id("files").set_input_files([payload])
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("document-view")).to_be_visible()
    doc_id = str(page.get_by_test_id("document-view").get_attribute("data-id"))
    reader = signed_in(browser, cardio)
    reader.get_by_test_id("inbox-row").filter(has_text="Pièce jointe HTML").get_by_role(
        "link"
    ).click()
    expect(reader.get_by_test_id("document-view")).to_have_attribute("data-id", doc_id)
    name = reader.locator(".file-name")
    expect(name).to_have_text("_img src=x onerror=alert(1)_fdp.html")  # inert, no RTL trick
    assert reader.locator("img[src=x]").count() == 0
    assert "\u202e" not in str(name.text_content())
    expect(reader.get_by_test_id("preview")).to_contain_text("<script>document.title='owned'")
    assert reader.get_by_test_id("preview").evaluate("e => e.tagName") == "PRE"
    chromium.shoot(reader, "hostile-attachment")
    accessible(reader)
    with reader.expect_download() as download:
        reader.evaluate(
            "src => { location.href = src }",
            reader.get_by_test_id("download").get_attribute("href"),
        )
    assert download.value.suggested_filename.endswith(".html")
    assert reader.title() != "owned"


def _status(response: Any) -> int:
    return int(response.status) if response is not None else 0


def test_the_compose_form_is_usable_with_the_keyboard(
    browser: Browser, practices: tuple[Practice, Practice]
) -> None:
    gp, _ = practices
    page = signed_in(browser, gp)
    page.goto(page.url.rstrip("/") + "/compose")
    order = []
    for _ in range(22):  # the date field takes three stops: day, month, year
        page.keyboard.press("Tab")
        order.append(
            page.evaluate(
                "() => { const e = document.activeElement; return e.dataset.testid || e.id || "
                "e.getAttribute('href') || e.tagName }"
            )
        )
    assert order[0] == "#main"  # the skip link comes first
    wanted = ["recipient", "kind", "subject", "patient-name", "patient-birthdate", "files", "send"]
    positions = [order.index(name) for name in wanted]
    assert positions == sorted(positions), order
    page.get_by_test_id("subject").focus()
    outline = page.get_by_test_id("subject").evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"  # focus is visible
    labels = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !(e.labels && e.labels.length)).map(e => e.name)"
    )
    assert labels == []  # every field has its label


def test_the_browser_is_a_french_practices(
    browser: Browser, practices: tuple[Practice, Practice]
) -> None:
    """What the person reads that the page does not write: the browser's own strings
    (chromium-l10n), its number and date formats, the practice's clock."""
    gp, _ = practices
    page = signed_in(browser, gp, "/compose")
    said = page.evaluate(
        """() => [navigator.language, (1234.5).toLocaleString(),
            new Date(Date.UTC(2026, 6, 14, 10, 5)).toLocaleString(),
            document.querySelector('[data-testid=recipient]').validationMessage]"""
    )
    assert said[:3] == ["fr-FR", "1\u202f234,5", "14/07/2026 12:05:00"]
    assert said[3] == "Sélectionnez un élément dans la liste."  # not "Please select an item"
