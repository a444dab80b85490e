"""Prescribing on the page, in Debian's chromium, between two real daemons.

The GP fills the structured form (patient, two lines, a note, the RPPS the profile
lacks), meets a mistake said in French, previews the ordonnance as it will print,
signs and sends it; the printable page with its QR code shows on the GP's sent
document and on the cardiologist's received one; the copy downloaded from the page,
and the one ``pli export`` writes, pass ``pli verify``. The form is used with the
keyboard alone, every field has its label, axe-core finds nothing serious.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web import browser as chromium
from tests.web.browser import accessible
from tests.web.conftest import Practice, off_loop, signed_in

if not chromium.CHROMIUM.exists():  # .ci/run installs it: in CI these tests run
    pytest.skip(
        f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect

RPPS = "10101234567"


def fill_line(page: Page, row: int, *values: str) -> None:
    line = page.get_by_test_id("rx-item").nth(row)
    names = ("drug", "dosage", "duration", "quantity", "renewals")[: len(values)]
    for name, value in zip(names, values, strict=True):
        line.get_by_test_id(name).fill(value)


def tab_to(page: Page, testid: str) -> None:
    """Press Tab until the element ``testid`` has the focus (at most 40 times)."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.testid") == testid:
            return
    raise AssertionError(f"Tab never reached {testid}")


def test_a_prescription_written_on_the_page_is_sent_printed_and_verified(
    browser: Browser,
    practices: tuple[Practice, Practice],
    tmp_path: Path,
) -> None:
    gp, cardio = practices
    doctor = signed_in(browser, gp)
    doctor.get_by_role("link", name="Prescrire").click()
    expect(doctor.get_by_test_id("prescribe-form")).to_be_visible()
    doctor.get_by_test_id("recipient").select_option(cardio.peer_id)
    doctor.get_by_test_id("patient-name").fill("DUPONT, Jean")
    doctor.get_by_test_id("patient-birthdate").fill("1984-05-23")
    doctor.get_by_test_id("patient-sex").select_option("M")
    doctor.get_by_test_id("rpps").fill(RPPS)
    fill_line(doctor, 0, "Amoxicilline 1 g", "1 comprimé matin et soir", "7 jours", "1 boîte", "0")
    doctor.get_by_test_id("add-item").click()
    expect(doctor.get_by_test_id("rx-item")).to_have_count(2)
    expect(doctor.get_by_test_id("drug").first).to_have_value("Amoxicilline 1 g")  # kept
    fill_line(doctor, 1, "", "1 comprimé si douleur", "5 jours")
    doctor.get_by_test_id("note").fill("À prendre au cours des repas.")
    doctor.get_by_test_id("preview-rx").click()
    expect(doctor.get_by_test_id("problems")).to_contain_text("Ligne 2 : Il manque le médicament.")
    accessible(doctor)

    fill_line(doctor, 1, "Paracétamol 1 g", "1 comprimé si douleur, 4 par jour au plus", "5 jours")
    doctor.get_by_test_id("renewals").nth(1).fill("2")
    doctor.get_by_test_id("preview-rx").click()
    draft = doctor.frame_locator("[data-testid=rx-draft]")
    expect(draft.locator("body")).to_contain_text("Aperçu avant envoi")
    expect(draft.locator("body")).to_contain_text("né(e) le 23/05/1984")
    expect(draft.locator("li").nth(1)).to_contain_text("Paracétamol 1 g")
    expect(draft.locator("li").nth(1)).to_contain_text("à renouveler 2 fois")
    expect(draft.get_by_role("img", name="Emplacement du QR code de signature")).to_be_visible()
    chromium.shoot(doctor, "prescribe-preview")
    accessible(doctor)

    doctor.get_by_test_id("send").click()
    expect(doctor.get_by_test_id("document-view")).to_be_visible()
    doc_id = str(doctor.get_by_test_id("document-view").get_attribute("data-id"))
    expect(doctor.get_by_role("status").filter(has_text="Ordonnance signée")).to_be_visible()
    sent = doctor.frame_locator("[data-testid=ordonnance]")
    expect(sent.locator("svg title")).to_have_text("pli signature proof")  # the QR code
    expect(sent.locator("body")).to_contain_text("RPPS " + RPPS)
    chromium.shoot(doctor, "prescription-sent")
    accessible(doctor)

    pharmacist = signed_in(browser, cardio)
    row = pharmacist.get_by_test_id("inbox-row").filter(has_text="Ordonnance du")
    expect(row).to_contain_text("Ordonnance", timeout=10_000)  # live, as every letter
    expect(row).to_contain_text("né(e) le 23/05/1984")
    row.get_by_role("link").click()
    expect(pharmacist.get_by_test_id("document-view")).to_have_attribute("data-id", doc_id)
    printed = pharmacist.frame_locator("[data-testid=ordonnance]")
    expect(printed.locator("svg title")).to_have_text("pli signature proof")
    expect(printed.locator("body")).to_contain_text("Amoxicilline 1 g")
    expect(pharmacist.get_by_role("button", name="Imprimer l'ordonnance")).to_be_visible()
    chromium.shoot(pharmacist, "prescription-received")
    accessible(pharmacist)

    with pharmacist.expect_download() as download:
        pharmacist.get_by_test_id("ordonnance-download").click()
    page = tmp_path / download.value.suggested_filename
    download.value.save_as(page)
    assert page.name.startswith("ordonnance-")
    assert page.suffix == ".html"
    checked = off_loop(cardio.daemon.pli, "verify", str(page))
    assert "The signature is valid" in checked.stdout
    exported = tmp_path / "export"
    exported.mkdir()
    off_loop(cardio.daemon.pli, "export", doc_id, "--to", str(exported))
    (written,) = exported.glob("ordonnance-*.html")
    assert written.read_bytes() == page.read_bytes()  # the page's copy is the export's
    assert "The signature is valid" in off_loop(cardio.daemon.pli, "verify", str(written)).stdout
    page.write_text(page.read_text(encoding="utf-8").replace("7 jours", "70 jours"))
    tampered = off_loop(lambda: cardio.daemon.pli("verify", str(page), check=False))
    assert tampered.returncode == 4, tampered.stdout


def test_the_prescription_form_is_usable_with_the_keyboard(
    browser: Browser,
    practices: tuple[Practice, Practice],
) -> None:
    gp, _ = practices
    page = signed_in(browser, gp)
    page.goto(page.url.rstrip("/") + "/prescribe")
    order = []
    for _ in range(30):
        page.keyboard.press("Tab")
        order.append(
            page.evaluate(
                "() => { const e = document.activeElement; return e.dataset.testid || e.id || "
                "e.getAttribute('href') || e.tagName }"
            )
        )
    wanted = ["recipient", "patient-name", "patient-birthdate", "drug", "dosage", "duration"]
    wanted += ["quantity", "renewals", "note", "preview-rx", "send", "add-item"]
    positions = [order.index(name) for name in wanted]
    assert positions == sorted(positions), order
    labels = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !(e.labels && e.labels.length)).map(e => e.name)"
    )
    assert labels == []  # every field has its label
    keys = page.keyboard
    page.get_by_test_id("recipient").focus()
    keys.press("ArrowDown")  # the first colleague
    page.get_by_test_id("patient-name").focus()
    keys.type("LEROY, Paul")
    # the date field's segments follow the browser's own language (French: dd/mm/yyyy)
    page.get_by_test_id("patient-birthdate").fill("1962-07-14")
    page.get_by_test_id("rpps").focus()
    keys.type(RPPS)
    page.get_by_test_id("drug").focus()
    keys.type("Ibuprofène 400 mg")
    keys.press("Enter")  # Enter in a field previews (the form's first button)
    expect(page.get_by_test_id("problems")).to_contain_text("Ligne 1 : Il manque la posologie.")
    assert page.get_by_test_id("rx-draft").count() == 0
    assert page.get_by_test_id("drug").input_value() == "Ibuprofène 400 mg"  # kept
    assert page.get_by_test_id("patient-birthdate").input_value() == "1962-07-14"
    page.get_by_test_id("dosage").focus()
    keys.type("1 comprimé 3 fois par jour")
    keys.press("Tab")
    keys.type("3 jours")
    tab_to(page, "preview-rx")
    keys.press("Enter")
    draft = page.frame_locator("[data-testid=rx-draft]")
    expect(draft.locator("body")).to_contain_text("né(e) le 14/07/1962")
    tab_to(page, "send")
    keys.press("Space")
    expect(page.get_by_test_id("document-view")).to_be_visible()
    expect(page.frame_locator("[data-testid=ordonnance]").locator("svg title")).to_be_attached()
