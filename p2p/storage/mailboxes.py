"""The practice's NATS mailboxes on disk: its nkey and the list of servers it joined.

- ``mailbox.nkey``: the practice's NATS user seed (Ed25519, made with libsodium's
  random bytes, encoded as NATS nkeys are), mode 0600 beside ``keys.json``. Only
  its public half (``U…``) ever leaves the home: ``pli mailbox key``.
- ``mailboxes.json``: the servers joined with ``pli mailbox add`` (URL, optional
  credentials file copied into the home, mode 0600), read by the daemon each time
  the list changes, so joining or leaving needs no restart.

No mailbox is the default: on a LAN nothing changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from p2p.errors import BadInput, ConfigError
from p2p.storage.files import write_atomic

NKEY_FILE = "mailbox.nkey"
LIST_FILE = "mailboxes.json"
CREDENTIALS_DIR = "mailbox-credentials"
DEFAULT_NATS_PORT = 4222
MAX_MAILBOXES = 8
MAX_NODES = 5
MAX_CREDENTIALS = 64 * 1024
_SCHEMES = ("nats", "tls")


@dataclass(frozen=True)
class Mailbox:
    """One server joined: its URL and, for a server run with JWTs, a credentials file."""

    url: str
    credentials: str | None  # a file name inside CREDENTIALS_DIR
    added_at: int


def normalize_url(text: str) -> str:
    """``nats://host:port`` (or ``tls://``), checked; the port defaults to 4222.

    A cluster's nodes are one mailbox: ``nats://a:4222,nats://b:4222,nats://c:4222``.
    """
    typed = [node for node in text.split(",") if node.strip()]
    if not 1 <= len(typed) <= MAX_NODES:
        raise BadInput(f"A mailbox is one address, or up to {MAX_NODES} separated by commas.")
    from protocol import limits  # here: the CLI reads this module without the protocol

    url = ",".join(_normalize_node(node) for node in typed)
    if len(url) > limits.MAX_MAILBOX_URL:  # the card that lists it allows no more
        raise BadInput(f"A mailbox address is at most {limits.MAX_MAILBOX_URL} characters.")
    return url


def nodes(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each node of a mailbox URL, in order; a node that cannot be
    read is left out. ``url`` may come from a colleague's card: only parsed, never dialled."""
    found = []
    for node in url.split(",")[:MAX_NODES]:
        try:
            parts = urlsplit(node.strip())
            port = parts.port or DEFAULT_NATS_PORT
        except ValueError:
            continue
        if parts.hostname:
            found.append((parts.hostname.lower(), port))
    return found


def servers(url: str) -> frozenset[tuple[str, int]]:
    """The nodes of a mailbox URL as a set, to compare two practices' mailboxes."""
    return frozenset(nodes(url))


def host_words(url: str) -> str:
    """A mailbox as a person reads it: ``host:port`` of each node (``[v6]:port``)."""
    shown = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes(url))
    return ", ".join(shown)


def shared(ours: Iterable[str], theirs: Iterable[str] | None) -> list[str]:
    """Our mailboxes a colleague's card lists too (a server in common, by host and
    port), in our order; all of ours when its card does not say (an older card)."""
    if theirs is None:
        return list(ours)
    their_servers = set().union(*(servers(url) for url in theirs))
    return [url for url in ours if servers(url) & their_servers]


def _normalize_node(text: str) -> str:
    parts = urlsplit(text.strip())
    try:
        port = parts.port or DEFAULT_NATS_PORT
    except ValueError:
        raise BadInput(f"“{text}”: the port must be a number, e.g. nats://10.0.0.5:4222") from None
    if parts.scheme not in _SCHEMES or not parts.hostname or parts.username or parts.path:
        raise BadInput(
            f"“{text}” is not a mailbox address: write it as nats://HOST:PORT, "
            "e.g. nats://mailbox.maison-de-sante.fr:4222"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def nkey_seed(home: Path) -> str:
    """This practice's nkey seed, made on first use (mode 0600)."""
    import nacl.utils
    import nkeys

    path = home / NKEY_FILE
    if path.exists():
        return _read_seed(path)
    seed = nkeys.encode_seed(nacl.utils.random(32), nkeys.PREFIX_BYTE_USER)
    write_atomic(path, [seed + b"\n"], overwrite=False)
    return _read_seed(path)


def _read_seed(path: Path) -> str:
    import nkeys

    try:
        seed = path.read_text(encoding="ascii").strip()
        nkeys.from_seed(seed.encode())
    except (OSError, UnicodeDecodeError, nkeys.NkeysError) as exc:
        raise ConfigError(
            f"The mailbox key {path} is damaged. Move it away and run `pli mailbox key` to "
            "make a new one; then give the new key to whoever runs your mailbox server."
        ) from exc
    return seed


def nkey_public(home: Path) -> str:
    """The public nkey (``U…``) the mailbox server's configuration lets in."""
    import nkeys

    public: bytes = nkeys.from_seed(nkey_seed(home).encode()).public_key
    return public.decode()


def load(home: Path) -> list[Mailbox]:
    """The mailboxes joined (none if the file does not exist)."""
    path = home / LIST_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [Mailbox(str(e["url"]), e.get("credentials"), int(e["added_at"])) for e in entries]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"The list of mailboxes {path} cannot be read. Remove it and add your mailboxes "
            "again with `pli mailbox add`."
        ) from exc


def _save(home: Path, mailboxes: list[Mailbox]) -> None:
    body = [{"url": m.url, "credentials": m.credentials, "added_at": m.added_at} for m in mailboxes]
    write_atomic(home / LIST_FILE, [json.dumps(body, indent=1).encode()])


def add(home: Path, url: str, credentials: bytes | None) -> Mailbox:
    """Join ``url`` (replacing its credentials if it was already joined)."""
    url = normalize_url(url)
    kept = [m for m in load(home) if m.url != url]
    if len(kept) >= MAX_MAILBOXES:
        raise BadInput(f"pli uses at most {MAX_MAILBOXES} mailboxes: remove one first.")
    name = None
    if credentials is not None:
        check_credentials(credentials)
        name = hashlib.blake2b(url.encode(), digest_size=8).hexdigest() + ".creds"
        folder = home / CREDENTIALS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        write_atomic(folder / name, [credentials])
    mailbox = Mailbox(url, name, int(time.time()))
    _save(home, [*kept, mailbox])
    return mailbox


def check_credentials(data: bytes) -> None:
    """Refuse what is not a NATS user ``.creds`` file, as nats-py reads one.

    nats-py takes the line after ``BEGIN NATS USER JWT`` and the one after ``BEGIN
    USER NKEY SEED``; on a file without the first it loops forever, so a file is
    checked when it is added and again before each connection.
    """
    import nkeys

    if not data.strip() or len(data) > MAX_CREDENTIALS:
        raise BadInput("This credentials file is empty or too large to be a NATS .creds file.")
    lines = data.splitlines()
    jwt = _line_after(lines, b"BEGIN NATS USER JWT")
    seed = _line_after(lines, b"BEGIN USER NKEY SEED")
    try:
        if not jwt or not seed or not seed.startswith(b"SU"):
            raise ValueError
        nkeys.from_seed(bytearray(seed))
    except (ValueError, nkeys.NkeysError):
        raise BadInput(
            "This file is not a NATS .creds file: it needs a user JWT and a user seed, "
            "as the server's admin hands them out (e.g. `nsc generate creds`)."
        ) from None


def _line_after(lines: list[bytes], mark: bytes) -> bytes | None:
    for index, line in enumerate(lines[:-1]):
        if mark in line:
            return lines[index + 1].strip()
    return None


def remove(home: Path, url: str) -> Mailbox:
    """Leave ``url``; its credentials file is deleted."""
    url = normalize_url(url)
    mailboxes = load(home)
    found = next((m for m in mailboxes if m.url == url), None)
    if found is None:
        raise BadInput(f"This practice has not joined {url} (see `pli mailbox status`).")
    _save(home, [m for m in mailboxes if m.url != url])
    if found.credentials:
        (home / CREDENTIALS_DIR / found.credentials).unlink(missing_ok=True)
    return found


def credentials_path(home: Path, mailbox: Mailbox) -> Path | None:
    return home / CREDENTIALS_DIR / mailbox.credentials if mailbox.credentials else None
