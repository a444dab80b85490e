"""Debian's chromium driven by Playwright, for tests/web/test_chromium.py.

Playwright's own browser download is not used (nor reachable here): the tests
launch ``/usr/bin/chromium`` (``apt-get install chromium``, done by ``.ci/run``).
``CHROMIUM`` names another binary. Screenshots go to ``build/screenshots/`` (not
committed); a few chosen ones are copied to ``docs/screenshots/`` by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / "build" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: A name that must resolve to 127.0.0.1 inside the browser, as a rebinding attack would.
REBOUND = "rebound.example"


def launch_args() -> list[str]:
    return ["--no-sandbox", f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]


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
