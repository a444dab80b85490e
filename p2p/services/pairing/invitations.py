"""Invitations of code pairing: open, used or cancelled; their nameplate on mDNS.

Part of the pairing service (``code`` runs the exchanges on them). One
invitation per nameplate at a time; a nameplate that was used, cancelled or
expired keeps its attempt visible for ``status``/``wait`` a while
(``attempts.KEEP_FINISHED``). The newest open invitation's nameplate is what
mDNS advertises (``on_invitation_change``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from p2p.errors import BadInput
from p2p.services.pairing.attempts import FINAL_STATES, Attempt, Attempts, Kind, Side, State
from p2p.services.pairing.wire import STOPPED_MESSAGE, Abort, Reason, parse
from protocol import PairingCode, new_code

log = logging.getLogger("pli.pairing")

MAX_LIFETIME: Final = 24 * 3600.0
MAX_OPEN_INVITATIONS: Final = 32


@dataclass(frozen=True)
class Invitation:
    """A new invitation. ``str(code)`` is what the inviter reads to the colleague;
    ``id`` (or the nameplate) follows it with ``wait``/``status``."""

    id: str
    code: PairingCode
    expires_at: float
    auto_confirm: bool

    @property
    def nameplate(self) -> str:
        return self.code.nameplate


class _Use(enum.Enum):
    OPEN = "open"
    USED = "used"  # burned: message 1 was answered
    CANCELLED = "cancelled"


@dataclass
class _Invitation:
    public: Invitation
    attempt: Attempt
    use: _Use = _Use.OPEN


class Invitations:
    """The open and recent invitations of one daemon."""

    def __init__(
        self,
        attempts: Attempts,
        on_invitation_change: Callable[[str | None], Awaitable[None]] | None,
    ) -> None:
        self._attempts = attempts
        self._on_invitation_change = on_invitation_change
        self.by_nameplate: dict[str, _Invitation] = {}  # nameplate → latest invitation
        self._wanted: str | None = None  # the nameplate mDNS should carry
        self._advertised: str | None = None  # the one it carries
        self._advert_lock = asyncio.Lock()

    def invite(self, *, lifetime: float, auto_confirm: bool) -> Invitation:
        if self._attempts.closed:
            raise BadInput(STOPPED_MESSAGE)
        if not 0 < lifetime <= MAX_LIFETIME:
            raise BadInput("An invitation lasts between a few seconds and one day.")
        self._attempts.sweep()
        open_now = {n for n, inv in self.by_nameplate.items() if self._is_open(inv)}
        if len(open_now) >= MAX_OPEN_INVITATIONS:
            raise BadInput("Too many invitations are open. Cancel some, or wait for them to end.")
        code = new_code()
        for _ in range(20):  # prefer a nameplate not seen lately: error messages stay exact
            if code.nameplate not in self.by_nameplate:
                break
            code = new_code()
        while code.nameplate in open_now:
            code = new_code()
        expires_at = self._attempts.now() + lifetime
        attempt = self._attempts.add(
            Attempt(Kind.CODE, Side.INVITER, nameplate=code.nameplate, expires_at=expires_at)
        )
        invitation = Invitation(attempt.id, code, expires_at, auto_confirm)
        self.by_nameplate[code.nameplate] = _Invitation(invitation, attempt)
        self._attempts.call_later(lifetime, self._attempts.sweep)
        self._readvertise()
        log.info("invitation %s open for %d s", code.nameplate, int(lifetime))
        return invitation

    def cancel(self, nameplate: str) -> None:
        invitation = self.by_nameplate.get(nameplate)
        if invitation is None or invitation.attempt.state in FINAL_STATES:
            raise BadInput(f"There is no open invitation {nameplate}.")
        attempt = invitation.attempt
        if invitation.use is _Use.OPEN:
            invitation.use = _Use.CANCELLED
            self._attempts.finish(attempt, State.FAILED, Reason.CANCELLED)
            self._readvertise()
        elif attempt.decision is not None and not attempt.decision.done():
            attempt.decision.set_result(False)
            self._attempts.finish(attempt, State.FAILED, Reason.CANCELLED)

    def find(self, nameplate: str) -> Attempt | None:
        invitation = self.by_nameplate.get(nameplate)
        return invitation.attempt if invitation is not None else None

    def _is_open(self, invitation: _Invitation) -> bool:
        return invitation.use is _Use.OPEN and self._attempts.now() <= invitation.public.expires_at

    def expire(self, now: float) -> bool:
        """Fail invitations that expired unused (``Attempts.sweep`` calls this)."""
        expired = False
        for invitation in self.by_nameplate.values():
            attempt = invitation.attempt
            if (
                invitation.use is _Use.OPEN
                and now > invitation.public.expires_at
                and attempt.state not in FINAL_STATES
            ):
                self._attempts.finish(attempt, State.FAILED, Reason.EXPIRED)
                expired = True
        if expired:
            self._readvertise()
        return expired

    def forget(self, attempts: list[Attempt]) -> None:
        """Unlink attempts ``Attempts.sweep`` forgot from their invitations."""
        for attempt in attempts:
            old = self.by_nameplate.get(attempt.nameplate or "")
            if old is not None and old.attempt is attempt:
                del self.by_nameplate[attempt.nameplate or ""]

    def burn(self, invitation: _Invitation) -> None:
        if invitation.use is _Use.OPEN:
            invitation.use = _Use.USED
            log.info("invitation %s used: it cannot be used again", invitation.public.nameplate)
            self._readvertise()

    # --- the endpoint (inviter) --------------------------------------------------------------

    def open_invitation(self, first: bytes) -> _Invitation:
        nameplate = parse(first, "pake", ("nameplate", "commit"))["nameplate"]
        self._attempts.sweep()
        invitation = self.by_nameplate.get(nameplate) if isinstance(nameplate, str) else None
        if invitation is None or invitation.use is _Use.CANCELLED:
            raise Abort.tell(Reason.UNKNOWN)
        if invitation.use is _Use.USED:
            raise Abort.tell(Reason.USED)
        if not self._is_open(invitation):
            raise Abort.tell(Reason.EXPIRED)
        return invitation

    def close(self) -> None:
        for invitation in self.by_nameplate.values():
            if invitation.use is _Use.OPEN:
                invitation.use = _Use.CANCELLED

    def _readvertise(self) -> None:
        """Advertise the newest open invitation's nameplate, or none."""
        if self._on_invitation_change is None or self._attempts.closed:
            return
        open_now = [inv for inv in self.by_nameplate.values() if self._is_open(inv)]
        newest = max(open_now, key=lambda inv: inv.public.expires_at, default=None)
        wanted = newest.public.nameplate if newest is not None else None
        if wanted != self._wanted:
            self._wanted = wanted
            self._attempts.spawn(self._push_advertisement())

    async def _push_advertisement(self) -> None:
        async with self._advert_lock:
            wanted = self._wanted
            if (
                wanted == self._advertised
                or self._attempts.closed
                or self._on_invitation_change is None
            ):
                return
            try:
                await self._on_invitation_change(wanted)
            except Exception:
                log.exception("could not update the mDNS pairing announcement")
            else:
                self._advertised = wanted

    async def withdraw(self) -> None:
        """On stop: take the nameplate off mDNS."""
        if self._on_invitation_change is None or self._advertised is None:
            return
        async with self._advert_lock:
            try:
                await self._on_invitation_change(None)
            except Exception:
                log.exception("could not withdraw the mDNS pairing announcement")
            self._advertised = None
