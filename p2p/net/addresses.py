"""Which addresses the daemon dials to reach a paired peer: a short, checked list.

An address a peer supplies (in its signed card, or in its pairing bundle) asks
this daemon to open a TCP connection somewhere. Left unchecked, a paired peer
could make it knock on any host and port of the practice's network (a printer,
a router's admin page, its own ssh), or on multicast and broadcast addresses.
The policy (``dial_plan``, then ``resolve`` for each address in turn):

1. **Sources, in this order:** the address discovery saw for the peer on the
   LAN, the stored addresses (the one last reached first; what the user typed
   or the pairing gave), then those of the peer's current signed card.
   Duplicates are dropped, and at most ``MAX_DIAL_ADDRESSES`` (4) are tried
   per attempt, whatever a card lists.
2. ``host:port`` or ``[v6]:port``, with a port of at least ``MIN_DIAL_PORT``
   (1024): a pli daemon never needs privileges to listen.
3. An address literal must be one a colleague's daemon can have: not
   unspecified (0.0.0.0, ::), multicast, the limited broadcast
   255.255.255.255, reserved (240/4) or IPv6 link-local (which needs an
   interface pli does not keep); loopback only if this daemon itself listens
   on loopback (the demo and the tests).
4. A name is resolved by pli, and dialled only at an address that passes 3:
   a name cannot point the daemon where an address could not.

Discovery filters what it reports in the same spirit (§13 of protocol.md);
the rules apply to its address too, so a spoofed announcement gains nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Iterable

from protocol import limits

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_RESOLVE_TIMEOUT = 5.0


def split(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``[v6]:port``; None if it is neither."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
    else:
        host, _, port_text = address.rpartition(":")
        if ":" in host:  # an unbracketed IPv6 address: ambiguous
            return None
    if not host or not port_text.isdigit() or len(port_text) > 5:
        return None
    return host, int(port_text)


def ip_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, loopback: bool) -> bool:
    """Rule 3: an address a colleague's daemon can listen on."""
    if ip.is_loopback:
        return loopback
    return not (
        ip.is_unspecified
        or ip.is_multicast
        or ip.is_link_local
        or ip == _BROADCAST
        or (ip.version == 4 and ip.is_reserved)
    )


def allowed(address: str, *, loopback: bool) -> bool:
    """Rules 2 and 3 for one address; a name passes here and is checked by ``resolve``."""
    parts = split(address)
    if parts is None:
        return False
    host, port = parts
    if not limits.MIN_DIAL_PORT <= port <= 65535:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _NAME.fullmatch(host):
            return False
        return loopback or host.lower().rstrip(".") != "localhost"
    return ip_allowed(ip, loopback=loopback)


def dial_plan(
    seen: str | None, stored: Iterable[str], card: Iterable[str], *, loopback: bool
) -> list[str]:
    """Rule 1: what to try, in order, at most ``MAX_DIAL_ADDRESSES``."""
    plan: list[str] = []
    for address in [*([seen] if seen else []), *stored, *card]:
        if address not in plan and allowed(address, loopback=loopback):
            plan.append(address)
    return plan[: limits.MAX_DIAL_ADDRESSES]


async def resolve(address: str, *, loopback: bool) -> str | None:
    """Rule 4: ``address`` as an ``ip:port`` pli may dial, or None."""
    parts = split(address)
    if parts is None:
        return None
    host, port = parts
    with contextlib.suppress(ValueError):
        return address if ip_allowed(ipaddress.ip_address(host), loopback=loopback) else None
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return None
    for _family, _type, _proto, _name, sockaddr in found:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip_allowed(ip, loopback=loopback):
            return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return None
