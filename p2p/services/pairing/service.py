"""The pairing service: one object the daemon wires, over the ``/pli/1/pair`` endpoint.

What lives here: the facade of ``pli pair invite`` / ``pli pair accept`` (code
pairing, ``code``) and of ``pli peers add FINGERPRINT`` / ``pli peers accept``
(fingerprint pairing, ``fingerprint``), the attempts people follow
(``attempts``) and the first frame of each connection. What does not: sockets
(the transport hands us a ``Pipe`` per connection and dials for us), mDNS (we
only say which nameplate to advertise, ``on_invitation_change``), the database
(the daemon stores a peer through ``store_peer``), the protocols (``protocol``).
No other service is imported.

The first frame of a ``/pli/1/pair`` connection says what follows: ``t =
"pake"`` is message 1 of ``protocol.Pairing``, ``t = "fingerprint"`` opens a
fingerprint request. Anything else is refused. Every frame is a msgpack map
with a ``t``; ``{"t": "error", "code": reason}`` ends an exchange from either
side (``wire``). Every failure carries a reason code (``protocol.PairingReason``):
in ``PairingFailed.reason``, in ``PairingStatus.reason``, in the API's JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from typing import Any, Final

from p2p.errors import BadInput
from p2p.services.pairing.attempts import (
    ACTION_STATES,
    FINAL_STATES,
    Attempt,
    Attempts,
    Kind,
    Me,
    PairingOutcome,
    PairingStatus,
    PendingPairing,
    Side,
    State,
)
from p2p.services.pairing.code import CodePairing
from p2p.services.pairing.fingerprint import MAX_REQUESTS, MAX_REQUESTS_PER_IP, FingerprintService
from p2p.services.pairing.invitations import Invitation, Invitations
from p2p.services.pairing.wire import Abort, Pipe, Reason, frame_type, garbled, hang_up, receive
from protocol import LocalIdentity, PairedPeer, PairingCode, limits

__all__ = [
    "ACTION_STATES",
    "FINAL_STATES",
    "MAX_REQUESTS",
    "MAX_REQUESTS_PER_IP",
    "Invitation",
    "Kind",
    "PairingOutcome",
    "PairingService",
    "PairingStatus",
    "PendingPairing",
    "Pipe",
    "Side",
    "State",
]

log = logging.getLogger("pli.pairing")

EXCHANGE_TIMEOUT: Final = 30.0  # the cryptographic exchange: machines only, no person
CONFIRM_TIMEOUT: Final = 300.0  # a person reads six digits and answers


class PairingService:
    """Invitations and pairing exchanges, both sides, both kinds. One per daemon.

    ``store_peer`` is called once per successful pairing, after both sides
    agreed; an exception from it (a ``PliError``) fails the attempt with its
    message. ``on_invitation_change`` is awaited with the nameplate mDNS should
    advertise (the newest open invitation's) or ``None``, whenever that changes.
    """

    def __init__(
        self,
        me: LocalIdentity,
        signed_card: Callable[[], bytes],
        discovery_secret: bytes,
        *,
        my_addresses: Callable[[], Sequence[str]],
        store_peer: Callable[[PairedPeer], Coroutine[Any, Any, None]],
        on_invitation_change: Callable[[str | None], Awaitable[None]] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], float] = time.time,
        exchange_timeout: float = EXCHANGE_TIMEOUT,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        local = Me(
            me, signed_card, discovery_secret, my_addresses, exchange_timeout, confirm_timeout
        )
        self._exchange_timeout = exchange_timeout
        self._attempts = Attempts(
            now=now,
            store_peer=store_peer,
            on_sweep=self._expire,
            on_forget=self._forget,
            on_change=on_event,
        )
        self._invitations = Invitations(self._attempts, on_invitation_change)
        self._code = CodePairing(local, self._attempts, self._invitations)
        self._fingerprint = FingerprintService(local, self._attempts)

    def _expire(self, now: float) -> bool:
        return self._invitations.expire(now)

    def _forget(self, attempts: list[Attempt]) -> None:
        self._invitations.forget(attempts)

    # --- code pairing ------------------------------------------------------------------------

    def invite(
        self, *, lifetime: float = limits.INVITATION_LIFETIME, auto_confirm: bool = False
    ) -> Invitation:
        """A new one-time code, advertised by mDNS while open."""
        return self._invitations.invite(lifetime=lifetime, auto_confirm=auto_confirm)

    def cancel(self, nameplate: str) -> None:
        """Close an invitation. If its SAS waits for a person, that is a refusal."""
        self._invitations.cancel(nameplate)

    async def accept(
        self, code: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> PairingOutcome:
        """Join an invitation over ``pipe`` (already dialled to the inviter).

        Returns once both people confirmed and the peer is stored. Raises
        ``PairingFailed`` (with its ``reason``), or ``BadInput`` for a malformed
        code. Closes ``pipe``.
        """
        attempt, parsed = self._code.invitee_attempt(code, pipe)
        return await self._code.run_accept(attempt, parsed, pipe, auto_confirm)

    def start_accept(
        self, code: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> str:
        """``accept`` in the background: returns the attempt id at once, for ``wait``."""
        attempt, parsed = self._code.invitee_attempt(code, pipe)
        self._attempts.spawn(self._code.run_accept(attempt, parsed, pipe, auto_confirm))
        return attempt.id

    # --- fingerprint pairing -----------------------------------------------------------------

    async def request(self, fingerprint: str, pipe: Pipe) -> PairingOutcome:
        """Ask the computer at the end of ``pipe`` to pair, if it has ``fingerprint``.

        Returns once its person accepted and the peer is stored. Raises
        ``PairingFailed``, or ``BadInput`` for a fingerprint with a typo (or our
        own). Closes ``pipe``.
        """
        attempt = self._fingerprint.requester_attempt(fingerprint, pipe)
        return await self._fingerprint.run_request(attempt, pipe)

    def start_request(self, fingerprint: str, pipe: Pipe) -> str:
        """``request`` in the background: returns the attempt id at once, for ``wait``."""
        attempt = self._fingerprint.requester_attempt(fingerprint, pipe)
        self._attempts.spawn(self._fingerprint.run_request(attempt, pipe))
        return attempt.id

    # --- the /pli/1/pair endpoint (inviter, responder) ---------------------------------------

    async def serve(self, pipe: Pipe) -> None:
        """Handle one connection to ``/pli/1/pair`` (the transport's ``on_pairing``).

        Never raises, except ``CancelledError``; the outcome is in the attempt.
        """
        deadline = asyncio.get_running_loop().time() + self._exchange_timeout
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    first = await receive(pipe)
            except TimeoutError:
                raise Abort.tell(Reason.TIMEOUT) from None
            kind = frame_type(first)
            if kind == "pake":
                await self._code.serve(pipe, first, deadline)
            elif kind == "fingerprint":
                await self._fingerprint.serve(pipe, first, deadline)
            else:
                raise garbled()
        except Abort as abort:
            log.info("pairing with %s ended: %s", pipe.remote_address, abort.reason)
            await hang_up(pipe, abort)
        except asyncio.CancelledError:
            await hang_up(pipe, Abort.tell(Reason.STOPPED))
            raise
        except Exception:
            log.exception("pairing connection from %s failed", pipe.remote_address)
            await hang_up(pipe, Abort.tell(Reason.REJECTED))
        else:
            await pipe.close()

    # --- people: pending, confirm, status, wait ----------------------------------------------

    def pending(self) -> list[PendingPairing]:
        """Attempts waiting for a person here: a SAS to confirm, a request to accept."""
        return self._attempts.pending()

    def confirm(self, attempt_id: str, yes: bool) -> PairingStatus:
        """A person's answer: the check codes match / the request is accepted, or not."""
        return self._attempts.confirm(attempt_id, yes)

    def status(self, key: str) -> PairingStatus:
        """An attempt by id, or an invitation by nameplate."""
        return self._find(key).status()

    async def wait(
        self, key: str, timeout: float, *, until: Collection[State] = ACTION_STATES
    ) -> PairingStatus:
        """Return as soon as the attempt is in one of ``until`` (by default: a person
        must act, or it is over), or after ``timeout`` seconds with where it stands."""
        return await self._attempts.wait(self._find(key), timeout, until)

    def _find(self, key: str) -> Attempt:
        self._attempts.sweep()
        attempt = self._attempts.by_id.get(key) or self._invitations.find(key)
        if attempt is None:
            raise BadInput("No pairing matches this id or invitation.")
        return attempt

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop: fail what is running, withdraw the nameplate from mDNS."""
        self._invitations.close()
        await self._attempts.close()
        await self._invitations.withdraw()
