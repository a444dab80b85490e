"""Where a practice's data lives and how its daemon is set up.

The home folder is ``--home``, else ``$PLI_HOME``, else the platform's user data
folder. It holds ``config.toml`` (optional: every key has a default), the keys,
the database and the envelopes. Several homes on one machine are several
practices (this is how the tests and the demo run two).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2p.errors import ConfigError
from p2p.storage.files import make_private_dir, write_atomic
from p2p.storage.ports import DEFAULT_API_PORT, DEFAULT_PORT, DEFAULT_WEB_PORT

if TYPE_CHECKING:
    from p2p.storage.settings import FolderSettings
    from protocol import LocalIdentity, ProfileCard

CONFIG_FILE = "config.toml"
API_SOCKET = "api.sock"


def default_home() -> Path:
    import platformdirs  # imported here: the CLI's start-up time matters

    return Path(platformdirs.user_data_dir("pli", appauthor=False))


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    if home:
        return Path(home).expanduser().resolve()
    env = os.environ.get("PLI_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return default_home()


def parse_address(text: str, *, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare host, checked."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(
            f"“{text}” is not an address: write it as host:port, e.g. 192.168.1.20:7717"
        )
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"“{text}”: the port must be a number, e.g. 192.168.1.20:7717") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"“{text}”: a port is between 1 and 65535")
    return host, port


#: What the inbox folder can write besides the document's own files.
INBOX_FORMATS = ("hprim", "xdm", "fhir")


@dataclass(frozen=True)
class Folders:
    """``[folders]``: where the practice software drops documents and picks them up."""

    outbox: Path | None = None
    inbox: Path | None = None
    inbox_formats: tuple[str, ...] = ("hprim", "xdm")
    stable_seconds: float = 5.0
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class Config:
    """The daemon's settings: ``config.toml`` (``storage/settings.py``) as checked by ``load``."""

    home: Path
    listen_host: str
    listen_port: int
    discovery: bool
    interfaces: tuple[str, ...]  # this machine's IPv4 addresses; empty: all interfaces
    retry_min: float
    retry_max: float
    invitation_lifetime: int
    handshake_deadline: float
    advertise_addresses: tuple[str, ...]
    # What one paired peer may make us store, and the disk's reserve (storage/quota.py).
    peer_quota_mib: int
    peer_documents_per_hour: int
    disk_reserve_mib: int
    partial_lifetime: int
    mailbox_retention: int = 30 * 24 * 3600  # seconds (services/mailbox/connection.py)
    web_host: str = "127.0.0.1"
    web_port: int = DEFAULT_WEB_PORT
    web_tls: bool = False  # HTTPS and a password sign-in (web/serve.py, docs/operations.md)
    web_names: tuple[str, ...] = ()
    web_certificate: str = ""
    web_private_key: str = ""
    folders: Folders = Folders()
    # Later receipts signed for senders: integrated on, read off (storage/settings.py).
    receipts_integrated: bool = True
    receipts_read: bool = False
    #: The local API's loopback TCP port for other software (tokens only); None: off.
    api_tcp: tuple[str, int] | None = None

    @property
    def api_socket(self) -> Path:
        return self.home / API_SOCKET

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


def load(home: Path, *, listen: str | None = None, **overrides: Any) -> Config:
    """Read ``config.toml`` in ``home`` (if any), apply overrides, validate."""
    from p2p.storage import settings as settings_mod  # msgspec: only when a config is loaded

    values: dict[str, Any] = {}
    path = home / CONFIG_FILE
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"The settings file {path} could not be read ({exc}). "
                "Fix it or remove it to use the defaults."
            ) from exc
    from_file = settings_mod.parse(values, path)  # the file's own mistakes, named as such
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = settings_mod.parse(values, path) if overrides else from_file
    if listen is not None:
        host, port = parse_address(listen)
    else:
        try:
            host, port = parse_address(settings.listen)
        except ConfigError as exc:
            raise ConfigError(f"The setting “listen” in {path}: {exc.message}") from None
    own = ("listen", "web_listen", "api_listen", "folders")
    fields = {key: getattr(settings, key) for key in settings_mod.KEYS if key not in own}
    fields["web_host"], fields["web_port"] = parse_web_listen(
        settings.web_listen, path, tls=settings.web_tls
    )
    fields["api_tcp"] = parse_api_listen(settings.api_listen, path)
    fields["folders"] = check_folders(settings.folders, home, path)
    if settings.interfaces:
        fields["interfaces"] = resolve_interfaces(settings.interfaces, path)
    config = Config(home=home, listen_host=host, listen_port=port, **fields)
    if config.retry_min <= 0 or config.retry_max < config.retry_min:
        raise ConfigError(
            f"The settings in {path}: retry_min must be positive and not above retry_max."
        )
    _check_quota(config, path)
    return config


LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


def parse_web_listen(text: str, path: Path, *, tls: bool = False) -> tuple[str, int]:
    """The page's address: on this computer only (127.0.0.1, ::1 or localhost), unless
    ``web_tls`` is on.

    Without TLS the page's one-time login link and session cookie protect it from
    other programs of this computer, not from the network: an address other
    machines could reach is refused in words. With ``web_tls = true`` the page is
    HTTPS and asks for a name and password (docs/operations.md, "The page on the
    practice's network").
    """
    try:
        host, port = parse_address(text, default_port=DEFAULT_WEB_PORT)
    except ConfigError as exc:
        raise ConfigError(f"The setting “web_listen” in {path}: {exc.message}") from None
    if host not in LOOPBACK_NAMES and not tls:
        raise ConfigError(
            f"The setting “web_listen” in {path} is “{text}”: without encryption the "
            "practice's page is served on this computer only (127.0.0.1, ::1 or localhost). "
            "To open it to the practice's other computers, also set web_tls = true (HTTPS "
            "and a password for each person: `pli web-user set NAME`); otherwise write "
            f'web_listen = "127.0.0.1:{DEFAULT_WEB_PORT}".'
        )
    return host, port


def check_folders(settings: FolderSettings, home: Path, path: Path) -> Folders:
    """``[folders]`` checked: known formats, two distinct folders, neither inside the other."""
    where = f"The [folders] section of {path}"
    unknown = [name for name in settings.inbox_formats if name not in INBOX_FORMATS]
    if unknown:
        raise ConfigError(
            f"{where} names the format “{unknown[0]}” in inbox_formats: pli writes "
            f'{", ".join(INBOX_FORMATS)}. Example: inbox_formats = ["hprim", "xdm"].'
        )
    if settings.stable_seconds < 0 or not 0.05 <= settings.poll_seconds <= 3600:
        raise ConfigError(
            f"{where}: stable_seconds cannot be negative and poll_seconds is between 0.05 and 3600."
        )
    outbox, inbox = (
        (home / Path(text).expanduser()).resolve() if text.strip() else None
        for text in (settings.outbox, settings.inbox)
    )
    for name, folder in (("outbox", outbox), ("inbox", inbox)):
        if folder is not None and (folder == home or home in folder.parents):
            raise ConfigError(
                f"{where}: the {name} folder {folder} is inside pli's home {home}, where only "
                "pli writes. Choose a folder the practice software shares, e.g. "
                f'{name} = "/srv/pli/{name}".'
            )
    if (
        outbox is not None
        and inbox is not None
        and (outbox == inbox or outbox in inbox.parents or inbox in outbox.parents)
    ):
        raise ConfigError(
            f"{where}: the outbox folder ({outbox}) and the inbox folder ({inbox}) must be two "
            "separate folders, neither inside the other: a received letter would be sent again."
        )
    return Folders(
        outbox=outbox,
        inbox=inbox,
        inbox_formats=tuple(dict.fromkeys(settings.inbox_formats)),
        stable_seconds=float(settings.stable_seconds),
        poll_seconds=float(settings.poll_seconds),
    )


def parse_api_listen(text: str, path: Path) -> tuple[str, int] | None:
    """The local API's TCP address for other software: loopback only, or None (off).

    A token travels in clear over this port, so it must never leave the computer;
    software on another machine talks to its own pli, or reads the watched folders.
    """
    if not text.strip():
        return None
    try:
        host, port = parse_address(text, default_port=DEFAULT_API_PORT)
    except ConfigError as exc:
        raise ConfigError(f"The setting “api_listen” in {path}: {exc.message}") from None
    if host not in LOOPBACK_NAMES:
        raise ConfigError(
            f"The setting “api_listen” in {path} is “{text}”: the local API is served on "
            "this computer only (127.0.0.1, ::1 or localhost), because its tokens travel "
            f'unencrypted. Write e.g. api_listen = "127.0.0.1:{DEFAULT_API_PORT}", or leave '
            "it out to keep the port closed."
        )
    return host, port


def _check_quota(config: Config, path: Path) -> None:
    lowest = min(
        config.peer_quota_mib,
        config.peer_documents_per_hour,
        config.partial_lifetime,
        config.mailbox_retention,
    )
    if lowest < 1:
        raise ConfigError(
            f"The settings in {path}: peer_quota_mib, peer_documents_per_hour, "
            "partial_lifetime and mailbox_retention must be at least 1."
        )
    if config.disk_reserve_mib < 0:
        raise ConfigError(
            f"The settings in {path}: disk_reserve_mib cannot be negative (0 keeps no reserve)."
        )


def resolve_interfaces(entries: tuple[str, ...], path: Path) -> tuple[str, ...]:
    """The ``interfaces`` setting as this machine's IPv4 addresses, or ``ConfigError``.

    Each entry is an address of this machine (``192.168.1.20``) or the name of one
    of its network interfaces (``eth0``), which stands for that interface's IPv4
    addresses. Anything else would only fail later, inside discovery.
    """
    import ipaddress

    import ifaddr  # imported here: the CLI's start-up time matters

    adapters = {adapter.name: adapter for adapter in ifaddr.get_adapters()}
    ours = {str(ip.ip) for adapter in adapters.values() for ip in adapter.ips if ip.is_IPv4}
    resolved: list[str] = []
    for entry in entries:
        try:
            address = str(ipaddress.ip_address(entry.strip()))
        except ValueError:
            address = ""
        if address in ours:
            resolved.append(address)
        elif entry in adapters:
            found = [str(ip.ip) for ip in adapters[entry].ips if ip.is_IPv4]
            if not found:
                raise ConfigError(
                    f"The network interface “{entry}” (setting “interfaces” in {path}) has no "
                    "IPv4 address, so pli cannot look for colleagues on it. Choose another one."
                )
            resolved.extend(found)
        else:
            known = ", ".join(
                f"{name} ({', '.join(str(ip.ip) for ip in a.ips if ip.is_IPv4) or 'no IPv4'})"
                for name, a in sorted(adapters.items())
            )
            what = "an address" if address else "a network interface"
            if ":" in address:
                what = "an IPv4 address (pli looks for colleagues over IPv4)"
            raise ConfigError(
                f"The setting “interfaces” in {path} names “{entry}”, which is not {what} of "
                f"this computer. Write an interface name or one of its addresses; this "
                f"computer has: {known}."
            )
    return tuple(dict.fromkeys(resolved))


# --- the practice's own profile (public: it goes into the signed card) -----------

PROFILE_FILE = "profile.json"


def load_profile(home: Path) -> dict[str, Any]:
    """The profile written by ``pli init`` (name, profession, rpps, practice, seq)."""
    import json

    path = home / PROFILE_FILE
    if not path.exists():
        return {"name": "", "seq": 0}
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"The profile {path} could not be read ({exc}).") from exc
    if not isinstance(profile, dict):
        raise ConfigError(f"The profile {path} is damaged.")
    return profile


def display_name(profile: Mapping[str, Any]) -> str:
    """The name this practice shows: the profile's, else this computer's."""
    import socket

    return str(profile.get("name") or socket.gethostname())


def own_card(
    me: LocalIdentity, profile: Mapping[str, Any], addresses: Iterable[str]
) -> ProfileCard:
    """This practice's profile card (unsigned): the one place a profile becomes a card."""
    return me.card(
        int(profile.get("seq", 0)),
        name=display_name(profile),
        profession=str(profile.get("profession", "")),
        rpps=str(profile.get("rpps", "")),
        practice=str(profile.get("practice", "")),
        addresses=tuple(addresses),
        mailboxes=_mailboxes(profile.get("mailboxes")),
    )


def _mailboxes(listed: object) -> tuple[str, ...] | None:
    """The mailboxes the card lists (``Daemon.card_mailboxes`` keeps them in the
    profile); ``None``, the card says nothing, until the daemon first wrote them."""
    from protocol import limits  # here: `pli status` reads this module, not the protocol

    if not isinstance(listed, list) or not all(isinstance(url, str) for url in listed):
        return None
    return tuple(listed[: limits.MAX_CARD_MAILBOXES])


def save_profile(home: Path, **fields: Any) -> dict[str, Any]:
    """Update the profile; the sequence number grows so peers take the new card."""
    import json

    profile = load_profile(home)
    profile.update({key: value for key, value in fields.items() if value is not None})
    profile["seq"] = int(profile.get("seq", 0)) + 1
    make_private_dir(home)
    data = json.dumps(profile, ensure_ascii=False, indent=1).encode("utf-8")
    write_atomic(home / PROFILE_FILE, [data])
    return profile
