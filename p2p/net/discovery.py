"""Finding paired practices and open invitations on the LAN (mDNS / DNS-SD).

Each daemon advertises one ``_pli._tcp.local.`` service with zeroconf's asyncio
API and browses for the others. The advertisement is built not to say who runs
it:

- the instance name and the host name are random, drawn again at each start
  (``secrets.token_hex``): nothing ties two boots of one practice together;
- the TXT record holds only ``v=1``, ``h=<hint>`` and, while an invitation is
  open, ``pair=<nameplate>``. The hint is ``protocol.discovery_hint`` of our
  discovery secret for the current hour: a peer that received the secret at
  pairing recognises it, anybody else sees 16 random-looking hex characters
  that change every hour. No name, RPPS number or fingerprint is published.

What the browser learns becomes events for the daemon:

- ``PeerSeen(peer_id, "ip:port")`` when an announcement's hint matches the
  secret of a paired peer (``protocol.hint_matches``: the previous, current or
  next hour, for clock skew), again when its address changes;
- ``InvitationSeen(nameplate, "ip:port")`` for an announcement with ``pair=``;
- ``PeerGone(peer_id)`` when the last live announcement that matched that peer
  is withdrawn (goodbye packet or expiry) or stops matching.

**Everything received is untrusted.** Anybody on the LAN can announce anything,
including a copy of a paired peer's current hint pointing at another machine.
A discovered address is therefore only a place to dial: the Noise handshake
proves who answers, and a spoofed announcement ends in a failed handshake with
nothing sent (``tests/p2p/test_discovery.py`` shows it). Malformed or oversized
TXT records, ports and addresses are dropped; a loopback address is used only
when discovery itself runs on loopback (so a LAN announcement cannot make the
daemon dial a local service); the browser callbacks never raise.

Interfaces: ``interfaces`` is a list of local IP addresses (zeroconf's
``interfaces`` parameter), ``None`` or empty for all of them (IPv4). Tests,
the demo and the benchmark pass ``["127.0.0.1"]`` or an address inside a
network namespace they created: no multicast leaves on the machine's real
interfaces.

Timing: registration probes for the name as RFC 6762 requires (a random
150-250 ms, then three probes 500 ms apart): about 1.2 s from ``start()`` to
the first announcement, which is when the other daemons see us. The browser
starts before the probes, so we see the others as soon as they answer.

Size: over 400 lines on purpose: this is the only mDNS edge (zeroconf's I/O and its
untrusted input stay in this one file), and its first 40 lines are this description.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import ifaddr
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
    RecordUpdate,
    RecordUpdateListener,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p2p.errors import ConfigError
from p2p.events import InvitationSeen, PeerGone, PeerSeen
from protocol import ProtocolError, discovery_hint, hint_matches

log = logging.getLogger("pli.discovery")

SERVICE_TYPE: Final = "_pli._tcp.local."
VERSION: Final = "1"
HINT_PERIOD: Final = 3600  # seconds: the hint changes every hour (protocol.pairing)
HINT_CHECK_INTERVAL: Final = 60.0  # how often the hour is checked, in seconds
RESOLVE_TIMEOUT_MS: Final = 3000  # asking for SRV/TXT/A a browse event did not carry
NAMEPLATE_DIGITS: Final = 3  # protocol.pairing: the public part of a code
MAX_TXT_BYTES: Final = 255  # ours is ~40 bytes; anything much larger is not a pli announcement
MAX_TRACKED: Final = 512  # remote instances remembered at once (a flood evicts the oldest)
_HINT_CHARS: Final = 16
_TYPE_TXT: Final = 16  # DNS record type
_OTHER_TTL: Final = 4500  # zeroconf's default TTL for the SRV, TXT and PTR records (s)
_SUFFIX: Final = f".{SERVICE_TYPE}"
_REGISTER_ATTEMPTS: Final = 3

Event: TypeAlias = PeerSeen | PeerGone | InvitationSeen
AddressFamily: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Remote:
    """What the last resolution of one remote instance said (untrusted)."""

    address: str | None
    text: bytes  # the TXT record as received
    hint: str | None
    nameplate: str | None
    peer_id: str | None  # the paired peer whose secret made ``hint``, if any
    stamp: int  # order of arrival, newest wins for invitations


class Discovery:
    """Advertise this daemon and report paired peers and invitations seen on the LAN."""

    def __init__(
        self,
        *,
        port: int,
        interfaces: Sequence[str] | None,
        own_secret: bytes,
        peer_secrets: Callable[[], Mapping[str, bytes]],
        on_event: Callable[[Event], None],
        addresses: Sequence[str] | None = None,
        now: Callable[[], float] = time.time,
        announce: bool = True,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError("the peer port to advertise is between 1 and 65535")
        discovery_hint(own_secret, 0)  # raises now on a malformed secret, not at start
        self._port = port
        self._interfaces = [str(ipaddress.ip_address(ip)) for ip in interfaces or ()]
        self._own_secret = own_secret
        self._peer_secrets = peer_secrets
        self._on_event = on_event
        self._wanted_addresses = [str(ipaddress.ip_address(ip)) for ip in addresses or ()]
        self._addresses: list[str] = []  # what we advertise, settled at start
        self._now = now
        self._announce = announce  # False: browse only (``pli revoke`` looking for daemons)
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._nameplate: str | None = None  # the open invitation
        self._published: str | None = None  # the nameplate in our current announcement
        self._hour: int | None = None  # the hour our published hint was made for
        self._generation = 0  # announcements built so far
        self._networks: list[Network] = []
        self._allow_loopback = False
        self._remotes: dict[str, _Remote] = {}
        self._txt: dict[str, bytes] = {}  # latest TXT received per instance (see _TxtListener)
        self._txt_listener = _TxtListener(self._on_txt)
        self._stamp = 0
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._broadcast: asyncio.Future[object] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._update_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------

    @property
    def instance_name(self) -> str | None:
        """Our service instance name while started (random, e.g. ``3f9c…e1._pli._tcp.local.``)."""
        return self._info.name if self._info is not None else None

    @property
    def running(self) -> bool:
        """True from ``start()`` (probing included) until ``stop()``."""
        return self._azc is not None

    async def start(self) -> None:
        """Open the sockets, browse, then register (probing takes ~1.2 s).

        Raises ``ConfigError`` when an interface address is not one of this machine's.
        """
        if self._azc is not None:
            return
        self._networks, self._allow_loopback = _local_networks(self._interfaces)
        self._addresses = self._wanted_addresses or _default_addresses(self._interfaces)
        if not self._addresses:
            log.warning("no address to advertise: peers will not find this daemon by mDNS")
        try:
            if self._interfaces:
                self._azc = AsyncZeroconf(interfaces=list(self._interfaces))
            else:
                self._azc = AsyncZeroconf(
                    interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only
                )
        except OSError as exc:
            where = ", ".join(self._interfaces) or "this machine's interfaces"
            raise ConfigError(
                f"Discovery on the local network could not start on {where} ({exc.strerror}). "
                "Check the “interfaces” setting: each entry must be an IP address of this "
                "machine. Peers can still be reached at a known address."
            ) from exc
        try:
            self._azc.zeroconf.async_add_listener(self._txt_listener, None)
            self._browser = AsyncServiceBrowser(
                self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_state_change]
            )
            if self._announce:
                await self._register()
        except BaseException:
            await self.stop()
            raise
        self._loop_task = asyncio.create_task(self._hint_loop(), name="pli-discovery-hint")
        if self._announce:
            log.info(
                "advertising on %s as %s",
                ", ".join(self._interfaces) or "all interfaces",
                self.instance_name,
            )

    async def stop(self) -> None:
        """Withdraw our announcement (goodbye packets) and close the sockets."""
        azc, self._azc = self._azc, None
        if azc is None:
            return
        tasks: list[asyncio.Future[object] | asyncio.Task[None]] = list(self._resolving.values())
        if self._loop_task is not None:
            tasks.append(self._loop_task)
        if self._broadcast is not None:
            tasks.append(self._broadcast)
        for task in tasks:
            task.cancel()
        if tasks:  # each one handles its own errors; a cancelled caller still stops here
            await asyncio.wait(tasks)
        self._resolving.clear()
        self._loop_task = self._broadcast = None
        try:
            azc.zeroconf.async_remove_listener(self._txt_listener)
            if self._browser is not None:
                await self._browser.async_cancel()
            if self._info is not None:
                await _settle(await azc.async_unregister_service(self._info))
        except Exception as exc:  # the sockets may already be gone (interface removed)
            log.debug("withdrawing the announcement failed: %r", exc)
        finally:
            self._browser = None
            self._info = None
            self._hour = None
            self._remotes.clear()
            self._txt.clear()
            await azc.async_close()
            log.info("stopped advertising")

    async def _register(self) -> None:
        assert self._azc is not None
        for attempt in range(_REGISTER_ATTEMPTS):
            info = self._service_info(secrets.token_hex(8))
            try:
                broadcast = await self._azc.async_register_service(info, allow_name_change=False)
            except NonUniqueNameException:  # 64 random bits: only a hostile responder does this
                log.warning("another responder claimed our random name (attempt %d)", attempt + 1)
                continue
            self._info = info
            self._track_broadcast(broadcast)
            if self._published != self._nameplate:  # set_invitation() during the probes
                await self._republish()
            return
        raise RuntimeError("could not register a unique mDNS name")

    # --- what we publish ---------------------------------------------------------

    def _service_info(self, token: str) -> AsyncServiceInfo:
        hour = int(self._now()) // HINT_PERIOD
        properties = {"v": VERSION, "h": discovery_hint(self._own_secret, hour)}
        if self._nameplate is not None:
            properties["pair"] = self._nameplate
        self._published = self._nameplate
        self._hour = hour
        self._generation += 1
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{token}.{SERVICE_TYPE}",
            port=self._port,
            properties=properties,
            server=f"pli-{token}.local.",
            parsed_addresses=list(self._addresses),
            # Receivers drop a packet identical to one seen in the last 0.8 s, so
            # withdrawing ``pair=`` right after opening it would repeat the first
            # announcement byte for byte and be lost: vary the TTL by a few seconds.
            other_ttl=_OTHER_TTL - self._generation % 8,
        )

    async def _republish(self) -> None:
        """Announce our record again with the current hint and invitation."""
        async with self._update_lock:
            if self._azc is None or self._info is None:
                return
            token = self._info.name.removesuffix(f".{SERVICE_TYPE}")
            info = self._service_info(token)
            if self._broadcast is not None:
                # A pending broadcast would repeat the old TXT after the new one.
                self._broadcast.cancel()
            self._info = info
            self._track_broadcast(await self._azc.async_update_service(info))

    def _track_broadcast(self, broadcast: Awaitable[object]) -> None:
        future = asyncio.ensure_future(broadcast)
        future.add_done_callback(_consume)
        self._broadcast = future

    async def set_invitation(self, nameplate: str | None) -> None:
        """Advertise ``pair=<nameplate>`` while an invitation is open; ``None`` withdraws it.

        Safe at any time: before ``start()`` (announced from the first packet),
        during the probes (announced as soon as they end), or while running.
        """
        if nameplate is not None and not _is_nameplate(nameplate):
            raise ValueError(f"a nameplate is {NAMEPLATE_DIGITS} digits")
        if nameplate == self._nameplate:
            return
        self._nameplate = nameplate
        await self._republish()

    async def refresh_hint(self) -> None:
        """Re-announce if the hour changed since our hint was made; re-match what we know."""
        if self._hour is not None and int(self._now()) // HINT_PERIOD != self._hour:
            await self._republish()
        self.recheck()

    async def _hint_loop(self) -> None:
        while True:
            await asyncio.sleep(HINT_CHECK_INTERVAL)
            try:
                await self.refresh_hint()
            except Exception:  # keep advertising; the next minute tries again
                log.exception("refreshing the discovery hint failed")

    # --- what others publish -----------------------------------------------------

    def _on_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """zeroconf's browser callback: untrusted input, must never raise."""
        try:
            key = name.lower()
            if self._azc is None or service_type != SERVICE_TYPE or self._is_own(key):
                return
            pending = self._resolving.pop(key, None)
            if pending is not None:
                pending.cancel()
            if state_change is ServiceStateChange.Removed:
                self._forget(key)
                return
            task = asyncio.create_task(self._resolve(zeroconf, name, key))
            self._resolving[key] = task
            task.add_done_callback(lambda done: self._resolved(key, done))
        except Exception as exc:
            log.debug("ignored a browse event for %r: %r", name, exc)

    def _is_own(self, key: str) -> bool:
        return self._info is not None and self._info.key == key

    def _resolved(self, key: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(key) is task:
            del self._resolving[key]

    async def _resolve(self, zeroconf: Zeroconf, name: str, key: str) -> None:
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
                log.debug("%r did not answer with its address and TXT", name)
                return
            text = self._txt.get(key, info.text or b"")
            self._apply(key, self._parse(text, self._pick_address(info)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("ignored the announcement %r: %r", name, exc)

    def _parse(self, text: bytes, address: str | None) -> _Remote:
        """Keep only well-formed fields of an announcement; the rest is ``None``."""
        hint = nameplate = None
        properties = _txt_properties(text)
        if properties.get(b"v") != VERSION.encode():
            address = None  # another version of the protocol, or not pli at all
        raw_hint = properties.get(b"h")
        if raw_hint is not None and len(raw_hint) == _HINT_CHARS and raw_hint.isascii():
            hint = raw_hint.decode("ascii")
        raw_pair = properties.get(b"pair")
        if raw_pair is not None and raw_pair.isascii() and _is_nameplate(raw_pair.decode()):
            nameplate = raw_pair.decode()
        self._stamp += 1
        return _Remote(address, text, hint, nameplate, self._match(hint), self._stamp)

    def _on_txt(self, key: str, text: bytes) -> None:
        """A TXT record arrived (zeroconf's browser misses a return to an earlier TXT)."""
        if self._azc is None or self._is_own(key):
            return
        self._txt.pop(key, None)
        if len(self._txt) >= MAX_TRACKED:
            del self._txt[next(iter(self._txt))]
        self._txt[key] = text
        remote = self._remotes.get(key)
        if remote is not None and remote.text != text:
            self._apply(key, self._parse(text, remote.address))

    def _pick_address(self, info: AsyncServiceInfo) -> str | None:
        port = info.port
        if port is None or not 0 < port < 65536:
            return None
        candidates: list[AddressFamily] = []
        for raw in info.parsed_scoped_addresses(IPVersion.All)[:16]:
            try:
                ip = ipaddress.ip_address(raw)
            except ValueError:  # a scoped IPv6 link-local (fe80::1%eth0): not dialable here
                continue
            if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
                continue
            if ip.is_loopback and not self._allow_loopback:
                continue
            candidates.append(ip)
        if not candidates:
            return None
        # Prefer an address on one of our own networks, then IPv4.
        candidates.sort(key=lambda ip: (not any(ip in net for net in self._networks), ip.version))
        best = candidates[0]
        return f"[{best}]:{port}" if best.version == 6 else f"{best}:{port}"

    def _match(self, hint: str | None) -> str | None:
        if hint is None:
            return None
        now = int(self._now())
        for peer_id, secret in self._peer_secrets().items():
            try:
                if hint_matches(secret, hint, now):
                    return peer_id
            except ProtocolError:  # a malformed stored secret: that peer is skipped
                log.debug("the discovery secret stored for %s is malformed", peer_id[:8])
        return None

    def _apply(self, key: str, new: _Remote) -> None:
        old = self._remotes.get(key)
        if new.address is None:
            self._forget(key)
            return
        if old is None and len(self._remotes) >= MAX_TRACKED:
            self._forget(next(iter(self._remotes)))
        self._remotes[key] = new
        if old is not None and old.peer_id is not None and old.peer_id != new.peer_id:
            self._peer_maybe_gone(old.peer_id)
        if new.peer_id is not None and (
            old is None or (old.peer_id, old.address) != (new.peer_id, new.address)
        ):
            self._emit(PeerSeen(new.peer_id, new.address))
        if new.nameplate is not None and (
            old is None or (old.nameplate, old.address) != (new.nameplate, new.address)
        ):
            self._emit(InvitationSeen(new.nameplate, new.address))
        self._wake()

    def _forget(self, key: str) -> None:
        self._txt.pop(key, None)
        old = self._remotes.pop(key, None)
        if old is not None and old.peer_id is not None:
            self._peer_maybe_gone(old.peer_id)
        self._wake()

    def _peer_maybe_gone(self, peer_id: str) -> None:
        if not any(remote.peer_id == peer_id for remote in self._remotes.values()):
            self._emit(PeerGone(peer_id))

    def recheck(self) -> None:
        """Match the announcements already seen against the current peer secrets.

        Call after pairing or unpairing: a newly paired peer that is already
        announcing is reported at once, an unpaired one is reported gone.
        """
        for key, remote in list(self._remotes.items()):
            peer_id = self._match(remote.hint)
            if peer_id != remote.peer_id:
                self._apply(
                    key,
                    _Remote(
                        remote.address,
                        remote.text,
                        remote.hint,
                        remote.nameplate,
                        peer_id,
                        remote.stamp,
                    ),
                )

    def _emit(self, event: Event) -> None:
        log.debug("discovered %s", event)
        try:
            self._on_event(event)
        except Exception:  # the daemon's bug; the browser must go on
            log.exception("the discovery event handler failed on %s", type(event).__name__)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def addresses(self) -> list[str]:
        """``host:port`` of every pli daemon announcing itself now (untrusted, for pushes)."""
        return list(dict.fromkeys(r.address for r in self._remotes.values() if r.address))

    # --- invitations -------------------------------------------------------------

    def invitation_address(self, nameplate: str) -> str | None:
        """``host:port`` of a live announcement with ``pair=nameplate`` (newest first)."""
        found = [r for r in self._remotes.values() if r.nameplate == nameplate and r.address]
        if not found:
            return None
        return max(found, key=lambda remote: remote.stamp).address

    async def find_invitation(self, nameplate: str, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for an invitation with this nameplate."""
        try:
            async with asyncio.timeout(timeout):
                while (address := self.invitation_address(nameplate)) is None:
                    await self._changed.wait()
                return address
        except TimeoutError:
            return None


# --- helpers -------------------------------------------------------------------------


def _is_nameplate(text: str) -> bool:
    return len(text) == NAMEPLATE_DIGITS and text.isascii() and text.isdigit()


def _txt_properties(text: bytes) -> dict[bytes, bytes | None]:
    """Parse a TXT record (RFC 6763 §6) of at most ``MAX_TXT_BYTES``; first key wins."""
    properties: dict[bytes, bytes | None] = {}
    if len(text) > MAX_TXT_BYTES:
        return properties
    offset = 0
    while offset < len(text):
        length = text[offset]
        item = text[offset + 1 : offset + 1 + length]
        offset += 1 + length
        key, equals, value = item.partition(b"=")
        if key and key.lower() not in properties:
            properties[key.lower()] = value if equals else None
    return properties


class _TxtListener(RecordUpdateListener):
    """Every TXT record received for a ``_pli._tcp`` instance, new or not.

    zeroconf's browser reports "Updated" only for a TXT it does not hold in its
    cache: going back to an earlier TXT (withdrawing ``pair=``) within its
    cache-flush window goes unreported, and the cache may then hold both.
    The latest TXT received is the truth; this listener forwards it.
    """

    def __init__(self, on_txt: Callable[[str, bytes], None]) -> None:
        super().__init__()
        self._on_txt = on_txt

    def async_update_records(self, zc: Zeroconf, now: float, records: list[RecordUpdate]) -> None:
        for update in records:
            record = update.new
            try:
                text = getattr(record, "text", None)  # DNSText is not exported by zeroconf
                if (
                    record.type == _TYPE_TXT
                    and isinstance(text, bytes)
                    and record.key.endswith(_SUFFIX)
                    and not record.is_expired(now)
                ):
                    self._on_txt(record.key, text)
            except Exception as exc:  # untrusted input: never break zeroconf's loop
                log.debug("ignored a TXT record: %r", exc)


def _consume(future: asyncio.Future[object]) -> None:
    """Retrieve a background broadcast's outcome so asyncio does not log it as lost."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("an mDNS broadcast failed: %r", future.exception())


async def _settle(awaitable: Awaitable[object]) -> None:
    with contextlib.suppress(Exception):
        await awaitable


def _adapter_ips() -> list[tuple[AddressFamily, int]]:
    found: list[tuple[AddressFamily, int]] = []
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            raw = entry.ip if isinstance(entry.ip, str) else entry.ip[0]
            with contextlib.suppress(ValueError):
                found.append((ipaddress.ip_address(raw), entry.network_prefix))
    return found


def _local_networks(interfaces: Sequence[str]) -> tuple[list[Network], bool]:
    """Our networks (to prefer a peer address on them) and whether loopback is in play."""
    chosen = {ipaddress.ip_address(ip) for ip in interfaces}
    networks: list[Network] = []
    for ip, prefix in _adapter_ips():
        if (ip in chosen) if chosen else (ip.version == 4 and not ip.is_loopback):
            networks.append(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    return networks, any(ip.is_loopback for ip in chosen)


def _default_addresses(interfaces: Sequence[str]) -> list[str]:
    """The addresses of the chosen interfaces; all non-loopback IPv4 ones for "all"."""
    if interfaces:
        return list(interfaces)
    return sorted({str(ip) for ip, _ in _adapter_ips() if ip.version == 4 and not ip.is_loopback})
