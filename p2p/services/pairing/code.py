"""Code pairing: ``pli pair invite`` / ``pli pair accept``, over ``protocol.Pairing``.

Part of the pairing service. The invitee dials the inviter::

    1-4  the four messages of protocol.Pairing (see protocol/pairing.py), as is
    S    both ways, once a person decided: {"t": "sas", "ok": bool}
    5    both ways, once this side's person said yes AND the peer's "ok" arrived:
         protocol.Pairing.secret_message(), the sealed discovery secret

- The inviter finds the invitation by message 1's ``nameplate``. Unknown,
  cancelled, expired or used → an error frame, and nothing is burned (a message
  1 for another nameplate spends nothing).
- Once the inviter has answered a message 1 (``Pairing.code_used``) the
  invitation is burned: one attempt per code, success or not, even if the
  connection then goes silent or drops. Its nameplate leaves mDNS at once.
- Messages 1-4 must be over within ``exchange_timeout`` (30 s) of the
  connection (the invitee: of its start); a silent peer is dropped then.
- Then each screen shows the SAS. Each side sends its person's decision as
  soon as it is made (``auto_confirm`` / ``--yes`` decides at once) and waits
  for the other's, at most ``confirm_timeout`` (5 min). Both ``ok`` → each side
  sends its discovery secret (message 5) and, on the peer's, calls
  ``store_peer``. A ``false``, an error frame, a closed connection or the
  timeout → no secret sent, nothing stored, ``PairingFailed`` / ``failed``.

The ``sas`` frames are not authenticated; message 5 is (sealed under the
SPAKE2 key, bound to the transcript). That is sound because each side stores a
peer only if *its own* person confirmed and the peer's sealed secret arrived,
and sends its secret only once its own person confirmed and the peer's ``ok``
arrived: a forged ``ok`` can at worst make one side send its secret, sealed,
to the genuine, key-confirmed peer its person accepted; a man in the middle
who knew the code holds both legs, and is stopped by the people comparing the
SAS before any secret leaves.

As in any two-party commit, a connection cut after one side received the
other's ``ok`` can leave the peer stored on one side only; pairing again
repairs it (storing a peer again replaces the row).
"""

from __future__ import annotations

import asyncio
import logging

from p2p.errors import BadInput
from p2p.services.pairing.attempts import (
    Attempt,
    Attempts,
    Kind,
    Me,
    PairingOutcome,
    Side,
    State,
)
from p2p.services.pairing.invitations import Invitations
from p2p.services.pairing.wire import (
    Abort,
    Pipe,
    Reason,
    cancel,
    check_error,
    clean_addresses,
    frame,
    garbled,
    parse,
    protocol_abort,
    receive,
    send,
    with_address,
)
from protocol import (
    LocalProtocolError,
    Pairing,
    PairingCode,
    PairingRole,
    RemoteProtocolError,
    parse_code,
)

log = logging.getLogger("pli.pairing")


class CodePairing:
    """Code exchanges on both sides, over the invitations of ``Invitations``."""

    def __init__(self, me: Me, attempts: Attempts, invitations: Invitations) -> None:
        self._me = me
        self._attempts = attempts
        self._invitations = invitations

    # --- the endpoint (inviter) --------------------------------------------------------------

    async def serve(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        invitation = self._invitations.open_invitation(first)
        attempt = invitation.attempt
        pairing = self._pairing(PairingRole.INVITER, invitation.public.code)
        try:
            message_2 = pairing.receive(first)
        except RemoteProtocolError as exc:  # before message 1 is answered: nothing spent
            raise protocol_abort(exc) from exc
        finally:
            if pairing.code_used:
                self._invitations.burn(invitation)
        log.info(
            "pairing on invitation %s with %s", invitation.public.nameplate, pipe.remote_address
        )
        with self._attempts.failing(attempt):
            if message_2 is None:  # pragma: no cover - the inviter always answers message 1
                raise garbled()
            try:
                async with asyncio.timeout_at(deadline):
                    await send(pipe, message_2)
                    await self._step(pairing, pipe)
            except TimeoutError:
                raise Abort.tell(Reason.TIMEOUT) from None
            auto = invitation.public.auto_confirm
            await self._confirm_sas(attempt, pipe, pairing, auto, dialled=None)

    @staticmethod
    async def _step(pairing: Pairing, pipe: Pipe) -> None:
        """Receive the peer's next message, answer it if the protocol says so."""
        message = check_error(await receive(pipe))
        try:
            answer = pairing.receive(message)
        except RemoteProtocolError as exc:
            raise protocol_abort(exc) from exc
        if answer is not None:
            await send(pipe, answer)

    # --- invitee -----------------------------------------------------------------------------

    def invitee_attempt(self, code: str | PairingCode, pipe: Pipe) -> tuple[Attempt, PairingCode]:
        if not isinstance(code, PairingCode):
            try:
                code = parse_code(code)
            except RemoteProtocolError as exc:  # BadCode: says what is wrong with it
                self._attempts.spawn(pipe.close())
                raise BadInput(str(exc)) from exc
        attempt = self._attempts.add(Attempt(Kind.CODE, Side.INVITEE, nameplate=code.nameplate))
        return attempt, code

    async def run_accept(
        self, attempt: Attempt, code: PairingCode, pipe: Pipe, auto_confirm: bool
    ) -> PairingOutcome:
        async with self._attempts.dialling(attempt, pipe):
            pairing = self._pairing(PairingRole.INVITEE, code)
            try:
                async with asyncio.timeout(self._me.exchange_timeout):
                    await send(pipe, pairing.start())
                    for _ in range(2):  # message 2 (→ send 3), message 4 (→ done)
                        await self._step(pairing, pipe)
            except TimeoutError:
                raise Abort.tell(Reason.TIMEOUT) from None
            dialled = pipe.remote_address
            return await self._confirm_sas(attempt, pipe, pairing, auto_confirm, dialled)

    # --- both sides: the people compare the SAS ----------------------------------------------

    async def _confirm_sas(
        self,
        attempt: Attempt,
        pipe: Pipe,
        pairing: Pairing,
        auto_confirm: bool,
        dialled: str | None,
    ) -> PairingOutcome:
        """Show the SAS, trade both people's decisions; if both said yes, trade the
        discovery secrets (message 5) and store the peer."""
        peer = pairing.result()
        decision = self._attempts.expect_decision(attempt, peer, peer.sas)
        if auto_confirm:
            decision.set_result(True)
        theirs_task = asyncio.ensure_future(self._receive_decision(pipe))
        try:
            async with asyncio.timeout(self._me.confirm_timeout):
                await self._both_decide(attempt, pipe, decision, theirs_task)
                await send(pipe, pairing.secret_message())
                await self._step(pairing, pipe)
        except TimeoutError:
            raise Abort.tell(Reason.CONFIRM_TIMEOUT) from None
        finally:
            attempt.decision = None
            await cancel(theirs_task)
        peer = pairing.result()
        if not pairing.secret_received:  # pragma: no cover - _step raised otherwise
            raise garbled()
        return await self._attempts.store(attempt, with_address(peer, dialled) if dialled else peer)

    async def _both_decide(
        self,
        attempt: Attempt,
        pipe: Pipe,
        decision: asyncio.Future[bool],
        theirs_task: asyncio.Future[bool],
    ) -> None:
        """Send our person's decision as soon as made; return once both said yes."""
        mine: bool | None = None
        theirs: bool | None = None
        while mine is None or theirs is None:
            waiting: set[asyncio.Future[bool]] = set()
            if mine is None:
                waiting.add(decision)
            if theirs is None:
                waiting.add(theirs_task)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if mine is None and decision.done():
                if decision.cancelled():
                    raise Abort(
                        attempt.reason or Reason.STOPPED,
                        wire=Reason.PEER_STOPPED,
                        message=attempt.message,
                    )
                mine = decision.result()
                await send(pipe, frame("sas", ok=mine))
                if not mine:
                    raise Abort(Reason.YOU_REFUSED)
                if theirs is None:
                    self._attempts.set_state(attempt, State.WAITING_FOR_PEER)
            if theirs is None and theirs_task.done():
                theirs = theirs_task.result()
                if not theirs:
                    raise Abort(Reason.PEER_REFUSED)

    @staticmethod
    async def _receive_decision(pipe: Pipe) -> bool:
        ok = parse(await receive(pipe), "sas", ("ok",))["ok"]
        if not isinstance(ok, bool):
            raise garbled()
        return ok

    # --- helpers -----------------------------------------------------------------------------

    def _pairing(self, role: PairingRole, code: PairingCode) -> Pairing:
        me = self._me
        try:
            return Pairing(
                role,
                code,
                me.identity,
                me.signed_card(),
                me.discovery_secret,
                now=int(self._attempts.now()),
                my_addresses=clean_addresses(me.addresses()),
            )
        except LocalProtocolError as exc:
            log.error("cannot start a pairing: %s", exc)
            raise Abort.tell(Reason.LOCAL_SETUP) from exc
