"""``config.toml`` as a typed struct: every key, its type and its default, in one place.

``Settings`` is the contract of the file a person writes (docs/operations.md lists the
keys): msgspec checks each value's type and refuses an unknown key
(``forbid_unknown_fields``), and ``explain`` turns its verdict into the sentence pli
shows. ``storage/config.py`` reads the file, applies the command line's overrides,
then checks what types cannot say (an address, an interface of this machine, a
retry window) and builds the daemon's ``Config``.

Imported only when a configuration is loaded: msgspec costs the CLI's start-up
~30 ms that ``pli --help`` and ``pli status`` need not pay.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from p2p.errors import ConfigError
from p2p.storage.ports import DEFAULT_PORT, DEFAULT_WEB_PORT


class FolderSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``[folders]``: the watched folders shared with the practice software (off when empty)."""

    outbox: str = ""  # documents dropped here are sent
    inbox: str = ""  # documents received are written here
    inbox_formats: tuple[str, ...] = ("hprim", "xdm")  # also "fhir"
    stable_seconds: float = 5.0  # a file unchanged this long is complete (0: at once)
    poll_seconds: float = 2.0  # how often the folders are looked at


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The keys of config.toml. Durations are seconds; every key may be left out."""

    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    discovery: bool = True
    interfaces: tuple[str, ...] = ()  # empty: all interfaces
    retry_min: float = 1.0
    retry_max: float = 300.0
    invitation_lifetime: int = 600
    handshake_deadline: float = 10.0
    advertise_addresses: tuple[str, ...] = ()
    web_listen: str = f"127.0.0.1:{DEFAULT_WEB_PORT}"  # the practice's page; loopback unless TLS
    web_tls: bool = False  # HTTPS and a password sign-in: needed for a non-loopback web_listen
    web_names: tuple[str, ...] = ()  # more names or addresses the page is reached at
    web_certificate: str = ""  # the practice's own PEM certificate (else pli makes one)
    web_private_key: str = ""  # and its key
    api_listen: str = ""  # the local API on a loopback TCP port, for tokens; "" = off
    # What one paired peer may make us store, and the disk's reserve (storage/quota.py).
    peer_quota_mib: int = 20 * 1024
    peer_documents_per_hour: int = 1000
    disk_reserve_mib: int = 1024
    partial_lifetime: int = 24 * 3600
    # How long our mailbox keeps a letter nobody read; ours older than this are left again.
    mailbox_retention: int = 30 * 24 * 3600
    folders: FolderSettings = FolderSettings()
    # Which later receipts this practice signs for its senders (privacy: docs/threat-model.md).
    receipts_integrated: bool = True  # the practice software took the document in (or not)
    receipts_read: bool = False  # someone opened or exported it: off unless the practice says so


KEYS = Settings.__struct_fields__
FOLDER_KEYS = FolderSettings.__struct_fields__
_UNKNOWN = re.compile(
    r"Object contains unknown field `(?P<key>[^`]*)`(?: - at `\$\.(?P<table>\w+)`)?"
)
_WHERE = re.compile(r"at `\$\.(?P<key>[^`\[]+)")


def parse(values: dict[str, Any], path: Path) -> Settings:
    """``values`` (the file's, then the overrides) as ``Settings``, or ``ConfigError``."""
    try:
        return msgspec.convert(values, Settings)
    except msgspec.ValidationError as exc:
        raise explain(exc, path) from None


def explain(exc: msgspec.ValidationError, path: Path) -> ConfigError:
    """msgspec's verdict as pli's sentence: which key, in which file, and what is known."""
    text = str(exc)
    unknown = _UNKNOWN.fullmatch(text)
    if unknown is not None:
        table = unknown["table"]
        key = f"{table}.{unknown['key']}" if table else unknown["key"]
        known = FOLDER_KEYS if table == "folders" else KEYS
        return ConfigError(
            f"Unknown setting “{key}” in {path}. Known settings"
            f"{' of [folders]' if table == 'folders' else ''}: {', '.join(sorted(known))}."
        )
    where = _WHERE.search(text)
    key = where["key"] if where is not None else "?"
    if key == "folders":
        return ConfigError(
            f"The setting “folders” in {path} is a table: write it as a [folders] section."
        )
    return ConfigError(f"The setting “{key}” in {path} has the wrong type.")
