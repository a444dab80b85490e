"""Debian's chromium driven by Playwright, for the page's browser tests (tests/web/).

Playwright's own browser download is not used (nor reachable here): the tests
launch ``/usr/bin/chromium`` (``apt-get install chromium``, done by ``.ci/run``).
``CHROMIUM`` names another binary. Every test launches it through ``launched``
(the ``browser`` fixture of ``conftest.py``) and opens pages with ``french_page``:
the browser of a French practice, in French (its own strings too: validation
messages, the file picker's button, from Debian's ``chromium-l10n``), with French
number and date formats and the practice's time zone. Screenshots go to
``build/screenshots/`` (not committed); a few chosen ones are copied to
``docs/screenshots/`` by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / "build" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: A name that must resolve to 127.0.0.1 inside the browser, as a rebinding attack would.
REBOUND = "rebound.example"


#: The practice's language and time zone, as its browser has them.
LOCALE = "fr-FR"
TIMEZONE = "Europe/Paris"
VIEWPORT = {"width": 1280, "height": 860}


def launch_args() -> list[str]:
    return ["--no-sandbox", f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]


@contextlib.contextmanager
def launched() -> Iterator[Browser]:
    """Debian's chromium, headless, speaking French.

    On Linux chromium takes the language of its own strings from ``LANGUAGE``, not
    from ``--lang`` nor from a context's ``locale`` (which sets what pages see:
    ``navigator.language``, ``Accept-Language``, ``Intl``).
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=launch_args(),
            env={**os.environ, "LANGUAGE": LOCALE.replace("-", "_")},
        )
        try:
            yield browser
        finally:
            browser.close()


def french_page(browser: Browser, **options: Any) -> Page:
    """A page in a new browser profile (no cookie shared) of a French practice."""
    settings: dict[str, Any] = {"locale": LOCALE, "timezone_id": TIMEZONE, "viewport": VIEWPORT}
    return browser.new_context(**{**settings, **options}).new_page()


def shoot(page: Any, name: str) -> Path:
    """A full-page PNG of ``page`` in ``build/screenshots``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")
    if page.locator("iframe").count():
        page.wait_for_timeout(800)  # the PDF viewer draws after its frame has loaded
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` (evaluated through
    DevTools, so the page's CSP, which forbids inline script, stays as it is)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"""
    )
    return found


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=1, ensure_ascii=False)


def accessible(page: Page) -> None:
    """No serious or critical violation by axe-core on ``page`` as it is now."""
    violations = serious_violations(page)
    assert violations == [], describe(violations)
