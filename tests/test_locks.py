"""The hashed locks in requirements/ pin every dependency pyproject.toml declares.

A dependency added to ``pyproject.toml`` without ``bash requirements/refresh``
fails here, with the name, instead of failing a newcomer's install.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    found = re.findall(r"^([A-Za-z0-9._-]+)==([^ \\\n]+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def declared(*extras: str) -> list[Requirement]:
    lines = list(PROJECT["project"]["dependencies"])
    for extra in extras:
        lines += PROJECT["project"]["optional-dependencies"][extra]
    lines += PROJECT["build-system"]["requires"]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("lock", "extras"), [("run.txt", ()), ("test.txt", ("test", "lint"))], ids=["run", "test"]
)
def test_lock_pins_every_declared_dependency(lock: str, extras: tuple[str, ...]) -> None:
    pinned = pins(lock)
    for requirement in declared(*extras):
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in requirements/{lock}"
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_every_pin_carries_a_hash() -> None:
    for lock in ("run.txt", "test.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements" / lock).read_text())
        for entry in entries:
            if "==" in entry.split("\n")[0]:
                assert "--hash=sha256:" in entry, entry.split()[0]


def test_the_test_lock_agrees_with_the_run_lock() -> None:
    run, test = pins("run.txt"), pins("test.txt")
    assert {name: test.get(name) for name in run} == run
