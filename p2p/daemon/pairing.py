"""Pairing as the daemon runs it: the steps that reach beyond the pairing service.

An invitation's address comes from discovery (or the person), the connection from
the transport, and the cryptography from ``services/pairing``; these functions wire
the three for the local API, which calls one of them per request. Without an
address, an invitation is looked for on the local network and in the mailboxes at
once, and a fingerprint request goes through the mailboxes
(``services/mailbox/rendezvous.py``): the exchange is the same whichever carries it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from p2p.errors import BadInput, PeerUnreachable
from p2p.services.mailbox.rendezvous import MailboxPipe, code_rendezvous, fingerprint_rendezvous
from p2p.services.pairing.fingerprint import select_request
from p2p.services.pairing.service import PairingStatus, Pipe
from p2p.storage.config import parse_address
from protocol import BadCode, FingerprintError, normalize_fingerprint, parse_code

if TYPE_CHECKING:
    from p2p.daemon.core import Daemon

FIND_TIMEOUT = 5.0  # seconds to look for an invitation on the local network
MAILBOX_TIMEOUT = 10.0  # seconds to wait for an answer through the mailboxes
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
    """Join the invitation of ``code``: at ``address``, or found on the local network
    or in a mailbox."""
    try:
        parsed = parse_code(code)
    except BadCode as exc:
        raise BadInput(str(exc)) from None
    if address:
        host, port = parse_address(address)
        where = f"{host}:{port}"
        pipe: Pipe = await daemon.transport.dial_pairing(where)
    else:
        pipe, where = await _find_invitation(daemon, parsed.nameplate)
    attempt = daemon.pairing.start_accept(parsed, pipe, auto_confirm=yes)
    return {"id": attempt, "address": where}


async def _find_invitation(daemon: Daemon, nameplate: str) -> tuple[Pipe, str]:
    """The first to answer: the invitation on the local network, or in a mailbox."""
    lan = asyncio.ensure_future(daemon.find_invitation(nameplate, timeout=FIND_TIMEOUT))
    box = asyncio.ensure_future(daemon.rendezvous.knock(code_rendezvous(nameplate), FIND_TIMEOUT))
    chosen: object = None
    try:
        for next_found in asyncio.as_completed((lan, box)):
            chosen = await next_found
            if isinstance(chosen, str):
                return await daemon.transport.dial_pairing(chosen), chosen
            if isinstance(chosen, MailboxPipe):
                return chosen, _through(chosen)
    finally:
        await _stop_looking(lan, box, chosen)
    where = (
        "on the local network or in the mailboxes"
        if daemon.mailboxes.connected()
        else ("on the local network")
    )
    raise PeerUnreachable(
        f"No invitation with this code was found {where}. Check that the other practice's "
        "invitation is still open, or give its address with --address."
    )


async def _stop_looking(lan: asyncio.Future[Any], box: asyncio.Future[Any], chosen: object) -> None:
    """Cancel the search still running; a mailbox session not chosen is closed (the
    listener is told at once)."""
    for task in (lan, box):
        task.cancel()
    await asyncio.wait((lan, box))
    if not lan.cancelled():
        lan.exception()  # retrieved: whatever the network search met no longer matters
    if box.cancelled() or box.exception() is not None:
        return
    late = box.result()
    if isinstance(late, MailboxPipe) and late is not chosen:
        await late.close()


def _through(pipe: MailboxPipe) -> str:
    return f"mailbox {pipe.connection.url}"


async def request_pairing(daemon: Daemon, fingerprint: str, address: str | None) -> str:
    """Pair by fingerprint: reach the responder (at ``address``, or through a mailbox),
    check its identity, ask it to accept."""
    if address:
        host, port = parse_address(address)
        pipe: Pipe = await daemon.transport.dial_pairing(f"{host}:{port}")
        return daemon.pairing.start_request(fingerprint, pipe)
    try:
        normalize_fingerprint(fingerprint)
    except FingerprintError as exc:
        raise BadInput(f"The fingerprint has a typo: {exc}.") from None
    if daemon.me.peer_id.matches_fingerprint(normalize_fingerprint(fingerprint)):
        raise BadInput("That is this practice's own fingerprint.")
    if not daemon.mailboxes.connected():
        raise BadInput(
            "Give the address of your colleague's computer (--address HOST:PORT): no mailbox "
            "is connected to reach it otherwise (`pli mailbox status`)."
        )
    found = await daemon.rendezvous.knock(fingerprint_rendezvous(fingerprint), MAILBOX_TIMEOUT)
    if found is None:
        raise PeerUnreachable(
            "No practice with this fingerprint answered through the mailboxes. Check the "
            "fingerprint with your colleague, that their pli is running and has joined the "
            "same mailbox, or give its address with --address."
        )
    return daemon.pairing.start_request(fingerprint, found)


def answer_request(daemon: Daemon, wanted: str, yes: bool) -> PairingStatus:
    """Accept or refuse the pending request ``wanted`` designates (its id, or at least
    4 groups of its fingerprint)."""
    requests = [
        (item.id, item.fingerprint)
        for item in daemon.pairing.pending()
        if item.kind == "fingerprint" and item.role == "responder"
    ]
    return daemon.pairing.confirm(select_request(requests, wanted), yes)
