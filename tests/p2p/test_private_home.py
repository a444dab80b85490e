"""A practice's home stays private whatever the umask and however it was made.

With ``umask 022`` (the usual shell default) the database's ``-wal`` and ``-shm``
files used to be created readable by every user of the computer, and a home made
by hand with ``mkdir`` stayed open to them (issue 8 §1.6). Now the CLI and the
daemon start with umask 077, the database file is created 0600 before SQLite
opens it (SQLite gives its -wal/-shm the same mode), and a home of ours that
others can open is made private, with a sentence saying so.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2p.cli.practice import PracticeProcess, kill_all, wait_until
from p2p.errors import ConfigError
from p2p.storage.files import private_home
from p2p.storage.store import Store

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def open_to_others(home: Path) -> dict[str, str]:
    """Every path under ``home`` (itself included) that another user could read or enter."""
    paths = [home, *home.rglob("*")]
    return {
        str(p.relative_to(home)): f"{stat.S_IMODE(p.lstat().st_mode):03o}"
        for p in paths
        if stat.S_IMODE(p.lstat().st_mode) & 0o077
    }


@pytest.mark.slow
def test_daemons_started_with_umask_022_keep_every_file_private(
    tmp_path: Path, umask_022: None
) -> None:
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir(mode=0o755)  # as `mkdir` in a shell makes it
        home.chmod(0o755)
    a = PracticeProcess(homes[0], "Dr Alice Martin")  # `pli init` makes the home private ...
    homes[0].chmod(0o755)  # ... opened again by hand: the daemon closes it
    a.start()
    b = PracticeProcess(homes[1], "Dr Bob Durand").start()
    try:
        a.trust(b)
        b.trust(a)
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère,\n", encoding="utf-8")
        doc_id = a.send(b, letter)
        wait_until(lambda: a.outbox_state(doc_id) == "delivered", timeout=30)
        for home in homes:
            assert (home / "pli.db-wal").exists()
            # config.toml was written by this test (as a person would), not by pli
            assert open_to_others(home) == {"config.toml": "644"}
        assert "made it private" in a.logs()
    finally:
        a.stop()
        b.stop()
        kill_all(a, b)


def test_init_makes_an_open_home_private_and_says_so(tmp_path: Path, umask_022: None) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    result = run("--home", home, "init", "--name", "Dr Alice Martin")
    assert result.exit_code == 0, result.output
    assert "made it private (mode 700)" in result.output
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_private_home_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert private_home(home) is None  # created 0700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert private_home(home) is None


def test_a_home_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: home.stat().st_uid + 1)
    with pytest.raises(ConfigError, match="belongs to another user"):
        private_home(home)


def test_the_database_files_are_private_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    store = Store(tmp_path / "pli.db")
    try:
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        store.close()
    assert {"pli.db", "pli.db-wal", "pli.db-shm"} <= set(modes)
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_the_cli_sets_umask_077(tmp_path: Path) -> None:
    import subprocess

    script = "import os, p2p.cli.app as a; a.cli.main = lambda **k: print(os.umask(0)); a.main()"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert int(done.stdout) == 0o077
