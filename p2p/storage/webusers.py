"""Who may sign in to the practice's page over the network: ``web/users.json`` in the home.

With ``web_tls = true`` the page asks for a name and a password (the one-time link
of ``pli open`` is not enough: a link can be forwarded, and other computers of
the practice cannot run ``pli open``). ``pli web-user set NAME`` writes one entry:
the name and an Argon2id hash of the password (libsodium's ``pwhash.str``, the
salt and the cost inside), in a 0600 file; nothing else about the person. The
daemon checks a password with ``check`` on a worker thread (the hash costs ~0.1 s
and 64 MiB on purpose) and never logs or keeps it.
"""

from __future__ import annotations

import functools
import json
import time
import unicodedata
from pathlib import Path
from typing import Any

from nacl import exceptions as nacl_exceptions
from nacl import pwhash

from p2p.errors import BadInput, ConfigError
from p2p.storage.files import make_private_dir, write_atomic

USERS_FILE = Path("web") / "users.json"
MIN_PASSWORD = 10  # characters: the page may be reached from every computer of the LAN
MAX_NAME = 64


@functools.cache
def _dummy() -> bytes:
    """A hash checked when the name is unknown, so that the answer takes the same time."""
    return bytes(
        pwhash.argon2id.str(
            b"pli: no such user",
            opslimit=pwhash.argon2id.OPSLIMIT_INTERACTIVE,
            memlimit=pwhash.argon2id.MEMLIMIT_INTERACTIVE,
        )
    )


def _path(home: Path) -> Path:
    return home / USERS_FILE


def load(home: Path) -> dict[str, dict[str, Any]]:
    """The users, by name (``{}`` when the file does not exist)."""
    path = _path(home)
    try:
        users = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The page's users file {path} could not be read ({exc}). Remove it and set the "
            "passwords again with `pli web-user set NAME`."
        ) from None
    if not isinstance(users, dict) or not all(isinstance(v, dict) for v in users.values()):
        raise ConfigError(f"The page's users file {path} is damaged: remove it and set them again.")
    return users


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > MAX_NAME or any(unicodedata.category(c)[0] in "CZ" for c in name):
        raise BadInput(
            f"“{name}” cannot be a sign-in name: use up to {MAX_NAME} letters, digits or "
            "signs, without spaces (e.g. secretariat, dr.martin)."
        )
    return name


def set_password(home: Path, name: str, password: str) -> bool:
    """Add ``name`` or change its password; True if it is new."""
    name = check_name(name)
    if len(password) < MIN_PASSWORD:
        raise BadInput(
            f"The password is too short: use at least {MIN_PASSWORD} characters (a few words "
            "are easier to remember)."
        )
    users = load(home)
    new = name not in users
    hashed = pwhash.argon2id.str(
        password.encode("utf-8"),
        opslimit=pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    )
    users[name] = {"hash": hashed.decode("ascii"), "set_at": int(time.time())}
    _save(home, users)
    return new


def remove(home: Path, name: str) -> None:
    users = load(home)
    if name not in users:
        raise BadInput(f"There is no sign-in name “{name}”. `pli web-user` lists them.")
    del users[name]
    _save(home, users)


def check(home: Path, name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s (blocking: run it on a worker thread)."""
    entry = load(home).get(name.strip())
    stored = str(entry.get("hash", "")) if entry else ""
    try:
        pwhash.verify(stored.encode("ascii") or _dummy(), password.encode("utf-8"))
    except (nacl_exceptions.InvalidkeyError, nacl_exceptions.CryptoError, ValueError):
        return False
    return bool(stored)


def _save(home: Path, users: dict[str, dict[str, Any]]) -> None:
    make_private_dir(home / USERS_FILE.parent)
    data = json.dumps(users, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    write_atomic(_path(home), [data])
