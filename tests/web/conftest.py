"""Two real practices for the page's tests: ``pli daemon`` processes on loopback,
each serving its page on a free loopback port, paired with each other; the
browser tests' one chromium per module (``browser``, ``browser.launched``), and
``signed_in``, a French practice's browser on one of those pages.

``Practice``'s calls to the daemon's API run on a worker thread: Playwright's sync
API keeps its own event loop marked as running on the test's thread, and the suite's
blocking guard (tests/conftest.py) refuses socket calls made under a running loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect

from p2p.cli.practice import PracticeProcess, paired, wait_until
from tests.web import browser as chromium
from tests.web.visitor import Visitor

T = TypeVar("T")


def off_loop(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` on a worker thread (where no event loop runs), its result."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


@dataclass
class Practice:
    daemon: PracticeProcess

    def link(self) -> str:
        """A fresh one-time login link, as ``pli open --no-browser`` gets it."""
        return str(off_loop(self.daemon.client.post, "/v1/web/link", {})["url"])

    @property
    def peer_id(self) -> str:
        return str(off_loop(self.daemon.identity)["peer_id"])

    def visitor(self) -> Visitor:
        """A browser signed in to this practice's page."""
        url = self.link()
        visitor = Visitor(url.split("/login/")[0])
        assert visitor.login(url).status == 303
        return visitor

    def inbox_ids(self) -> list[str]:
        return [str(row["id"]) for row in off_loop(self.daemon.client.get, "/v1/inbox")]


@pytest.fixture(scope="module")
def practices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Practice, Practice]]:
    """The GP (Dr Martin) and the cardiologist (Dr Durand), paired."""
    root: Path = tmp_path_factory.mktemp("web")
    gp = PracticeProcess(root / "gp", "Dr Martin")
    cardio = PracticeProcess(root / "cardio", "Dr Durand")
    with paired(gp, cardio):
        yield Practice(gp), Practice(cardio)


@pytest.fixture(scope="module")
def reading_practices(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Practice, Practice]]:
    """The GP, and the cardiologist whose practice sends read receipts (``receipts_read``)."""
    root: Path = tmp_path_factory.mktemp("receipts")
    gp = PracticeProcess(root / "gp", "Dr Martin")
    cardio = PracticeProcess(root / "cardio", "Dr Durand", receipts_read=True)
    with paired(gp, cardio):
        yield Practice(gp), Practice(cardio)


def delivered(practice: Practice, doc_id: str, timeout: float = 30.0) -> None:
    """Wait until ``doc_id`` has its receipt in ``practice``'s outbox."""
    off_loop(wait_until, lambda: practice.daemon.outbox_state(doc_id) == "delivered", timeout)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One chromium for a module's tests (each page gets a profile of its own).

    Per module, not per session: Playwright's sync API keeps its event loop marked
    as running on the test's thread while the browser lives, which the asyncio
    tests of the next modules could not run under.
    """
    if not chromium.CHROMIUM.exists():
        pytest.skip(f"no chromium at {chromium.CHROMIUM} (apt-get install chromium)")
    with chromium.launched() as launched:
        yield launched


def signed_in(browser: Browser, practice: Practice, path: str = "/", **options: Any) -> Page:
    """A new browser profile on ``practice``'s page, signed in through ``pli open``'s
    link (which lands on the inbox), then at ``path``."""
    page = chromium.french_page(browser, **options)
    page.goto(practice.link())
    expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()
    if path != "/":
        page.goto(page.url.rstrip("/") + path)  # signed in at the page's root
    return page
