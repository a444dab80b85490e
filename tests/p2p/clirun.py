"""Running `pli` in-process for tests: never a traceback, never an ambient home."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from p2p.cli.app import cli


@pytest.fixture(autouse=True)
def no_ambient_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own PLI_HOME / PLI_PASSPHRASE must not leak into a test."""
    monkeypatch.delenv("PLI_HOME", raising=False)
    monkeypatch.delenv("PLI_PASSPHRASE", raising=False)


def run(*args: str | Path, answer: str | None = None) -> Result:
    """Invoke `pli ARGS`; an unexpected exception fails the test, a traceback never shows."""
    result = CliRunner().invoke(cli, [str(a) for a in args], input=answer)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
