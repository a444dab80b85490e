"""Pairing as the daemon runs it: the steps that reach beyond the pairing service.

An invitation's address comes from discovery (or the person), the connection from
the transport, and the cryptography from ``services/pairing``; these functions wire
the three for the local API, which calls one of them per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2p.errors import BadInput, PeerUnreachable
from p2p.services.pairing.fingerprint import select_request
from p2p.services.pairing.service import PairingStatus
from p2p.storage.config import parse_address
from protocol import BadCode, parse_code

if TYPE_CHECKING:
    from p2p.daemon.core import Daemon

FIND_TIMEOUT = 5.0  # seconds to look for an invitation on the local network
LIFETIMES = (10, 24 * 3600)  # seconds an invitation may last


def invite(daemon: Daemon, lifetime: float | None, yes: bool) -> dict[str, Any]:
    """A new one-time code (for ``lifetime`` seconds, default from config.toml)."""
    if lifetime is None:
        lifetime = daemon.config.invitation_lifetime
    if not LIFETIMES[0] <= lifetime <= LIFETIMES[1]:
        raise BadInput("An invitation lasts between 10 seconds and 24 hours.")
    invitation = daemon.pairing.invite(lifetime=float(lifetime), auto_confirm=yes)
    addresses = daemon.card().addresses
    return {
        "id": invitation.id,
        "code": str(invitation.code),
        "nameplate": invitation.nameplate,
        "expires_at": invitation.expires_at,
        "address": f"{addresses[0]}" if addresses else None,
    }


async def accept_invitation(daemon: Daemon, code: str, address: str, yes: bool) -> dict[str, str]:
    """Join the invitation of ``code``, at ``address`` or found on the local network."""
    try:
        parsed = parse_code(code)
    except BadCode as exc:
        raise BadInput(str(exc)) from None
    where = await _invitation_address(daemon, parsed.nameplate, address)
    pipe = await daemon.transport.dial_pairing(where)
    attempt = daemon.pairing.start_accept(parsed, pipe, auto_confirm=yes)
    return {"id": attempt, "address": where}


async def _invitation_address(daemon: Daemon, nameplate: str, given: str) -> str:
    if given:
        host, port = parse_address(given)
        return f"{host}:{port}"
    found = await daemon.find_invitation(nameplate, timeout=FIND_TIMEOUT)
    if found is None:
        raise PeerUnreachable(
            "No invitation with this code was found on the local network. Check that the "
            "other practice's invitation is still open, or give its address with --address."
        )
    return found


async def request_pairing(daemon: Daemon, fingerprint: str, address: str) -> str:
    """Pair by fingerprint: dial, check the responder's identity, ask it to accept."""
    host, port = parse_address(address)
    pipe = await daemon.transport.dial_pairing(f"{host}:{port}")
    return daemon.pairing.start_request(fingerprint, pipe)


def answer_request(daemon: Daemon, wanted: str, yes: bool) -> PairingStatus:
    """Accept or refuse the pending request ``wanted`` designates (its id, or at least
    4 groups of its fingerprint)."""
    requests = [
        (item.id, item.fingerprint)
        for item in daemon.pairing.pending()
        if item.kind == "fingerprint" and item.role == "responder"
    ]
    return daemon.pairing.confirm(select_request(requests, wanted), yes)
