"""The sent documents' page when things go wrong, in Debian's chromium, two real daemons.

The cardiologist's practice refuses what it is offered (its disk reserve is more
than any disk has free): the GP's page says so in French, in pli's words for the
refusal code, with no English (the API keeps its English sentence). Then the
cardiologist revokes their key: the letter still waiting is cancelled, and the
sent documents and the colleagues say why. axe-core on each of these states, on a refused form
and on an empty inbox; screenshots in build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, kill_all, wait_until
from p2p.web.words import word
from tests.web import browser as chromium
from tests.web.browser import accessible
from tests.web.conftest import Practice, off_loop, signed_in

if not chromium.CHROMIUM.exists():  # .ci/run installs it: in CI these tests run
    pytest.skip(
        f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect

#: More MiB than any disk this test runs on has free (about a petabyte).
HUGE_RESERVE_MIB = 1024**3


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Practice, Practice]]:
    """The GP, and a cardiologist whose practice refuses every document (disk full)."""
    root: Path = tmp_path_factory.mktemp("refusing")
    gp = PracticeProcess(root / "gp", "Dr Martin").start()
    cardio = PracticeProcess(root / "cardio", "Dr Durand", disk_reserve_mib=HUGE_RESERVE_MIB)
    try:
        cardio.start()
        gp.trust(cardio)
        cardio.trust(gp)
        yield Practice(gp), Practice(cardio)
    finally:
        kill_all(gp, cardio)


def outbox_row(practice: Practice, doc_id: str) -> dict[str, object]:
    (row,) = off_loop(practice.daemon.client.get, f"/v1/outbox?id={doc_id}")
    return dict(row)


def origin(page: Page) -> str:
    """``http://127.0.0.1:PORT`` of the page ``page`` shows."""
    return "/".join(page.url.split("/")[:3])


def write(page: Page, to: str, subject: str, letter: Path) -> str:
    """Send ``letter`` to ``to`` through the compose form; the new document's id."""
    page.goto(origin(page) + "/compose")
    page.get_by_test_id("recipient").select_option(to)
    page.get_by_test_id("subject").fill(subject)
    page.get_by_test_id("files").set_input_files(str(letter))
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("document-view")).to_be_visible()
    return str(page.get_by_test_id("document-view").get_attribute("data-id"))


def test_a_refusal_and_a_revoked_colleague_in_french(
    browser: Browser, refusing: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = refusing
    doctor = signed_in(browser, gp)
    expect(doctor.get_by_text(word("fr", "empty_inbox"))).to_be_visible()
    accessible(doctor)  # an empty inbox

    doctor.goto(origin(doctor) + "/compose")
    doctor.get_by_test_id("recipient").select_option(cardio.peer_id)
    doctor.get_by_test_id("patient-name").fill("DUPONT, Jean")
    doctor.get_by_test_id("send").click()  # no file, no birth date: refused
    expect(doctor.get_by_test_id("problems")).to_contain_text(word("fr", "need_file"))
    chromium.shoot(doctor, "compose-refused")
    accessible(doctor)  # a refused form

    letter = tmp_path / "courrier.txt"
    letter.write_text("Cher confrère,\n", encoding="utf-8")
    doc_id = write(doctor, cardio.peer_id, "Avis demandé", letter)
    off_loop(wait_until, lambda: outbox_row(gp, doc_id)["error_code"] is not None, 30)
    refused = outbox_row(gp, doc_id)
    assert (refused["state"], refused["error_code"]) == ("queued", "refused-disk-full")
    assert "disk is nearly full" in str(refused["last_error"])  # the API keeps its English
    doctor.goto(origin(doctor) + "/outbox")
    row = doctor.get_by_test_id("outbox-row").filter(has_text="Avis demandé")
    expect(row.get_by_test_id("outbox-error")).to_have_text(word("fr", "fail_refused-disk-full"))
    assert "disk" not in str(row.text_content())  # no English on the French page
    chromium.shoot(doctor, "outbox-refused")
    accessible(doctor)  # the sent documents with a refused one
    doctor.get_by_role("button", name="English").click()
    expect(row.get_by_test_id("outbox-error")).to_have_text(word("en", "fail_refused-disk-full"))
    doctor.get_by_role("button", name="Français").click()

    off_loop(cardio.daemon.client.post, "/v1/revocations", {"self": True})
    off_loop(wait_until, lambda: outbox_row(gp, doc_id)["state"] == "cancelled", 30)
    doctor.reload()
    expect(row).to_have_attribute("data-state", "cancelled")
    expect(row.get_by_test_id("outbox-error")).to_have_text(word("fr", "fail_cancelled-revoked"))
    assert row.get_by_test_id("retry").count() == 0  # nothing more to try
    chromium.shoot(doctor, "outbox-revoked")
    accessible(doctor)  # a cancelled row: the colleague's key was revoked
    doctor.goto(origin(doctor) + "/colleagues")
    colleague = doctor.get_by_test_id("colleague-row").filter(has_text="Dr Durand")
    expect(colleague.get_by_test_id("revoked")).to_contain_text("Clé révoquée")
    accessible(doctor)  # the colleagues, one revoked
