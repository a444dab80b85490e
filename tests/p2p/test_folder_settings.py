"""``[folders]`` in config.toml: off by default, each mistake named in a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2p.errors import ConfigError
from p2p.storage.config import Folders, load


def write(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
    return home


def test_off_by_default(tmp_path: Path) -> None:
    assert load(tmp_path).folders == Folders(outbox=None, inbox=None)


def test_folders_read_and_resolved(tmp_path: Path) -> None:
    home = write(
        tmp_path / "home",
        f'[folders]\noutbox = "../lgc/out"\ninbox = "{tmp_path / "lgc" / "in"}"\n'
        'inbox_formats = ["fhir", "hprim", "fhir"]\nstable_seconds = 0\npoll_seconds = 0.5\n',
    )
    folders = load(home).folders
    assert folders.outbox == tmp_path / "lgc" / "out"  # relative to the home
    assert folders.inbox == tmp_path / "lgc" / "in"
    assert folders.inbox_formats == ("fhir", "hprim")
    assert (folders.stable_seconds, folders.poll_seconds) == (0.0, 0.5)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[folders]\ninbox_formats = ["pdf"]\n', "names the format “pdf”"),
        (
            "[folders]\nwatch = 1\n",
            "Unknown setting “folders.watch”.*Known settings of \\[folders\\]",
        ),
        ("[folders]\noutbox = 3\n", "“folders.outbox” .* has the wrong type"),
        ("folders = 1\n", "write it as a \\[folders\\] section"),
        ("[folders]\nstable_seconds = -1\n", "stable_seconds cannot be negative"),
        ("[folders]\npoll_seconds = 0\n", "poll_seconds is between"),
        ('[folders]\noutbox = "/srv/x"\ninbox = "/srv/x/in"\n', "two separate folders"),
        ('[folders]\noutbox = "/srv/x"\ninbox = "/srv/x"\n', "two separate folders"),
        ('[folders]\ninbox = "documents"\n', "inside pli's home"),
    ],
)
def test_mistakes_refused_in_words(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load(write(tmp_path / "home", text))
