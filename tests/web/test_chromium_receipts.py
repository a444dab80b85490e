"""A sent letter's receipts appearing live in Debian's chromium, between two real daemons.

The GP's page stays open on the sent documents, then on the letter: the lines
« Remis le … », « Non intégré … erreur 902 — Patient inconnu », « Intégré le … »
and « Lu le … » appear as the cardiologist's practice says so (server-sent
events, no reload); « Lu » comes from the cardiologist opening the letter in a
browser of their own, whose page then says what was told to the sender, as does
the settings page. Screenshots in build/screenshots/, axe-core on each page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web import browser as chromium
from tests.web.browser import accessible
from tests.web.conftest import Practice, delivered, off_loop, signed_in

if not chromium.CHROMIUM.exists():  # .ci/run installs it: in CI these tests run
    pytest.skip(
        f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect

LIVE = 5000  # ms a line may take to appear (the page refreshes on the daemon's event)


def watching(browser: Browser, practice: Practice, path: str) -> Page:
    """``practice``'s page at ``path``, marked so that a reload would show."""
    page = signed_in(browser, practice, path)
    page.evaluate("window.stillTheSamePage = true")
    return page


def integrate(practice: Practice, doc_id: str, body: dict[str, int]) -> None:
    off_loop(practice.daemon.client.post, f"/v1/documents/{doc_id}/integrated", body)


def test_receipt_lines_appear_live_on_the_senders_page(
    browser: Browser, reading_practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = reading_practices
    doctor = watching(browser, gp, "/outbox")
    letter = tmp_path / "courrier.txt"
    letter.write_text("Courrier de liaison.\n", encoding="utf-8")
    doc_id = str(off_loop(gp.daemon.send, cardio.daemon, letter, "letter"))
    row = doctor.locator(f"[data-testid=outbox-row][data-id='{doc_id}']")
    expect(row.locator("[data-testid=receipt][data-layer=delivered]")).to_have_text(
        re.compile(r"^Remis le \d\d/\d\d/\d{4} à \d\d:\d\d"), timeout=LIVE
    )
    delivered(gp, doc_id)

    integrate(cardio, doc_id, {"error_code": 902})
    failed = row.locator("[data-testid=receipt][data-layer=integrated]")
    expect(failed).to_contain_text("erreur 902 — Patient inconnu", timeout=LIVE)
    expect(failed).to_contain_text("Non intégré le ")
    expect(failed).to_have_class(re.compile(r"\bbad\b"))
    chromium.shoot(doctor, "outbox-not-integrated")
    accessible(doctor)
    integrate(cardio, doc_id, {})
    expect(failed).to_contain_text("Intégré le ", timeout=LIVE)
    assert doctor.evaluate("window.stillTheSamePage") is True

    row.get_by_role("link").click()  # the letter's own page
    expect(doctor.get_by_test_id("document-view")).to_have_attribute("data-id", doc_id)
    doctor.evaluate("window.stillTheSamePage = true")
    layers = doctor.locator("[data-testid=receipts] [data-testid=receipt]")
    expect(layers).to_have_count(2)
    specialist = watching(browser, cardio, f"/documents/{doc_id}")  # opened: read
    expect(specialist.get_by_test_id("document-view")).to_be_visible()
    read = doctor.locator("[data-testid=receipt][data-layer=read]")
    expect(read).to_have_text(re.compile(r"^Lu le \d\d/\d\d/\d{4} à \d\d:\d\d$"), timeout=LIVE)
    expect(layers).to_have_count(3)
    expect(doctor.get_by_test_id("receipt-recipient")).to_contain_text("Dr Durand : Remis")
    assert doctor.evaluate("window.stillTheSamePage") is True
    chromium.shoot(doctor, "sent-letter-receipts")
    accessible(doctor)

    told = specialist.locator("[data-testid=our-receipt]")  # what the reader's page says
    expect(told).to_have_count(3)
    expect(told.last).to_have_text(re.compile(r"^Lu le "))
    chromium.shoot(specialist, "received-letter-told-sender")
    accessible(specialist)
    specialist.get_by_role("link", name="Réglages").click()
    expect(specialist.get_by_test_id("told-read")).to_have_attribute("data-on", "yes")
    chromium.shoot(specialist, "settings-receipts")
    accessible(specialist)
