"""The pairing service: invitations, the ``/pli/1/pair`` endpoint, confirmations.

What lives here: the p2p side of ``pli pair invite`` / ``pli pair accept`` (a
one-time code run through ``protocol.Pairing``) and of ``pli peers add
FINGERPRINT`` / ``pli peers accept`` (``fingerprint_pairing``), and the people
in the loop. What does not: sockets (the transport hands us a ``Pipe`` per
connection and dials for us), mDNS (we only say which nameplate to advertise,
``on_invitation_change``), the database (the daemon stores a peer through
``store_peer``). Helpers: ``pairing_wire`` (frames, error codes, sentences),
``fingerprint_pairing`` (that exchange). No other service is imported.

Attempts
========

Everything a person follows or acts on is an *attempt* with an id (an
invitation is one from ``invite()`` on; ``wait``/``status`` also take its
nameplate). States: ``waiting`` (invitation open, or machines talking) →
``needs-confirmation`` (a person here must ``confirm(id, yes)``) →
``waiting-for-peer`` (decided here, not there) → ``paired`` | ``failed`` (with
a sentence for a person). ``pending()`` lists what waits for a person.

The endpoint
============

The first frame of a ``/pli/1/pair`` connection says what follows: ``t =
"pake"`` is message 1 of ``protocol.Pairing``, ``t = "fingerprint"`` opens a
fingerprint request (``fingerprint_pairing``). Anything else is refused.
Every frame is a msgpack map with a ``t``; ``{"t": "error", "code": ...}``
ends an exchange from either side (``pairing_wire``).

Code pairing (the invitee dials the inviter)::

    1-4  the four messages of protocol.Pairing (see protocol/pairing.py), as is
    5    both ways, once a person decided: {"t": "sas", "ok": bool}

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
  calls ``store_peer``. A ``false``, an error frame, a closed connection or the
  timeout → nothing stored, ``PairingFailed`` / ``failed``.

The ``sas`` frames are not authenticated (``protocol.Pairing`` exposes no key
to MAC them). That is sound because each side stores a peer only if *its own*
person confirmed: a forged ``ok`` can at worst make one side store the
genuine, key-confirmed identity its person accepted while the other side
refused; a man in the middle who knew the code holds both legs anyway, and is
stopped by the people comparing the SAS.

As in any two-party commit, a connection cut after one side received the
other's ``ok`` can leave the peer stored on one side only; pairing again
repairs it (storing a peer again replaces the row).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from p2p.errors import BadInput, PairingFailed, PliError
from p2p.services.pairing import fingerprint as fp
from p2p.services.pairing.wire import (
    BUSY_MESSAGE,
    CANCELLED_MESSAGE,
    CONFIRM_TIMEOUT_MESSAGE,
    DECLINED_MESSAGE,
    EXPIRED_MESSAGE,
    NOT_ACCEPTED_MESSAGE,
    OWN_FINGERPRINT_MESSAGE,
    PEER_REFUSED_MESSAGE,
    REJECTED_MESSAGE,
    REPLACED_MESSAGE,
    SAVE_FAILED_MESSAGE,
    STOPPED_MESSAGE,
    TIMEOUT_MESSAGE,
    UNKNOWN_MESSAGE,
    USED_MESSAGE,
    YOU_DECLINED_MESSAGE,
    YOU_REFUSED_MESSAGE,
    Abort,
    Pipe,
    cancel,
    check_error,
    clean_addresses,
    frame,
    frame_type,
    garbled,
    hang_up,
    parse,
    protocol_abort,
    receive,
    send,
    with_address,
)
from protocol import (
    FingerprintError,
    LocalIdentity,
    LocalProtocolError,
    PairedPeer,
    Pairing,
    PairingCode,
    PairingRole,
    RemoteProtocolError,
    limits,
    new_code,
    normalize_fingerprint,
    parse_code,
)

__all__ = [
    "ACTION_STATES",
    "FINAL_STATES",
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
MAX_LIFETIME: Final = 24 * 3600.0
MAX_OPEN_INVITATIONS: Final = 32
#: Fingerprint requests being answered or waiting for a person, at once. A
#: fingerprint is printed on letterheads, so anybody may knock: requests live
#: in memory only, this many at most.
MAX_REQUESTS: Final = 8
KEEP_FINISHED: Final = 3600.0  # a finished attempt stays visible to status()/wait() this long
MAX_FINISHED: Final = 64


class Kind(enum.StrEnum):
    CODE = "code"  # pli pair invite / accept
    FINGERPRINT = "fingerprint"  # pli peers add / accept


class Side(enum.StrEnum):
    INVITER = "inviter"  # made the code, listens
    INVITEE = "invitee"  # typed the code, dials
    REQUESTER = "requester"  # typed the fingerprint, dials
    RESPONDER = "responder"  # was asked; a person accepts or refuses


class State(enum.StrEnum):
    WAITING = "waiting"
    NEEDS_CONFIRMATION = "needs-confirmation"
    WAITING_FOR_PEER = "waiting-for-peer"
    PAIRED = "paired"
    FAILED = "failed"


FINAL_STATES: Final = frozenset({State.PAIRED, State.FAILED})
#: What ``wait`` returns on by default: a person must act, or it is over.
ACTION_STATES: Final = frozenset({State.NEEDS_CONFIRMATION, State.PAIRED, State.FAILED})


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


@dataclass(frozen=True)
class PairingOutcome:
    """A finished pairing: the peer was stored."""

    peer: PairedPeer
    sas: str
    role: Side


@dataclass(frozen=True)
class PendingPairing:
    """An attempt waiting for this side's person: ``confirm(id, yes)``."""

    id: str
    kind: Kind
    role: Side
    sas: str
    peer_name: str
    fingerprint: str
    profession: str
    practice: str
    rpps: str


@dataclass(frozen=True)
class PairingStatus:
    """Where one attempt stands. ``message`` is set when ``state`` is ``failed``."""

    id: str
    kind: Kind
    role: Side
    state: State
    nameplate: str | None = None
    expires_at: float | None = None
    sas: str | None = None
    peer_name: str | None = None
    fingerprint: str | None = None
    peer_id: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the local API."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "role": str(self.role),
            "state": str(self.state),
            "nameplate": self.nameplate,
            "expires_at": self.expires_at,
            "sas": self.sas,
            "peer_name": self.peer_name,
            "fingerprint": self.fingerprint,
            "peer_id": self.peer_id,
            "message": self.message,
        }


class _Attempt:
    """One pairing attempt on this side."""

    def __init__(
        self,
        kind: Kind,
        side: Side,
        *,
        nameplate: str | None = None,
        expires_at: float | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.id = secrets.token_hex(6)
        self.kind = kind
        self.side = side
        self.nameplate = nameplate
        self.expires_at = expires_at
        self.fingerprint = fingerprint  # as typed (requester), until the peer is known
        self.state = State.WAITING
        self.sas: str | None = None
        self.peer: PairedPeer | None = None
        self.message: str | None = None
        self.finished_at: float | None = None
        self.decision: asyncio.Future[bool] | None = None  # set while a person may answer
        self.changed = asyncio.Event()  # set, then replaced, at every change of state

    def status(self) -> PairingStatus:
        peer = self.peer
        return PairingStatus(
            id=self.id,
            kind=self.kind,
            role=self.side,
            state=self.state,
            nameplate=self.nameplate,
            expires_at=self.expires_at,
            sas=self.sas,
            peer_name=peer.card.name if peer is not None else None,
            fingerprint=peer.peer_id.fingerprint if peer is not None else self.fingerprint,
            peer_id=peer.peer_id.hex if peer is not None else None,
            message=self.message,
        )


class _Use(enum.Enum):
    OPEN = "open"
    USED = "used"  # burned: message 1 was answered
    CANCELLED = "cancelled"


@dataclass
class _Invitation:
    public: Invitation
    attempt: _Attempt
    use: _Use = _Use.OPEN


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
        store_peer: Callable[[PairedPeer], None],
        on_invitation_change: Callable[[str | None], Awaitable[None]] | None = None,
        now: Callable[[], float] = time.time,
        exchange_timeout: float = EXCHANGE_TIMEOUT,
        confirm_timeout: float = CONFIRM_TIMEOUT,
    ) -> None:
        self._me = me
        self._signed_card = signed_card
        self._secret = discovery_secret
        self._my_addresses = my_addresses
        self._store_peer = store_peer
        self._on_invitation_change = on_invitation_change
        self._now = now
        self._exchange_timeout = exchange_timeout
        self._confirm_timeout = confirm_timeout
        self._invitations: dict[str, _Invitation] = {}  # nameplate → latest invitation
        self._attempts: dict[str, _Attempt] = {}
        self._requests_busy = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._wanted: str | None = None  # the nameplate mDNS should carry
        self._advertised: str | None = None  # the one it carries
        self._advert_lock = asyncio.Lock()
        self._closed = False

    # --- invitations (inviter) ---------------------------------------------------------------

    def invite(
        self, *, lifetime: float = limits.INVITATION_LIFETIME, auto_confirm: bool = False
    ) -> Invitation:
        """A new one-time code, advertised by mDNS while open."""
        if self._closed:
            raise BadInput(STOPPED_MESSAGE)
        if not 0 < lifetime <= MAX_LIFETIME:
            raise BadInput("An invitation lasts between a few seconds and one day.")
        self._sweep()
        open_now = {n for n, inv in self._invitations.items() if self._is_open(inv)}
        if len(open_now) >= MAX_OPEN_INVITATIONS:
            raise BadInput("Too many invitations are open. Cancel some, or wait for them to end.")
        code = new_code()
        for _ in range(20):  # prefer a nameplate not seen lately: error messages stay exact
            if code.nameplate not in self._invitations:
                break
            code = new_code()
        while code.nameplate in open_now:
            code = new_code()
        expires_at = self._now() + lifetime
        attempt = self._add(
            _Attempt(Kind.CODE, Side.INVITER, nameplate=code.nameplate, expires_at=expires_at)
        )
        invitation = Invitation(attempt.id, code, expires_at, auto_confirm)
        self._invitations[code.nameplate] = _Invitation(invitation, attempt)
        self._call_later(lifetime, self._sweep)
        self._readvertise()
        log.info("invitation %s open for %d s", code.nameplate, int(lifetime))
        return invitation

    def cancel(self, nameplate: str) -> None:
        """Close an invitation. If its SAS waits for a person, that is a refusal."""
        invitation = self._invitations.get(nameplate)
        if invitation is None or invitation.attempt.state in FINAL_STATES:
            raise BadInput(f"There is no open invitation {nameplate}.")
        attempt = invitation.attempt
        if invitation.use is _Use.OPEN:
            invitation.use = _Use.CANCELLED
            self._finish(attempt, State.FAILED, CANCELLED_MESSAGE)
            self._readvertise()
        elif attempt.decision is not None and not attempt.decision.done():
            attempt.decision.set_result(False)
            self._finish(attempt, State.FAILED, CANCELLED_MESSAGE)

    def _is_open(self, invitation: _Invitation) -> bool:
        return invitation.use is _Use.OPEN and self._now() <= invitation.public.expires_at

    def _sweep(self) -> None:
        """Fail invitations that expired unused; forget old finished attempts."""
        now = self._now()
        expired = False
        for invitation in self._invitations.values():
            attempt = invitation.attempt
            if (
                invitation.use is _Use.OPEN
                and now > invitation.public.expires_at
                and attempt.state not in FINAL_STATES
            ):
                self._finish(attempt, State.FAILED, EXPIRED_MESSAGE)
                expired = True
        finished = sorted(
            (a for a in self._attempts.values() if a.finished_at is not None),
            key=lambda a: a.finished_at or 0.0,
        )
        excess = len(finished) - MAX_FINISHED
        for index, attempt in enumerate(finished):
            if index < excess or (attempt.finished_at or 0.0) < now - KEEP_FINISHED:
                del self._attempts[attempt.id]
                old = self._invitations.get(attempt.nameplate or "")
                if old is not None and old.attempt is attempt:
                    del self._invitations[attempt.nameplate or ""]
        if expired:
            self._readvertise()

    def _burn(self, invitation: _Invitation) -> None:
        if invitation.use is _Use.OPEN:
            invitation.use = _Use.USED
            log.info("invitation %s used: it cannot be used again", invitation.public.nameplate)
            self._readvertise()

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
                raise Abort(TIMEOUT_MESSAGE, "timeout") from None
            kind = frame_type(first)
            if kind == "pake":
                await self._serve_code(pipe, first, deadline)
            elif kind == "fingerprint":
                await self._serve_request(pipe, first, deadline)
            else:
                raise garbled()
        except Abort as abort:
            log.info("pairing with %s ended: %s", pipe.remote_address, abort.message)
            await hang_up(pipe, abort)
        except asyncio.CancelledError:
            await hang_up(pipe, Abort(STOPPED_MESSAGE, "stopping"))
            raise
        except Exception:
            log.exception("pairing connection from %s failed", pipe.remote_address)
            await hang_up(pipe, Abort(REJECTED_MESSAGE, "rejected"))
        else:
            await pipe.close()

    async def _serve_code(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        nameplate = parse(first, "pake", ("nameplate", "commit"))["nameplate"]
        self._sweep()
        invitation = self._invitations.get(nameplate) if isinstance(nameplate, str) else None
        if invitation is None or invitation.use is _Use.CANCELLED:
            raise Abort(UNKNOWN_MESSAGE, "unknown")
        if invitation.use is _Use.USED:
            raise Abort(USED_MESSAGE, "used")
        if not self._is_open(invitation):
            raise Abort(EXPIRED_MESSAGE, "expired")
        attempt = invitation.attempt
        pairing = self._pairing(PairingRole.INVITER, invitation.public.code)
        try:
            message_2 = pairing.receive(first)
        except RemoteProtocolError as exc:  # before message 1 is answered: nothing spent
            raise protocol_abort(exc) from exc
        finally:
            if pairing.code_used:
                self._burn(invitation)
        log.info("pairing on invitation %s with %s", nameplate, pipe.remote_address)
        with self._failing(attempt):
            if message_2 is None:  # pragma: no cover - the inviter always answers message 1
                raise garbled()
            try:
                async with asyncio.timeout_at(deadline):
                    await send(pipe, message_2)
                    message_3 = check_error(await receive(pipe))
                    try:
                        message_4 = pairing.receive(message_3)
                    except RemoteProtocolError as exc:
                        raise protocol_abort(exc) from exc
                    if message_4 is None:  # pragma: no cover - the inviter answers message 3
                        raise garbled()
                    await send(pipe, message_4)
            except TimeoutError:
                raise Abort(TIMEOUT_MESSAGE, "timeout") from None
            auto = invitation.public.auto_confirm
            await self._confirm_sas(attempt, pipe, pairing.result(), auto)

    # --- code pairing (invitee) --------------------------------------------------------------

    async def accept(
        self, code: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> PairingOutcome:
        """Join an invitation over ``pipe`` (already dialled to the inviter).

        Returns once both people confirmed and the peer is stored. Raises
        ``PairingFailed``, or ``BadInput`` for a malformed code. Closes ``pipe``.
        """
        attempt, parsed = self._invitee_attempt(code, pipe)
        return await self._run_accept(attempt, parsed, pipe, auto_confirm)

    def start_accept(
        self, code: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> str:
        """``accept`` in the background: returns the attempt id at once, for ``wait``."""
        attempt, parsed = self._invitee_attempt(code, pipe)
        self._spawn(self._run_accept(attempt, parsed, pipe, auto_confirm))
        return attempt.id

    def _invitee_attempt(self, code: str | PairingCode, pipe: Pipe) -> tuple[_Attempt, PairingCode]:
        if not isinstance(code, PairingCode):
            try:
                code = parse_code(code)
            except RemoteProtocolError as exc:  # BadCode: says what is wrong with it
                self._spawn(pipe.close())
                raise BadInput(str(exc)) from exc
        return self._add(_Attempt(Kind.CODE, Side.INVITEE, nameplate=code.nameplate)), code

    async def _run_accept(
        self, attempt: _Attempt, code: PairingCode, pipe: Pipe, auto_confirm: bool
    ) -> PairingOutcome:
        try:
            with self._failing(attempt):
                pairing = self._pairing(PairingRole.INVITEE, code)
                try:
                    async with asyncio.timeout(self._exchange_timeout):
                        await send(pipe, pairing.start())
                        for _ in range(2):  # message 2 (→ send 3), message 4 (→ done)
                            message = check_error(await receive(pipe))
                            try:
                                answer = pairing.receive(message)
                            except RemoteProtocolError as exc:
                                raise protocol_abort(exc) from exc
                            if answer is not None:
                                await send(pipe, answer)
                except TimeoutError:
                    raise Abort(TIMEOUT_MESSAGE, "timeout") from None
                peer = with_address(pairing.result(), pipe.remote_address)
                return await self._confirm_sas(attempt, pipe, peer, auto_confirm)
        except Abort as abort:
            await hang_up(pipe, abort)
            raise PairingFailed(abort.message) from None
        except asyncio.CancelledError:
            await hang_up(pipe, Abort(STOPPED_MESSAGE, "stopping"))
            raise
        finally:
            await pipe.close()

    async def _confirm_sas(
        self, attempt: _Attempt, pipe: Pipe, peer: PairedPeer, auto_confirm: bool
    ) -> PairingOutcome:
        """Show the SAS, trade both people's decisions, store the peer if both said yes."""
        decision = self._expect_decision(attempt, peer, peer.sas)
        if auto_confirm:
            decision.set_result(True)
        theirs_task = asyncio.ensure_future(self._receive_decision(pipe))
        mine: bool | None = None
        theirs: bool | None = None
        try:
            async with asyncio.timeout(self._confirm_timeout):
                while mine is None or theirs is None:
                    waiting: set[asyncio.Future[bool]] = set()
                    if mine is None:
                        waiting.add(decision)
                    if theirs is None:
                        waiting.add(theirs_task)
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if mine is None and decision.done():
                        if decision.cancelled():
                            raise Abort(attempt.message or STOPPED_MESSAGE, "stopping")
                        mine = decision.result()
                        await send(pipe, frame("sas", ok=mine))
                        if not mine:
                            raise Abort(YOU_REFUSED_MESSAGE)
                        if theirs is None:
                            self._set_state(attempt, State.WAITING_FOR_PEER)
                    if theirs is None and theirs_task.done():
                        theirs = theirs_task.result()
                        if not theirs:
                            raise Abort(PEER_REFUSED_MESSAGE)
        except TimeoutError:
            raise Abort(CONFIRM_TIMEOUT_MESSAGE, "confirm-timeout") from None
        finally:
            attempt.decision = None
            await cancel(theirs_task)
        return self._store(attempt, peer)

    @staticmethod
    async def _receive_decision(pipe: Pipe) -> bool:
        ok = parse(await receive(pipe), "sas", ("ok",))["ok"]
        if not isinstance(ok, bool):
            raise garbled()
        return ok

    # --- fingerprint pairing (requester) -----------------------------------------------------

    async def request(self, fingerprint: str, pipe: Pipe) -> PairingOutcome:
        """Ask the computer at the end of ``pipe`` to pair, if it has ``fingerprint``.

        Returns once its person accepted and the peer is stored. Raises
        ``PairingFailed``, or ``BadInput`` for a fingerprint with a typo (or our
        own). Closes ``pipe``.
        """
        attempt = self._requester_attempt(fingerprint, pipe)
        return await self._run_request(attempt, pipe)

    def start_request(self, fingerprint: str, pipe: Pipe) -> str:
        """``request`` in the background: returns the attempt id at once, for ``wait``."""
        attempt = self._requester_attempt(fingerprint, pipe)
        self._spawn(self._run_request(attempt, pipe))
        return attempt.id

    def _requester_attempt(self, fingerprint: str, pipe: Pipe) -> _Attempt:
        try:
            canonical = normalize_fingerprint(fingerprint)
        except FingerprintError as exc:
            self._spawn(pipe.close())
            raise BadInput(f"The fingerprint has a typo: {exc}.") from exc
        if self._me.peer_id.matches_fingerprint(canonical):
            self._spawn(pipe.close())
            raise BadInput(OWN_FINGERPRINT_MESSAGE)
        pretty = "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))
        return self._add(_Attempt(Kind.FINGERPRINT, Side.REQUESTER, fingerprint=pretty))

    async def _run_request(self, attempt: _Attempt, pipe: Pipe) -> PairingOutcome:
        try:
            with self._failing(attempt):
                try:
                    async with asyncio.timeout(self._exchange_timeout):
                        session = await fp.request(
                            self._me,
                            pipe,
                            attempt.fingerprint or "",
                            self._bundle(),
                            now=int(self._now()),
                        )
                except TimeoutError:
                    raise Abort(TIMEOUT_MESSAGE, "timeout") from None
                attempt.sas = fp.check_code(session)
                self._set_state(attempt, State.WAITING_FOR_PEER)
                try:
                    async with asyncio.timeout(self._confirm_timeout):
                        peer = await fp.receive_answer(session, pipe, attempt.sas)
                except TimeoutError:
                    raise Abort(NOT_ACCEPTED_MESSAGE, "confirm-timeout") from None
                if peer is None:
                    raise Abort(DECLINED_MESSAGE)
                attempt.peer = peer = with_address(peer, pipe.remote_address)
                return self._store(attempt, peer)
        except Abort as abort:
            await hang_up(pipe, abort)
            raise PairingFailed(abort.message) from None
        except asyncio.CancelledError:
            await hang_up(pipe, Abort(STOPPED_MESSAGE, "stopping"))
            raise
        finally:
            await pipe.close()

    # --- fingerprint pairing (responder) -----------------------------------------------------

    async def _serve_request(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        message_1 = parse(first, "fingerprint", ("msg",))["msg"]
        if not isinstance(message_1, bytes):
            raise garbled()
        if self._requests_busy >= MAX_REQUESTS:
            raise Abort(BUSY_MESSAGE, "busy")
        self._requests_busy += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    session, peer = await fp.answer_request(
                        self._me, pipe, message_1, now=int(self._now())
                    )
            except TimeoutError:
                raise Abort(TIMEOUT_MESSAGE, "timeout") from None
            for other in self._attempts.values():  # a retry replaces the older request
                if (
                    other.side is Side.RESPONDER
                    and other.peer is not None
                    and other.peer.peer_id == peer.peer_id
                    and other.decision is not None
                    and not other.decision.done()
                ):
                    other.message = REPLACED_MESSAGE
                    other.decision.cancel()
            attempt = self._add(_Attempt(Kind.FINGERPRINT, Side.RESPONDER))
            log.info("pairing request from %s at %s", peer.peer_id.short, pipe.remote_address)
            with self._failing(attempt):
                if await self._await_person(attempt, pipe, peer):
                    await fp.send_answer(session, pipe, self._bundle())
                    self._store(attempt, peer)
                else:
                    await fp.send_answer(session, pipe, None)
                    raise Abort(attempt.message or YOU_DECLINED_MESSAGE)
        finally:
            self._requests_busy -= 1

    async def _await_person(self, attempt: _Attempt, pipe: Pipe, peer: PairedPeer) -> bool:
        """Wait for ``confirm(id, yes)``, watching that the requester is still there."""
        decision = self._expect_decision(attempt, peer, peer.sas)
        watch = asyncio.ensure_future(receive(pipe))  # any frame now ends the request
        waiting: set[asyncio.Future[Any]] = {decision, watch}
        try:
            async with asyncio.timeout(self._confirm_timeout):
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise Abort(CONFIRM_TIMEOUT_MESSAGE, "confirm-timeout") from None
        finally:
            attempt.decision = None
            await cancel(watch)
        if decision.cancelled():  # replaced by a newer request, or we are stopping
            if self._closed:
                raise Abort(STOPPED_MESSAGE, "stopping")
            return False
        if decision.done():
            return decision.result()
        parse(watch.result(), "", ())  # raises: the requester's error frame, or garbage
        raise garbled()  # pragma: no cover - parse() always raises for type ""

    def _bundle(self) -> fp.Bundle:
        return fp.Bundle(self._signed_card(), self._secret, clean_addresses(self._my_addresses()))

    # --- people: pending, confirm, status, wait ----------------------------------------------

    def pending(self) -> list[PendingPairing]:
        """Attempts waiting for a person here: a SAS to confirm, a request to accept."""
        found = []
        for attempt in self._attempts.values():
            peer = attempt.peer
            if attempt.state is State.NEEDS_CONFIRMATION and peer is not None:
                card = peer.card
                found.append(
                    PendingPairing(
                        id=attempt.id,
                        kind=attempt.kind,
                        role=attempt.side,
                        sas=attempt.sas or "",
                        peer_name=card.name,
                        fingerprint=peer.peer_id.fingerprint,
                        profession=card.profession,
                        practice=card.practice,
                        rpps=card.rpps,
                    )
                )
        return found

    def confirm(self, attempt_id: str, yes: bool) -> PairingStatus:
        """A person's answer: the check codes match / the request is accepted, or not."""
        attempt = self._attempts.get(attempt_id)
        decision = attempt.decision if attempt is not None else None
        if attempt is None or decision is None or decision.done():
            raise BadInput("Nothing is waiting for a confirmation under this id.")
        decision.set_result(bool(yes))
        # The exchange task acts on it soon; the state moves now, so that a wait()
        # right after this call does not return the question again.
        if yes:
            self._set_state(attempt, State.WAITING_FOR_PEER)
        else:
            refused = (
                YOU_DECLINED_MESSAGE if attempt.side is Side.RESPONDER else YOU_REFUSED_MESSAGE
            )
            self._finish(attempt, State.FAILED, refused)
        return attempt.status()

    def status(self, key: str) -> PairingStatus:
        """An attempt by id, or an invitation by nameplate."""
        return self._find(key).status()

    async def wait(
        self, key: str, timeout: float, *, until: Collection[State] = ACTION_STATES
    ) -> PairingStatus:
        """Return as soon as the attempt is in one of ``until`` (by default: a person
        must act, or it is over), or after ``timeout`` seconds with where it stands."""
        attempt = self._find(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            self._sweep()
            remaining = deadline - loop.time()
            if attempt.state in until or remaining <= 0:
                return attempt.status()
            if attempt.state is State.WAITING and attempt.expires_at is not None:
                remaining = min(remaining, max(0.0, attempt.expires_at - self._now()) + 0.05)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await attempt.changed.wait()

    def _find(self, key: str) -> _Attempt:
        self._sweep()
        attempt = self._attempts.get(key)
        if attempt is None and key in self._invitations:
            attempt = self._invitations[key].attempt
        if attempt is None:
            raise BadInput("No pairing matches this id or invitation.")
        return attempt

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop: fail what is running, withdraw the nameplate from mDNS."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for invitation in self._invitations.values():
            if invitation.use is _Use.OPEN:
                invitation.use = _Use.CANCELLED
        for attempt in list(self._attempts.values()):
            self._finish(attempt, State.FAILED, STOPPED_MESSAGE)
            if attempt.decision is not None and not attempt.decision.done():
                attempt.decision.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._on_invitation_change is not None and self._advertised is not None:
            async with self._advert_lock:
                try:
                    await self._on_invitation_change(None)
                except Exception:
                    log.exception("could not withdraw the mDNS pairing announcement")
                self._advertised = None

    # --- helpers -----------------------------------------------------------------------------

    def _pairing(self, role: PairingRole, code: PairingCode) -> Pairing:
        try:
            return Pairing(
                role,
                code,
                self._me,
                self._signed_card(),
                self._secret,
                now=int(self._now()),
                my_addresses=clean_addresses(self._my_addresses()),
            )
        except LocalProtocolError as exc:
            log.error("cannot start a pairing: %s", exc)
            raise Abort(
                "pli cannot pair on this computer right now: its keys or profile need "
                f"attention ({exc}). Nothing was saved.",
                "rejected",
            ) from exc

    def _expect_decision(
        self, attempt: _Attempt, peer: PairedPeer, sas: str
    ) -> asyncio.Future[bool]:
        """Show ``sas`` and ``peer`` for ``attempt``; a person answers through ``confirm``."""
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        attempt.peer, attempt.sas, attempt.decision = peer, sas, decision
        self._set_state(attempt, State.NEEDS_CONFIRMATION)
        return decision

    def _store(self, attempt: _Attempt, peer: PairedPeer) -> PairingOutcome:
        try:
            self._store_peer(peer)
        except PliError as exc:
            raise Abort(exc.message) from exc
        except Exception as exc:
            log.exception("could not save the peer %s", peer.peer_id.short)
            raise Abort(SAVE_FAILED_MESSAGE) from exc
        log.info("paired with %s (%s)", peer.peer_id.short, attempt.side)
        self._finish(attempt, State.PAIRED)
        return PairingOutcome(peer, attempt.sas or peer.sas, attempt.side)

    def _add(self, attempt: _Attempt) -> _Attempt:
        self._sweep()
        self._attempts[attempt.id] = attempt
        return attempt

    def _set_state(self, attempt: _Attempt, state: State) -> None:
        if attempt.state in FINAL_STATES or attempt.state is state:
            return
        attempt.state = state
        changed, attempt.changed = attempt.changed, asyncio.Event()
        changed.set()

    def _finish(self, attempt: _Attempt, state: State, message: str | None = None) -> None:
        if attempt.state in FINAL_STATES:
            return
        if state is State.FAILED:
            attempt.message = message
        attempt.finished_at = self._now()
        self._set_state(attempt, state)

    @contextlib.contextmanager
    def _failing(self, attempt: _Attempt) -> Iterator[None]:
        """Whatever ends this block early marks ``attempt`` failed, with a sentence."""
        try:
            yield
        except Abort as abort:
            self._finish(attempt, State.FAILED, abort.message)
            raise
        except asyncio.CancelledError:
            self._finish(attempt, State.FAILED, STOPPED_MESSAGE)
            raise
        except Exception:
            self._finish(attempt, State.FAILED, REJECTED_MESSAGE)
            raise

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:  # no running loop (a synchronous caller): nothing to schedule
            coroutine.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, PliError):  # expected ones: in attempts
                log.error("pairing task failed", exc_info=exc)

    def _call_later(self, delay: float, callback: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(delay + 0.05, fire)
        self._timers.add(handle)

    def _readvertise(self) -> None:
        """Advertise the newest open invitation's nameplate, or none."""
        if self._on_invitation_change is None or self._closed:
            return
        open_now = [inv for inv in self._invitations.values() if self._is_open(inv)]
        newest = max(open_now, key=lambda inv: inv.public.expires_at, default=None)
        wanted = newest.public.nameplate if newest is not None else None
        if wanted != self._wanted:
            self._wanted = wanted
            self._spawn(self._push_advertisement())

    async def _push_advertisement(self) -> None:
        async with self._advert_lock:
            wanted = self._wanted
            if wanted == self._advertised or self._closed or self._on_invitation_change is None:
                return
            try:
                await self._on_invitation_change(wanted)
            except Exception:
                log.exception("could not update the mDNS pairing announcement")
            else:
                self._advertised = wanted
