"""The desktop shortcut (packaging/pli-open and pli-open.desktop) signs its user in.

The script asks a real daemon for a one-time link, as the shortcut does, and hands
it to ``xdg-open``; here ``xdg-open`` is a small stand-in on ``PATH`` that writes
the link down, and a visitor then signs in with it.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, kill_all
from tests.web.visitor import Visitor

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeProcess]:
    daemon = PracticeProcess(tmp_path_factory.mktemp("shortcut") / "gp", "Dr Martin").start()
    try:
        yield daemon
    finally:
        kill_all(daemon)


def run_shortcut(practice: PracticeProcess, bin_dir: Path) -> Path:
    """Runs packaging/pli-open with a stand-in xdg-open; the file it wrote the link to."""
    opened = bin_dir / "opened.txt"
    xdg_open = bin_dir / "xdg-open"
    xdg_open.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n')
    xdg_open.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PLI_BIN": str(Path(sys.executable).with_name("pli")),
        "PLI_HOME": str(practice.home),
    }
    subprocess.run([PACKAGING / "pli-open"], env=env, check=True, timeout=30)
    return opened


def test_the_shortcut_opens_a_link_that_signs_in_once(
    practice: PracticeProcess, tmp_path: Path
) -> None:
    url = run_shortcut(practice, tmp_path).read_text()
    visitor = Visitor(url.split("/login/")[0])
    assert visitor.login(url).status == 303
    assert Visitor(url.split("/login/")[0]).login(url).status != 303, "a link works once"


def test_the_desktop_entry_runs_the_script() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(PACKAGING / "pli-open.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"] == "pli-open"
    assert desktop["Terminal"] == "false"
    assert desktop["Name"].startswith("pli")
