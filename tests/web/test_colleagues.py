"""The colleagues and settings pages in a real browser: Debian's chromium, real daemons.

Three practices that know nothing of each other. The GP and the cardiologist pair
by code through their two pages (the wizard: the code shown and typed, then the
check codes compared side by side and confirmed on both), then the GP renames
and removes the cardiologist. The physiotherapist pairs with the GP by
fingerprint (read on the GP's settings page); the request appears on the GP's
open colleagues page without a reload, and the GP accepts it after comparing its
check code; the GP's new profile reaches the physiotherapist as a
signed card; the physiotherapist revokes its key and the GP's page shows it. The
state-changing forms refuse a request without the CSRF token. axe-core runs on
every page; screenshots go to build/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.practice import PracticeProcess, kill_all, wait_until
from tests.web import browser as chromium
from tests.web import conftest
from tests.web.browser import accessible
from tests.web.conftest import Practice, off_loop

if not chromium.CHROMIUM.exists():  # .ci/run installs it: in CI these tests run
    pytest.skip(
        f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect

Three = tuple[Practice, Practice, Practice]


@pytest.fixture(scope="module")
def strangers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Three]:
    """The GP, the cardiologist and the physiotherapist: three daemons, not paired."""
    root: Path = tmp_path_factory.mktemp("people")
    daemons = [
        PracticeProcess(root / "gp", "Dr Martin"),
        PracticeProcess(root / "cardio", "Dr Durand"),
        PracticeProcess(root / "kine", "Mme Leroy"),
    ]
    try:
        for daemon in daemons:
            daemon.start()
        yield Practice(daemons[0]), Practice(daemons[1]), Practice(daemons[2])
    finally:
        kill_all(*daemons)


def signed_in(browser: Browser, practice: Practice, path: str = "/colleagues") -> Page:
    """``practice``'s page at ``path``: its colleagues unless told otherwise."""
    return conftest.signed_in(browser, practice, path, viewport={"width": 1280, "height": 900})


def shoot(page: Page, name: str) -> None:
    """A full-page PNG (not ``chromium.shoot``: the wizard's long poll never lets the
    network go idle)."""
    chromium.SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("load")
    page.screenshot(path=str(chromium.SHOTS / f"{name}.png"), full_page=True)


def peers_of(practice: Practice) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = off_loop(practice.daemon.client.get, "/v1/peers")
    return rows


def wizard(page: Page, state: str) -> None:
    expect(page.get_by_test_id("pair-wizard")).to_have_attribute("data-state", state)


def test_pairing_by_code_through_both_pages_then_rename_and_remove(
    browser: Browser, strangers: Three
) -> None:
    gp, cardio, _ = strangers
    doctor = signed_in(browser, gp)
    expect(doctor.get_by_role("heading", name="Confrères", exact=True)).to_be_visible()
    accessible(doctor)
    doctor.get_by_test_id("make-code").click()
    wizard(doctor, "waiting")
    code = str(doctor.get_by_test_id("pair-code").text_content()).strip()
    address = str(doctor.get_by_test_id("pair-address").text_content()).strip()
    assert re.fullmatch(r"\d+-\d+", code), code
    shoot(doctor, "pair-invite")
    accessible(doctor)

    specialist = signed_in(browser, cardio)
    specialist.get_by_test_id("code-input").fill(code)
    specialist.get_by_test_id("code-address").fill(address)
    specialist.get_by_test_id("join").click()
    wizard(specialist, "needs-confirmation")
    wizard(doctor, "needs-confirmation")  # the GP's page moved on by itself
    theirs = str(specialist.get_by_test_id("check-code").text_content())
    mine = str(doctor.get_by_test_id("check-code").text_content())
    assert re.fullmatch(r"\d{3} \d{3}", mine), mine
    assert mine == theirs  # the check codes compared side by side
    expect(doctor.get_by_test_id("pair-wizard")).to_contain_text("Dr Durand")
    shoot(doctor, "pair-compare")
    accessible(doctor)

    wrong = "000 000" if mine != "000 000" else "111 111"
    specialist.get_by_test_id("their-code").fill(wrong)
    specialist.get_by_test_id("same").click()
    expect(specialist.get_by_test_id("problem")).to_contain_text("n'est pas celui de votre écran")
    wizard(specialist, "needs-confirmation")  # a typo refuses nothing
    specialist.get_by_test_id("their-code").fill(mine)
    specialist.get_by_test_id("same").click()
    wizard(specialist, "waiting-for-peer")
    doctor.get_by_test_id("their-code").fill(theirs.replace(" ", ""))
    doctor.get_by_test_id("same").click()
    wizard(doctor, "paired")
    wizard(specialist, "paired")
    expect(doctor.get_by_test_id("paired")).to_contain_text("Dr Durand")
    expect(specialist.get_by_test_id("problem")).to_have_count(0)  # the typo is not said again
    assert "/confirm" not in specialist.url  # every step is a page of its own (GET)
    shoot(specialist, "pair-done")
    accessible(specialist)
    assert [p["name"] for p in peers_of(gp)] == ["Dr Durand"]
    assert [p["name"] for p in peers_of(cardio)] == ["Dr Martin"]

    specialist.get_by_test_id("write-to").click()  # "Écrire à ce confrère": compose, for them
    expect(specialist.get_by_test_id("recipient")).to_have_value(gp.peer_id)
    colleagues = doctor.url.split("/colleagues")[0] + "/colleagues"
    doctor.goto(colleagues)
    doctor.get_by_test_id("colleague-row").get_by_test_id("write-to").click()
    expect(doctor.get_by_test_id("recipient")).to_have_value(cardio.peer_id)

    doctor.goto(colleagues)
    row = doctor.get_by_test_id("colleague-row").filter(has_text="Dr Durand")
    expect(row).to_be_visible()
    row.get_by_text("Renommer").click()
    row.get_by_test_id("rename-input").fill("Dr Martin")  # the GP's own name: refused
    row.get_by_test_id("rename-save").click()
    expect(doctor.get_by_test_id("problem")).to_be_visible()
    row = doctor.get_by_test_id("colleague-row").filter(has_text="Dr Durand")
    row.get_by_test_id("rename-input").fill("Dr Durand (cardiologue)")
    row.get_by_test_id("rename-save").click()
    expect(doctor.get_by_role("status").first).to_contain_text("Dr Durand (cardiologue)")
    expect(doctor.get_by_test_id("colleague-name")).to_have_text("Dr Durand (cardiologue)")
    shoot(doctor, "colleagues")
    accessible(doctor)
    assert [p["name"] for p in peers_of(gp)] == ["Dr Durand (cardiologue)"]

    doctor.get_by_test_id("remove").click()
    expect(doctor.get_by_role("heading", name=re.compile("Retirer"))).to_be_visible()
    shoot(doctor, "colleague-remove")
    accessible(doctor)
    doctor.get_by_test_id("remove-confirm").click()
    expect(doctor.get_by_role("status").first).to_contain_text("retiré")
    expect(doctor.get_by_test_id("colleague-row")).to_have_count(0)
    assert peers_of(gp) == []


def test_pairing_by_fingerprint_a_new_profile_and_a_revoked_key(
    browser: Browser, strangers: Three
) -> None:
    gp, _, kine = strangers
    doctor = signed_in(browser, gp, "/settings")
    fingerprint = str(doctor.get_by_test_id("own-fingerprint").text_content()).strip()
    assert fingerprint == off_loop(gp.daemon.identity)["fingerprint"]

    doctor.goto(doctor.url.replace("/settings", "/colleagues"))
    doctor.evaluate("window.stillTheSamePage = true")

    therapist = signed_in(browser, kine)
    therapist.get_by_test_id("fingerprint-input").fill(fingerprint.lower().replace("-", " "))
    therapist.get_by_test_id("fingerprint-address").fill(gp.daemon.address)
    therapist.get_by_test_id("ask-pairing").click()
    wizard(therapist, "waiting-for-peer")
    told = str(therapist.get_by_test_id("check-code").text_content())

    request = doctor.get_by_test_id("pairing-request")
    expect(request).to_contain_text("Mme Leroy")  # it appears on the open page by itself
    assert doctor.evaluate("window.stillTheSamePage") is True
    assert request.get_by_test_id("check-code").text_content() == told
    shoot(doctor, "pair-request")
    accessible(doctor)
    request.get_by_test_id("accept-request").click()
    wizard(doctor, "paired")
    wizard(therapist, "paired")
    assert [p["name"] for p in peers_of(kine)] == ["Dr Martin"]

    doctor.goto(doctor.url.split("/colleagues")[0] + "/settings")
    doctor.get_by_test_id("profile-rpps").fill("1234")
    doctor.get_by_test_id("profile-save").click()
    expect(doctor.get_by_test_id("profile-problem")).to_contain_text("exactement 11 chiffres")
    expect(doctor.get_by_test_id("profile-rpps")).to_have_value("1234")  # kept to correct it
    doctor.get_by_test_id("profile-rpps").fill("10003456789")
    doctor.get_by_test_id("profile-profession").fill("médecin généraliste")
    doctor.get_by_test_id("profile-practice").fill("Cabinet du Port, Brest")
    doctor.get_by_test_id("profile-save").click()
    expect(doctor.get_by_role("status").first).to_contain_text("nouvelle carte signée")
    off_loop(
        wait_until,
        lambda: [p["profession"] for p in peers_of(kine)] == ["médecin généraliste"],
        30,
    )
    assert peers_of(kine)[0]["rpps"] == "10003456789"

    expect(doctor.get_by_test_id("passphrase-state")).to_have_attribute("data-protected", "no")
    doctor.get_by_test_id("passphrase-new").fill("une phrase assez longue")
    doctor.get_by_test_id("passphrase-again").fill("une phrase assez longue!")
    doctor.get_by_test_id("passphrase-save").click()
    expect(doctor.get_by_test_id("passphrase-problem")).to_contain_text("diffèrent")
    doctor.get_by_test_id("passphrase-new").fill("une phrase assez longue")
    doctor.get_by_test_id("passphrase-again").fill("une phrase assez longue")
    doctor.get_by_test_id("passphrase-save").click()
    expect(doctor.get_by_test_id("passphrase-state")).to_have_attribute("data-protected", "yes")
    assert "une phrase assez longue" not in doctor.content()
    shoot(doctor, "settings")
    accessible(doctor)

    off_loop(kine.daemon.client.post, "/v1/revocations", {"self": True})
    off_loop(wait_until, lambda: bool(peers_of(gp)[0].get("revoked_since")), 30)
    doctor.goto(doctor.url.replace("/settings", "/colleagues"))
    row = doctor.get_by_test_id("colleague-row").filter(has_text="Mme Leroy")
    expect(row.get_by_test_id("revoked")).to_contain_text("Clé révoquée")
    expect(row.get_by_test_id("remove")).to_have_count(0)  # nothing to do with a revoked key
    accessible(doctor)


def test_the_people_forms_refuse_a_forged_request(strangers: Three) -> None:
    gp, cardio, _ = strangers
    visitor = gp.visitor()
    before = off_loop(gp.daemon.client.get, "/v1/profile")
    forged = visitor.post_form("/settings/profile", {"name": "Dr Pirate"})
    assert forged.status == 403
    assert visitor.post_form("/colleagues/invite", {}).status == 403
    assert (
        visitor.post_form("/settings/passphrase", {"new": "x" * 12, "again": "x" * 12}).status
        == 403
    )
    foreign = visitor.post_form(
        "/settings/profile",
        {"name": "Dr Pirate", "csrf": visitor.csrf()},
        Origin="http://evil.example",
    )
    assert foreign.status == 403
    assert off_loop(gp.daemon.client.get, "/v1/profile")["seq"] == before["seq"]
    stranger = type(visitor)(visitor.base)
    assert stranger.get("/settings").status == 401
    assert stranger.get(f"/colleagues/{cardio.peer_id}/remove").status == 401
