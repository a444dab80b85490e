"""A damaged home never shows a traceback: every command, every kind of damage.

Each case below is one way a practice's ``config.toml``, ``profile.json`` or key file
can be wrong (typed by hand, cut by a full disk, restored from a bad copy). For each,
``pli daemon`` runs as a real process and every other command runs in-process; each
must end with a sentence and the exit code of the contract (../shared/design/cli.md):
1 for a command that reads the damaged file itself, 3 for one that needs the daemon
(which cannot start on that home), never a Python traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from p2p.cli.app import cli
from p2p.errors import ConfigError, KeystoreError
from p2p.storage import config, keystore

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse

PASSPHRASE = "correct horse battery staple"
Damage = Callable[[Path], None]


#: Set in every config.toml below unless the case sets the key itself: should a case
#: ever be accepted, its daemon listens on loopback only and announces nothing.
SAFE = {b"listen": b'listen = "127.0.0.1:0"\n', b"discovery": b"discovery = false\n"}


def _config(text: str | bytes) -> Damage:
    data = text if isinstance(text, bytes) else text.encode()
    safe = b"".join(line for key, line in SAFE.items() if not data.startswith(key))

    def damage(home: Path) -> None:
        (home / config.CONFIG_FILE).write_bytes(safe + data)

    return damage


def _config_folder(home: Path) -> None:
    (home / config.CONFIG_FILE).unlink()
    (home / config.CONFIG_FILE).mkdir()


def _profile_not_json(home: Path) -> None:
    (home / config.PROFILE_FILE).write_text("{name: Dr", encoding="utf-8")


BAD_CONFIGS: dict[str, Damage] = {
    "interface-unknown": _config('discovery = true\ninterfaces = ["eth9-nope"]\n'),
    "interface-foreign-address": _config('discovery = true\ninterfaces = ["203.0.113.77"]\n'),
    "interface-ipv6": _config('discovery = true\ninterfaces = ["::1"]\n'),
    "interfaces-not-a-list": _config('interfaces = "lo"\n'),
    "not-toml": _config("listen = \n"),
    "not-utf8": _config(b"listen = '\xff\xfe'\n"),
    "unknown-key": _config('colour = "blue"\n'),
    "wrong-type": _config('discovery = "yes"\n'),
    "not-strings": _config("advertise_addresses = [1, 2]\n"),
    "a-table": _config('[daemon]\nlisten = "127.0.0.1:0"\n'),
    "port-too-big": _config('listen = "127.0.0.1:99999"\n'),
    "port-not-a-number": _config('listen = "127.0.0.1:http"\n'),
    "retry-zero": _config("retry_min = 0\n"),
    "config-is-a-folder": _config_folder,
    "profile-not-json": _profile_not_json,
}


def _edit_keys(change: Callable[[dict[str, Any]], Any]) -> Damage:
    def damage(home: Path) -> None:
        path = keystore.key_path(home)
        document = json.loads(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(json.dumps(document), encoding="utf-8")

    return damage


def _key_bytes(data: bytes) -> Damage:
    def damage(home: Path) -> None:
        keystore.key_path(home).write_bytes(data)

    return damage


def _key_mode(home: Path) -> None:
    keystore.key_path(home).chmod(0o644)


def _key_folder(home: Path) -> None:
    path = keystore.key_path(home)
    path.unlink()
    path.mkdir(mode=0o700)


#: Damage to a key file written without a passphrase.
BAD_PLAIN_KEYS: dict[str, Damage] = {
    "empty": _key_bytes(b""),
    "cut": _key_bytes(b'{"v": 1, "secrets": {"identity_se'),
    "binary": _key_bytes(b"\x00\xff\xfe garbage"),
    "a-list": _key_bytes(b"[]"),
    "other-version": _edit_keys(lambda d: d.update(v=2)),
    "secrets-not-a-map": _edit_keys(lambda d: d.update(secrets="abc")),
    "seed-missing": _edit_keys(lambda d: d["secrets"].pop("identity_seed")),
    "seed-not-hex": _edit_keys(lambda d: d["secrets"].update(identity_seed="zz")),
    "seed-too-short": _edit_keys(lambda d: d["secrets"].update(identity_seed="00" * 7)),
    "expiry-not-a-number": _edit_keys(lambda d: d["secrets"].update(static_not_after="soon")),
    "readable-by-others": _key_mode,
    "key-file-is-a-folder": _key_folder,
}

#: Damage to a passphrase-protected key file (PLI_PASSPHRASE is set for these).
BAD_SEALED_KEYS: dict[str, Damage] = {
    "kdf-missing": _edit_keys(lambda d: d.pop("kdf")),
    "kdf-not-a-map": _edit_keys(lambda d: d.update(kdf="argon2id")),
    "kdf-memory-not-a-number": _edit_keys(lambda d: d["kdf"].update(mem="lots")),
    "kdf-memory-huge": _edit_keys(lambda d: d["kdf"].update(mem=2**50)),
    "kdf-unknown": _edit_keys(lambda d: d["kdf"].update(alg="rot13")),
    "salt-missing": _edit_keys(lambda d: d["kdf"].pop("salt")),
    "nonce-cut": _edit_keys(lambda d: d.update(nonce=d["nonce"][:10])),
    "sealed-missing": _edit_keys(lambda d: d.pop("sealed")),
    # The first byte flipped (setting it to 00 left it unchanged once in 256 runs).
    "sealed-altered": _edit_keys(
        lambda d: d.update(sealed=f"{int(d['sealed'][:2], 16) ^ 0xFF:02x}{d['sealed'][2:]}")
    ),
}

CASES = [
    *(pytest.param("config", name, id=f"config-{name}") for name in BAD_CONFIGS),
    *(pytest.param("plain", name, id=f"keys-{name}") for name in BAD_PLAIN_KEYS),
    *(pytest.param("sealed", name, id=f"sealed-{name}") for name in BAD_SEALED_KEYS),
]


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest Argon2id settings pli accepts: these tests are about shapes, not cost."""
    small = {"alg": "argon2id", "ops": 1, "mem": 8192}
    real = keystore._kdf_params
    monkeypatch.setattr(keystore, "_kdf_params", lambda: {**real(), **small})


def damaged_home(tmp_path: Path, family: str, name: str) -> tuple[Path, dict[str, str]]:
    """A home with a good identity, then one kind of damage; the environment to use."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    sealed = family == "sealed"
    keystore.create(home, passphrase=PASSPHRASE if sealed else None)
    config.save_profile(home, name="Dr Alice Martin")
    (home / config.CONFIG_FILE).write_text('listen = "127.0.0.1:0"\ndiscovery = false\n')
    damages = {"config": BAD_CONFIGS, "plain": BAD_PLAIN_KEYS, "sealed": BAD_SEALED_KEYS}
    damages[family][name](home)
    return home, {"PLI_PASSPHRASE": PASSPHRASE} if sealed else {}


def every_command() -> list[tuple[str, ...]]:
    """Every command path of the CLI (``("peers", "add")`` ...), groups included."""
    found: list[tuple[str, ...]] = []

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, command in sorted(group.commands.items()):
            found.append((*prefix, name))
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))

    walk(cli, ())
    return found


#: The arguments each command is run with, and whether it reads the home's files itself
#: (exit 1 on damage) or asks the daemon (exit 3: it cannot be running on this home).
#: ``daemon`` runs as a process (below); ``demo`` makes its own temporary homes.
def command_lines(tmp: Path) -> dict[tuple[str, ...], tuple[list[str], int]]:
    letter = tmp / "lettre.txt"
    letter.write_text("Cher confrère,\n", encoding="utf-8")
    fingerprint = "2ULYR-T4FX4-KTUUK-LGP5S-75ZMG-NY522-ILVQ5-PH6KV"
    patient = ["--patient-name", "DUPONT, Jeanne", "--patient-birthdate", "1955-08-14"]
    item = ["--item", "Amoxicilline 1 g; 1 comprimé matin et soir; 7 jours"]
    return {
        ("id",): ([], 1),
        ("init",): (["--name", "Dr Alice Martin"], 1),  # an identity is there: never overwritten
        ("status",): ([], 3),
        ("peers",): ([], 3),
        ("peers", "accept"): (["1"], 3),
        ("peers", "add"): ([fingerprint, "--address", "127.0.0.1:7717"], 3),
        ("peers", "add-card"): (["AAAA"], 3),
        ("peers", "pending"): ([], 3),
        ("peers", "remove"): (["Dr Bob"], 3),
        ("peers", "rename"): (["Dr Bob", "Dr Robert Durand"], 3),
        ("peers", "accept-name"): (["Dr Bob"], 3),
        ("pair",): ([], 2),  # a group without a subcommand: its usage
        ("pair", "invite"): (["--yes"], 3),
        ("pair", "accept"): (["314-1592653", "--yes"], 3),
        ("send",): (["Dr Bob", str(letter)], 3),
        ("prescribe",): (["Dr Bob", *patient, *item], 3),
        ("inbox",): ([], 3),
        ("outbox",): ([], 3),
        ("show",): (["3fa2c1"], 3),
        ("export",): (["3fa2c1", "--to", str(tmp)], 3),
        ("verify",): ([str(letter)], 1),  # offline; the letter has no signature proof
        ("revoke",): (["--yes"], 3),  # signs through the daemon
        ("profile",): ([], 1),  # reads profile.json and keys/public.json
        ("profile", "set"): (["--practice", "Cabinet du Port"], 1),  # no daemon: writes the home
        ("passphrase",): (["--remove"], 1),  # opens the key file itself
        ("api-token",): ([], 2),
        ("api-token", "create"): (["--name", "LGC", "--scope", "send"], 3),
        ("api-token", "list"): ([], 3),
        ("api-token", "revoke"): (["LGC"], 3),
        ("web-user",): ([], 0),  # reads web/users.json only
        ("web-user", "set"): (["secretariat"], 1),  # no password typed: stopped
        ("web-user", "remove"): (["secretariat"], 1),  # no such name
    }


NOT_IN_PROCESS = {("daemon",), ("demo",)}


def test_the_table_covers_every_command(tmp_path: Path) -> None:
    listed = set(command_lines(tmp_path)) | NOT_IN_PROCESS
    missing = [" ".join(c) for c in every_command() if c not in listed]
    assert not missing, f"add {missing} to command_lines() in {__file__}"


def _expected(command: tuple[str, ...], family: str, name: str, default: int) -> int:
    """Commands that do not read the damaged file work as on a sound home."""
    if family == "config" and command == ("id",) and name != "profile-not-json":
        return 0  # `pli id` reads the keys and the profile, not config.toml
    if command[0] == "profile" and name != "profile-not-json":
        return 0  # the profile and the public key are sound: shown, or written
    if command == ("passphrase",) and family == "config":
        return 0  # the key file is sound (config.toml is not read)
    return default


@pytest.mark.parametrize(("family", "name"), CASES)
def test_no_command_shows_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_kdf: None, family: str, name: str
) -> None:
    home, env = damaged_home(tmp_path, family, name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    lines = command_lines(tmp_path)
    for command, (args, default) in lines.items():
        result = run("--home", home, *command, *args)  # raises on any unexpected exception
        expected = _expected(command, family, name, default)
        assert result.exit_code == expected, (command, result.output)
        if expected == 1 and command in {("id",), ("daemon",)}:
            assert str(home) in result.output, result.output  # says which file is wrong
    card = run("--home", home, "id", "--card")
    assert card.exit_code == 1, card.output


@pytest.mark.parametrize(("family", "name"), CASES)
def test_the_daemon_process_refuses_with_a_sentence(
    tmp_path: Path, fast_kdf: None, family: str, name: str
) -> None:
    home, env = damaged_home(tmp_path, family, name)
    done = subprocess.run(
        [sys.executable, "-m", "p2p", "--home", str(home), "daemon"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PLI_HOME": "", **env},
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("pli: "), done.stderr
    assert str(home) in done.stderr, done.stderr  # names the file to fix


def test_a_damaged_key_file_says_what_to_do(tmp_path: Path, fast_kdf: None) -> None:
    home, env = damaged_home(tmp_path, "sealed", "kdf-missing")
    with pytest.raises(KeystoreError) as caught:
        keystore.load(home, passphrase=env["PLI_PASSPHRASE"])
    message = caught.value.message
    assert "“kdf”" in message
    assert "backup" in message
    assert "pli init" in message


def test_a_sound_sealed_home_still_opens(tmp_path: Path, fast_kdf: None) -> None:
    home = tmp_path / "home"
    made = keystore.create(home, passphrase=PASSPHRASE)
    assert keystore.load(home, passphrase=PASSPHRASE).identity.peer_id == made.identity.peer_id
    with pytest.raises(KeystoreError, match="Wrong passphrase"):
        keystore.load(home, passphrase="wrong")


def test_an_interface_name_stands_for_its_addresses(tmp_path: Path) -> None:
    (tmp_path / config.CONFIG_FILE).write_text('interfaces = ["lo", "127.0.0.1"]\n')
    assert config.load(tmp_path).interfaces == ("127.0.0.1",)


def test_an_unknown_interface_lists_the_real_ones(tmp_path: Path) -> None:
    (tmp_path / config.CONFIG_FILE).write_text('interfaces = ["eth9-nope"]\n')
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    assert "“eth9-nope”" in caught.value.message
    assert "lo (127.0.0.1)" in caught.value.message


async def test_discovery_that_cannot_start_stops_the_daemon_with_its_sentence(
    tmp_path: Path,
) -> None:
    """An interface gone between load and start: the daemon ends with one ConfigError."""
    import asyncio
    import dataclasses

    from p2p.daemon.core import Daemon

    home = tmp_path / "home"

    def prepare() -> Daemon:  # keys, settings and database: blocking, off the loop
        keys = keystore.create(home)
        settings = dataclasses.replace(
            config.load(home, listen="127.0.0.1:0"), discovery=True, interfaces=("203.0.113.77",)
        )  # what load() now refuses, as if the address had gone since
        return Daemon(settings, keys)

    daemon = await asyncio.to_thread(prepare)
    await daemon.start()
    with pytest.raises(ConfigError, match=r"could not start on 203\.0\.113\.77"):
        await asyncio.wait_for(daemon.run(), timeout=20)
