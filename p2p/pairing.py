"""The pairing service: invitations, the ``/pli/1/pair`` endpoint, SAS confirmation.

What lives here: the p2p side of ``pli pair invite`` / ``pli pair accept`` (a
one-time code, ``protocol.Pairing``) and of ``pli peers add FINGERPRINT`` /
``pli peers accept`` (a Noise handshake checked against a typed fingerprint).
What does not: sockets (the transport hands us a ``Pipe``), mDNS (we only say
which nameplate to advertise), the database (the daemon stores the peer through
``store_peer``). This module imports no other service.

Everything a person must act on is an *attempt* with an id: ``pending()`` lists
the ones waiting for a person, ``confirm(id, yes)`` answers, ``wait(id)`` lets
the API follow one (``waiting`` → ``needs-confirmation`` → ``waiting-for-peer``
→ ``paired`` | ``failed`` with a message for a person).

Wire (one WebSocket binary frame = one msgpack map with a ``t`` field)
======================================================================

The first frame on ``/pli/1/pair`` says which exchange follows: ``t = "pake"``
is message 1 of ``protocol.Pairing``, ``t = "fingerprint"`` opens a fingerprint
request. Any other first frame is refused. Either side may end an exchange with
``{"t": "error", "code": str}``, then close; the code is one of
``ERROR_CODES`` and is only ever turned into one of our own sentences (a peer
cannot make us show text it chose).

Code pairing (the invitee dials the inviter)::

    1-4  the four messages of protocol.Pairing (see protocol/pairing.py), as is
    5    both ways, when a person decided: {"t": "sas", "ok": bool}

The inviter looks the invitation up by message 1's ``nameplate``: unknown,
expired or used → an error frame, and nothing is burned. Once it has answered
a message 1 (``Pairing.code_used``) the invitation is burned: one attempt per
code, success or not, even if the connection then goes silent. Messages 1-4
must be over within ``exchange_timeout`` (30 s) of the connection. Then both
screens show the SAS; each side sends its person's decision as soon as it is
made (``auto_confirm`` / ``--yes`` decides at once) and waits for the other's,
at most ``confirm_timeout`` (5 min). Both ``ok`` → each side calls
``store_peer``; anything else → nothing stored, ``PairingFailed``.

The ``sas`` frames are not authenticated (``protocol.Pairing`` exposes no key
to MAC them with). That is sound because each side stores a peer only if *its
own* person confirmed: a forged ``ok`` can at worst make one side store the
genuine, key-confirmed identity that its person accepted, while the other side
refused; a man in the middle who knew the code holds both legs anyway and is
stopped by the people comparing the SAS.

Fingerprint pairing (the requester dials the responder)::

    1  R → S  {"t": "fingerprint", "msg": Noise XX message 1}
    2  S → R  {"t": "noise", "msg": Noise XX message 2}
    3  R → S  {"t": "noise", "msg": Noise XX message 3}
    4  R → S  {"t": "sealed", "box": Noise transport message of
                {"t": "request", "card": bin, "disco": bin 32, "addr": [str]}}
    5  S → R  {"t": "sealed", "box": ... {"t": "accept", "card", "disco", "addr"}}
              or {"t": "sealed", "box": ... {"t": "refuse"}}

The handshake is ``protocol.Handshake`` with the prologue
``PROLOGUE ‖ b"/pair-fingerprint"`` (a pairing transcript can never pass for a
``/pli/1/peer`` one). The requester's ``verify_remote`` refuses a responder
whose peer id does not match the typed fingerprint, so it aborts before message
3 and sends nothing about itself to the wrong computer. The responder accepts
any identity but its own, and keeps the request in memory (at most
``MAX_REQUESTS``, none on disk: a fingerprint is printed on letterheads, so
anybody may knock) as a pending attempt until a person accepts or refuses, or
``confirm_timeout`` passes, or the requester hangs up. Both screens show a
6-digit check code from the handshake hash, so the person accepting can tell
their colleague's request from a stranger's sent at the same time. The
responder sends its card and discovery secret only in ``accept``; each side
stores the other when it has sent (responder) or received (requester) it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from protocol import (
    PROLOGUE,
    WRONG_CODE_MESSAGE,
    AuthenticationFailed,
    BadCode,
    FingerprintError,
    Handshake,
    LocalIdentity,
    LocalProtocolError,
    PairedPeer,
    Pairing,
    PairingCode,
    PairingRole,
    ProfileCard,
    RemotePeer,
    RemoteProtocolError,
    Role,
    Session,
    codec,
    limits,
    new_code,
    normalize_fingerprint,
    parse_code,
)

from .errors import BadInput, PairingFailed, PliError

log = logging.getLogger("pli.pairing")

EXCHANGE_TIMEOUT: Final = 30.0  # the cryptographic exchange: machines only, no person
CONFIRM_TIMEOUT: Final = 300.0  # a person reads six digits and clicks
MAX_LIFETIME: Final = 24 * 3600.0
MAX_OPEN_INVITATIONS: Final = 32
MAX_REQUESTS: Final = 8  # fingerprint requests waiting for a person, at once
KEEP_FINISHED: Final = 3600.0  # how long a finished attempt stays visible to wait()/status()
MAX_FINISHED: Final = 64
FINGERPRINT_PROLOGUE: Final = PROLOGUE + b"/pair-fingerprint"
_SAS_LABEL: Final = b"pli/1/pair-fingerprint/sas"
_CLOSE_FAILED: Final = 4001

# --- sentences for people --------------------------------------------------------------

EXPIRED_MESSAGE: Final = (
    "This pairing code has expired (codes last 10 minutes). Ask your colleague for a new one."
)
USED_MESSAGE: Final = (
    "This pairing code was already used: each code works only once. "
    "Nothing was saved. Ask your colleague for a new one."
)
UNKNOWN_MESSAGE: Final = (
    "The other computer has no open invitation with this code. Check the code, "
    "or ask your colleague for a new one."
)
CANCELLED_MESSAGE: Final = "The invitation was cancelled. Nothing was saved."
TIMEOUT_MESSAGE: Final = (
    "The other computer stopped answering during the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
LOST_MESSAGE: Final = (
    "The connection to the other computer was lost during the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
GARBLED_MESSAGE: Final = (
    "The other computer sent something pli does not understand. Nothing was saved. "
    "Check that both practices run an up-to-date pli, then try again."
)
REJECTED_MESSAGE: Final = (
    "The other computer refused the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
BUSY_MESSAGE: Final = (
    "The other computer is busy with other pairing requests. Try again in a few minutes."
)
STOPPED_MESSAGE: Final = "pli stopped during the pairing. Nothing was saved. Please try again."
PEER_STOPPED_MESSAGE: Final = (
    "pli stopped on the other computer during the pairing. Nothing was saved. Please try again."
)
YOU_REFUSED_MESSAGE: Final = "You did not confirm the check code. Nothing was saved."
PEER_REFUSED_MESSAGE: Final = (
    "Your colleague did not confirm the check code. Nothing was saved. If the two screens "
    "showed different codes, someone may have tried to intercept the pairing: make a new "
    "invitation and try again."
)
CONFIRM_TIMEOUT_MESSAGE: Final = (
    "The check code was not confirmed on both computers in time. Nothing was saved. "
    "Make a new invitation and try again."
)
NOT_THAT_PEER_MESSAGE: Final = (
    "The computer at {address} is not the practice with fingerprint {fingerprint}. "
    "Nothing was saved and nothing was sent to it. Check the address and the fingerprint "
    "with your colleague."
)
DECLINED_MESSAGE: Final = "The other practice declined the pairing request. Nothing was saved."
NOT_ACCEPTED_MESSAGE: Final = (
    "The other practice did not accept the pairing request in time. Nothing was saved. "
    "Ask them to run `pli peers accept` while you wait, then try again."
)
YOU_DECLINED_MESSAGE: Final = "You declined the pairing request. Nothing was saved."
REPLACED_MESSAGE: Final = "A newer request from the same practice replaced this one."
OWN_FINGERPRINT_MESSAGE: Final = "That is this practice's own fingerprint."

#: Error codes on the wire, and what the receiving side tells its person.
ERROR_CODES: Final[Mapping[str, str]] = {
    "wrong-code": WRONG_CODE_MESSAGE,
    "expired": EXPIRED_MESSAGE,
    "used": USED_MESSAGE,
    "unknown": UNKNOWN_MESSAGE,
    "timeout": TIMEOUT_MESSAGE,
    "confirm-timeout": CONFIRM_TIMEOUT_MESSAGE,
    "bad-message": GARBLED_MESSAGE,
    "rejected": REJECTED_MESSAGE,
    "busy": BUSY_MESSAGE,
    "stopping": PEER_STOPPED_MESSAGE,
}


# --- public values -------------------------------------------------------------------------


class Pipe(Protocol):
    """One bounded binary-frame connection (``transport.FramePipe``).

    ``receive`` and ``send`` raise some exception when the connection is gone;
    this service treats any as "connection lost".
    """

    @property
    def remote_address(self) -> str: ...

    async def send(self, data: bytes) -> None: ...

    async def receive(self, timeout: float | None = None) -> bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Kind(enum.StrEnum):
    CODE = "code"  # pli pair invite / accept
    FINGERPRINT = "fingerprint"  # pli peers add / accept


class Side(enum.StrEnum):
    INVITER = "inviter"
    INVITEE = "invitee"
    REQUESTER = "requester"  # typed the fingerprint, dials
    RESPONDER = "responder"  # received the request, a person accepts it


class State(enum.StrEnum):
    WAITING = "waiting"  # invitation open, or the exchange is running
    NEEDS_CONFIRMATION = "needs-confirmation"  # a person here must confirm(id, yes)
    WAITING_FOR_PEER = "waiting-for-peer"  # decided here; the other side has not
    PAIRED = "paired"
    FAILED = "failed"


FINAL_STATES: Final = frozenset({State.PAIRED, State.FAILED})
#: What ``wait`` returns on by default: a person must act, or it is over.
ACTION_STATES: Final = frozenset({State.NEEDS_CONFIRMATION, State.PAIRED, State.FAILED})


@dataclass(frozen=True)
class Invitation:
    """An open invitation. ``str(code)`` is what the inviter reads to the colleague."""

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
    """An attempt waiting for this side's person (``confirm(id, yes)``)."""

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


# --- internals ---------------------------------------------------------------------------------


class _Abort(Exception):
    """Ends an exchange: ``message`` for our person, ``wire`` the error code for the peer
    (``None``: the peer already knows, or the connection is gone)."""

    def __init__(self, message: str, wire: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wire = wire


class _Attempt:
    """One pairing attempt on this side; the API follows it by ``id``."""

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
        self.fingerprint = fingerprint
        self.state = State.WAITING
        self.sas: str | None = None
        self.peer: PairedPeer | None = None
        self.message: str | None = None
        self.finished_at: float | None = None
        self.decision: asyncio.Future[bool] | None = None
        self.changed = asyncio.Event()

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


class _InvitationState(enum.Enum):
    OPEN = "open"
    USED = "used"
    CANCELLED = "cancelled"


@dataclass
class _Invitation:
    public: Invitation
    attempt: _Attempt
    state: _InvitationState = _InvitationState.OPEN


_ADDRESS = re.compile(r"[^\s/]{1,253}:[0-9]{1,5}")


def _clean_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Our own addresses as ``protocol.Pairing`` accepts them: host:port, deduplicated."""
    kept: list[str] = []
    for address in addresses:
        if (
            isinstance(address, str)
            and _ADDRESS.fullmatch(address)
            and 0 < int(address.rpartition(":")[2]) < 65536
            and address not in kept
        ):
            kept.append(address)
    return tuple(kept[: limits.MAX_ADDRESSES])


def _frame(kind: str, **fields: Any) -> bytes:
    return codec.pack({"t": kind, **fields})


def _parse(data: bytes, expected: str, keys: Collection[str]) -> Mapping[str, Any]:
    """A frame of type ``expected`` with exactly ``keys`` (besides ``t``).

    An error frame becomes ``_Abort`` with our sentence for its code; anything
    else malformed becomes ``_Abort`` telling the peer ``bad-message``.
    """
    try:
        fields = codec.as_map(codec.unpack(data), "pairing frame")
        kind = codec.field(fields, "t", str, "pairing frame")
    except RemoteProtocolError as exc:
        raise _Abort(GARBLED_MESSAGE, "bad-message") from exc
    if kind == "error":
        code = fields.get("code")
        known = isinstance(code, str) and code in ERROR_CODES
        raise _Abort(ERROR_CODES[code] if known else REJECTED_MESSAGE)
    if kind != expected or set(fields) != {"t", *keys}:
        raise _Abort(GARBLED_MESSAGE, "bad-message")
    return fields


async def _receive(pipe: Pipe) -> bytes:
    try:
        return await pipe.receive()
    except Exception as exc:  # transport.ChannelClosed and friends: we may not import them
        raise _Abort(LOST_MESSAGE) from exc


async def _send(pipe: Pipe, data: bytes) -> None:
    try:
        await pipe.send(data)
    except Exception as exc:  # as in _receive
        raise _Abort(LOST_MESSAGE) from exc


def _fingerprint_sas(handshake_hash: bytes) -> str:
    digest = hashlib.blake2b(_SAS_LABEL, key=handshake_hash[:64], digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') % 10**6:06d}"


def _protocol_abort(exc: RemoteProtocolError) -> _Abort:
    """A failed check inside protocol.Pairing: wrong code, bad identity, or garbage."""
    if isinstance(exc, AuthenticationFailed):
        message = str(exc)
        return _Abort(message, "wrong-code" if message == WRONG_CODE_MESSAGE else "rejected")
    return _Abort(GARBLED_MESSAGE, "bad-message")


# --- the service -------------------------------------------------------------------------------


class PairingService:
    """Invitations and pairing exchanges, both sides, both kinds. One per daemon."""

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
        self._requests_busy = 0  # fingerprint requests being handled or waiting for a person
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._wanted_nameplate: str | None = None
        self._advertised: str | None = None
        self._advert_lock = asyncio.Lock()
        self._closed = False

    # --- invitations (inviter) ------------------------------------------------------------

    def invite(
        self, *, lifetime: float = limits.INVITATION_LIFETIME, auto_confirm: bool = False
    ) -> Invitation:
        """A new one-time code, advertised by mDNS while open."""
        if not 0 < lifetime <= MAX_LIFETIME:
            raise BadInput("An invitation lasts between a few seconds and one day.")
        self._sweep()
        open_now = {n for n, inv in self._invitations.items() if self._is_open(inv)}
        if len(open_now) >= MAX_OPEN_INVITATIONS:
            raise BadInput("Too many invitations are open. Cancel some, or wait for them to end.")
        code = new_code()
        for _ in range(100):  # prefer a nameplate not seen lately, so messages stay exact
            if code.nameplate not in self._invitations:
                break
            code = new_code()
        while code.nameplate in open_now:
            code = new_code()
        expires_at = self._now() + lifetime
        attempt = self._add_attempt(
            _Attempt(Kind.CODE, Side.INVITER, nameplate=code.nameplate, expires_at=expires_at)
        )
        public = Invitation(attempt.id, code, expires_at, auto_confirm)
        self._invitations[code.nameplate] = _Invitation(public, attempt)
        self._call_later(lifetime, self._sweep)
        self._readvertise()
        log.info("invitation %s open for %d s", code.nameplate, int(lifetime))
        return public

    def cancel(self, nameplate: str) -> None:
        """Close an invitation; if its SAS is waiting for a person, refuse it."""
        invitation = self._invitations.get(nameplate)
        if invitation is None or invitation.attempt.state in FINAL_STATES:
            raise BadInput(f"There is no open invitation {nameplate}.")
        attempt = invitation.attempt
        if invitation.state is _InvitationState.OPEN:
            invitation.state = _InvitationState.CANCELLED
            self._finish(attempt, State.FAILED, CANCELLED_MESSAGE)
            self._readvertise()
        elif attempt.decision is not None and not attempt.decision.done():
            attempt.decision.set_result(False)

    def _is_open(self, invitation: _Invitation) -> bool:
        return (
            invitation.state is _InvitationState.OPEN
            and self._now() <= invitation.public.expires_at
        )

    def _sweep(self) -> None:
        """Fail invitations that expired unused; forget old finished attempts."""
        now = self._now()
        changed = False
        for invitation in self._invitations.values():
            attempt = invitation.attempt
            if (
                invitation.state is _InvitationState.OPEN
                and now > invitation.public.expires_at
                and attempt.state is State.WAITING
            ):
                self._finish(attempt, State.FAILED, EXPIRED_MESSAGE)
                changed = True
        finished = sorted(
            (a for a in self._attempts.values() if a.finished_at is not None),
            key=lambda a: a.finished_at or 0.0,
        )
        for index, attempt in enumerate(finished):
            too_old = (attempt.finished_at or 0.0) < now - KEEP_FINISHED
            if too_old or index < len(finished) - MAX_FINISHED:
                del self._attempts[attempt.id]
                if attempt.nameplate is not None:
                    invitation = self._invitations.get(attempt.nameplate)
                    if invitation is not None and invitation.attempt is attempt:
                        del self._invitations[attempt.nameplate]
        if changed:
            self._readvertise()

    def _burn(self, invitation: _Invitation) -> None:
        if invitation.state is _InvitationState.OPEN:
            invitation.state = _InvitationState.USED
            log.info("invitation %s used: it cannot be used again", invitation.public.nameplate)
            self._readvertise()

    # --- the /pli/1/pair endpoint (inviter, responder) ----------------------------------------

    async def serve(self, pipe: Pipe) -> None:
        """Handle one connection to ``/pli/1/pair``. Never raises (but cancellation)."""
        deadline = asyncio.get_running_loop().time() + self._exchange_timeout
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    first = await _receive(pipe)
            except TimeoutError:
                raise _Abort(TIMEOUT_MESSAGE, "timeout") from None
            try:
                kind = codec.field(codec.as_map(codec.unpack(first), "frame"), "t", str, "frame")
            except RemoteProtocolError:
                kind = ""
            if kind == "pake":
                await self._serve_code(pipe, first, deadline)
            elif kind == "fingerprint":
                await self._serve_fingerprint(pipe, first, deadline)
            else:
                raise _Abort(GARBLED_MESSAGE, "bad-message")
        except _Abort as abort:
            log.info("pairing connection from %s ended: %s", pipe.remote_address, abort.wire)
            await self._hang_up(pipe, abort)
        except asyncio.CancelledError:
            await self._hang_up(pipe, _Abort(STOPPED_MESSAGE, "stopping"))
            raise
        except Exception:
            log.exception("pairing connection from %s failed", pipe.remote_address)
            await self._hang_up(pipe, _Abort(REJECTED_MESSAGE, "rejected"))
        else:
            await pipe.close()

    async def _serve_code(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        fields = _parse(first, "pake", ("nameplate", "commit"))
        nameplate = fields["nameplate"]
        self._sweep()
        invitation = self._invitations.get(nameplate) if isinstance(nameplate, str) else None
        if invitation is None or invitation.state is _InvitationState.CANCELLED:
            raise _Abort(UNKNOWN_MESSAGE, "unknown")
        if invitation.state is _InvitationState.USED:
            raise _Abort(USED_MESSAGE, "used")
        if not self._is_open(invitation):
            raise _Abort(EXPIRED_MESSAGE, "expired")
        pairing = self._pairing(PairingRole.INVITER, invitation.public.code)
        attempt = invitation.attempt
        try:
            reply = pairing.receive(first)
        except RemoteProtocolError as exc:
            raise _protocol_abort(exc) from exc
        finally:
            if pairing.code_used:
                self._burn(invitation)
        log.info("pairing on invitation %s with %s", nameplate, pipe.remote_address)
        with self._failing(attempt):
            try:
                async with asyncio.timeout_at(deadline):
                    await _send(pipe, reply)
                    message_3 = await _receive(pipe)
                    try:
                        message_4 = pairing.receive(_check_error(message_3))
                    except RemoteProtocolError as exc:
                        raise _protocol_abort(exc) from exc
                    if message_4 is None:  # pragma: no cover - the inviter always answers
                        raise _Abort(GARBLED_MESSAGE, "bad-message")
                    await _send(pipe, message_4)
            except TimeoutError:
                raise _Abort(TIMEOUT_MESSAGE, "timeout") from None
            await self._confirm_sas(attempt, pipe, pairing.result(), invitation.public.auto_confirm)

    # --- code pairing (invitee) ----------------------------------------------------------------

    async def accept(
        self, code_text: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> PairingOutcome:
        """Join an invitation over ``pipe`` (already dialled to the inviter).

        Returns once both people confirmed and the peer is stored; raises
        ``PairingFailed`` (or ``BadInput`` for a malformed code). Closes ``pipe``.
        """
        code = self._code(code_text, pipe)
        attempt = self._add_attempt(_Attempt(Kind.CODE, Side.INVITEE, nameplate=code.nameplate))
        return await self._run_accept(attempt, code, pipe, auto_confirm)

    def start_accept(
        self, code_text: str | PairingCode, pipe: Pipe, *, auto_confirm: bool = False
    ) -> str:
        """``accept`` in the background; returns the attempt id to ``wait`` on."""
        code = self._code(code_text, pipe)
        attempt = self._add_attempt(_Attempt(Kind.CODE, Side.INVITEE, nameplate=code.nameplate))
        self._spawn(self._run_accept(attempt, code, pipe, auto_confirm))
        return attempt.id

    def _code(self, code_text: str | PairingCode, pipe: Pipe) -> PairingCode:
        if isinstance(code_text, PairingCode):
            return code_text
        try:
            return parse_code(code_text)
        except BadCode as exc:
            self._spawn(pipe.close())
            raise BadInput(str(exc)) from exc

    async def _run_accept(
        self, attempt: _Attempt, code: PairingCode, pipe: Pipe, auto_confirm: bool
    ) -> PairingOutcome:
        try:
            with self._failing(attempt):
                pairing = self._pairing(PairingRole.INVITEE, code)
                try:
                    async with asyncio.timeout(self._exchange_timeout):
                        await _send(pipe, pairing.start())
                        for _ in range(2):  # messages 2 and 4
                            try:
                                answer = pairing.receive(_check_error(await _receive(pipe)))
                            except RemoteProtocolError as exc:
                                raise _protocol_abort(exc) from exc
                            if answer is not None:
                                await _send(pipe, answer)
                except TimeoutError:
                    raise _Abort(TIMEOUT_MESSAGE, "timeout") from None
                peer = _with_address(pairing.result(), pipe.remote_address)
                return await self._confirm_sas(attempt, pipe, peer, auto_confirm)
        except _Abort as abort:
            await self._hang_up(pipe, abort)
            raise PairingFailed(abort.message) from None
        except asyncio.CancelledError:
            await self._hang_up(pipe, _Abort(STOPPED_MESSAGE, "stopping"))
            raise
        finally:
            await pipe.close()

    # --- SAS confirmation (both sides of a code pairing) -----------------------------------------

    async def _confirm_sas(
        self, attempt: _Attempt, pipe: Pipe, peer: PairedPeer, auto_confirm: bool
    ) -> PairingOutcome:
        """Show the SAS, exchange both people's decisions, store the peer if both said yes."""
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        attempt.peer, attempt.sas, attempt.decision = peer, peer.sas, decision
        if auto_confirm:
            decision.set_result(True)
        self._set_state(attempt, State.NEEDS_CONFIRMATION)
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
                    if mine is None and decision.cancelled():
                        raise _Abort(attempt.message or STOPPED_MESSAGE, "stopping")
                    if mine is None and decision.done():
                        mine = decision.result()
                        await _send(pipe, _frame("sas", ok=mine))
                        if not mine:
                            raise _Abort(YOU_REFUSED_MESSAGE)
                        if theirs is None:
                            self._set_state(attempt, State.WAITING_FOR_PEER)
                    if theirs is None and theirs_task.done():
                        theirs = theirs_task.result()
                        if not theirs:
                            raise _Abort(PEER_REFUSED_MESSAGE)
        except TimeoutError:
            raise _Abort(CONFIRM_TIMEOUT_MESSAGE, "confirm-timeout") from None
        finally:
            await _cancel(theirs_task)
            attempt.decision = None
        return self._store(attempt, peer)

    async def _receive_decision(self, pipe: Pipe) -> bool:
        ok = _parse(await _receive(pipe), "sas", ("ok",))["ok"]
        if not isinstance(ok, bool):
            raise _Abort(GARBLED_MESSAGE, "bad-message")
        return ok

    def _store(self, attempt: _Attempt, peer: PairedPeer) -> PairingOutcome:
        try:
            self._store_peer(peer)
        except PliError as exc:
            raise _Abort(exc.message) from exc
        outcome = PairingOutcome(peer, peer.sas, attempt.side)
        log.info("paired with %s (%s)", peer.peer_id.short, attempt.side)
        self._finish(attempt, State.PAIRED)
        return outcome

    # --- fingerprint pairing (requester) -----------------------------------------------------------

    async def request(self, fingerprint: str, pipe: Pipe) -> PairingOutcome:
        """Ask the computer at the end of ``pipe`` to pair, if it has ``fingerprint``.

        Returns once its person accepted and the peer is stored; raises
        ``PairingFailed`` (``BadInput`` for a fingerprint with a typo). Closes ``pipe``.
        """
        attempt = self._request_attempt(fingerprint, pipe)
        return await self._run_request(attempt, pipe)

    def start_request(self, fingerprint: str, pipe: Pipe) -> str:
        """``request`` in the background; returns the attempt id to ``wait`` on."""
        attempt = self._request_attempt(fingerprint, pipe)
        self._spawn(self._run_request(attempt, pipe))
        return attempt.id

    def _request_attempt(self, fingerprint: str, pipe: Pipe) -> _Attempt:
        try:
            canonical = normalize_fingerprint(fingerprint)
        except FingerprintError as exc:
            self._spawn(pipe.close())
            raise BadInput(f"The fingerprint has a typo: {exc}.") from exc
        if self._me.peer_id.matches_fingerprint(canonical):
            self._spawn(pipe.close())
            raise BadInput(OWN_FINGERPRINT_MESSAGE)
        pretty = "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))
        return self._add_attempt(_Attempt(Kind.FINGERPRINT, Side.REQUESTER, fingerprint=pretty))

    async def _run_request(self, attempt: _Attempt, pipe: Pipe) -> PairingOutcome:
        fingerprint = attempt.fingerprint or ""

        def verify(remote: RemotePeer) -> None:
            if not remote.peer_id.matches_fingerprint(fingerprint):
                raise AuthenticationFailed()

        handshake = Handshake(
            Role.INITIATOR, self._me, verify, now=int(self._now()), prologue=FINGERPRINT_PROLOGUE
        )
        try:
            with self._failing(attempt):
                try:
                    async with asyncio.timeout(self._exchange_timeout):
                        await _send(pipe, _frame("fingerprint", msg=handshake.initiate()))
                        message_2 = _noise(await _receive(pipe))
                        try:
                            message_3 = handshake.receive(message_2)
                        except AuthenticationFailed:
                            raise _Abort(
                                NOT_THAT_PEER_MESSAGE.format(
                                    address=pipe.remote_address, fingerprint=fingerprint
                                )
                            ) from None
                        except RemoteProtocolError as exc:
                            raise _Abort(GARBLED_MESSAGE, "bad-message") from exc
                        if message_3 is None:  # pragma: no cover - XX always has message 3
                            raise _Abort(GARBLED_MESSAGE, "bad-message")
                        await _send(pipe, _frame("noise", msg=message_3))
                        session = handshake.session()
                        await _send(pipe, self._sealed(session, "request"))
                except TimeoutError:
                    raise _Abort(TIMEOUT_MESSAGE, "timeout") from None
                attempt.sas = _fingerprint_sas(session.handshake_hash)
                self._set_state(attempt, State.WAITING_FOR_PEER)
                try:
                    async with asyncio.timeout(self._confirm_timeout):
                        answer = await _receive(pipe)
                except TimeoutError:
                    raise _Abort(NOT_ACCEPTED_MESSAGE, "confirm-timeout") from None
                kind, fields = _open_sealed(session, answer, ("accept", "refuse"))
                if kind == "refuse":
                    raise _Abort(DECLINED_MESSAGE)
                peer = _peer_from_bundle(fields, session.remote, attempt.sas)
                attempt.peer = peer = _with_address(peer, pipe.remote_address)
                return self._store(attempt, peer)
        except _Abort as abort:
            await self._hang_up(pipe, abort)
            raise PairingFailed(abort.message) from None
        except asyncio.CancelledError:
            await self._hang_up(pipe, _Abort(STOPPED_MESSAGE, "stopping"))
            raise
        finally:
            await pipe.close()

    # --- fingerprint pairing (responder) -----------------------------------------------------------

    async def _serve_fingerprint(self, pipe: Pipe, first: bytes, deadline: float) -> None:
        message_1 = _parse(first, "fingerprint", ("msg",))["msg"]
        if not isinstance(message_1, bytes):
            raise _Abort(GARBLED_MESSAGE, "bad-message")
        if self._requests_busy >= MAX_REQUESTS:
            raise _Abort(BUSY_MESSAGE, "busy")
        self._requests_busy += 1
        try:
            await self._answer_request(pipe, message_1, deadline)
        finally:
            self._requests_busy -= 1

    async def _answer_request(self, pipe: Pipe, message_1: bytes, deadline: float) -> None:
        def verify(remote: RemotePeer) -> None:
            if remote.identity == self._me.public:
                raise AuthenticationFailed()

        handshake = Handshake(
            Role.RESPONDER, self._me, verify, now=int(self._now()), prologue=FINGERPRINT_PROLOGUE
        )
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    message_2 = handshake.receive(message_1)
                    if message_2 is None:  # pragma: no cover - XX always has message 2
                        raise _Abort(GARBLED_MESSAGE, "bad-message")
                    await _send(pipe, _frame("noise", msg=message_2))
                    handshake.receive(_noise(await _receive(pipe)))
                except RemoteProtocolError as exc:
                    raise _Abort(GARBLED_MESSAGE, "bad-message") from exc
                session = handshake.session()
                _, fields = _open_sealed(session, await _receive(pipe), ("request",))
        except TimeoutError:
            raise _Abort(TIMEOUT_MESSAGE, "timeout") from None
        sas = _fingerprint_sas(session.handshake_hash)
        peer = _peer_from_bundle(fields, session.remote, sas)
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
        attempt = self._add_attempt(_Attempt(Kind.FINGERPRINT, Side.RESPONDER))
        log.info("pairing request from %s at %s", peer.peer_id.short, pipe.remote_address)
        with self._failing(attempt):
            attempt.peer, attempt.sas = peer, sas
            if await self._await_person(attempt, pipe):
                await _send(pipe, self._sealed(session, "accept"))
                self._store(attempt, peer)
            else:
                await _send(pipe, _sealed_frame(session, {"t": "refuse"}))
                raise _Abort(attempt.message or YOU_DECLINED_MESSAGE)

    async def _await_person(self, attempt: _Attempt, pipe: Pipe) -> bool:
        """Wait for ``confirm(id, yes)`` while watching that the requester is still there."""
        decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        attempt.decision = decision
        self._set_state(attempt, State.NEEDS_CONFIRMATION)
        watch = asyncio.ensure_future(_receive(pipe))  # any frame now ends the request
        waiting: set[asyncio.Future[Any]] = {decision, watch}
        try:
            async with asyncio.timeout(self._confirm_timeout):
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise _Abort(CONFIRM_TIMEOUT_MESSAGE, "confirm-timeout") from None
        finally:
            attempt.decision = None
            if not watch.done():
                await _cancel(watch)
        if decision.cancelled():
            return False
        if decision.done():
            await _cancel(watch)
            return decision.result()
        _parse(watch.result(), "", ())  # raises: the error the requester sent, or garbage
        raise AssertionError("unreachable")  # pragma: no cover

    def _sealed(self, session: Session, kind: str) -> bytes:
        return _sealed_frame(
            session,
            {
                "t": kind,
                "card": self._signed_card(),
                "disco": self._secret,
                "addr": list(_clean_addresses(self._my_addresses())),
            },
        )

    # --- people: pending, confirm, status, wait ----------------------------------------------------

    def pending(self) -> list[PendingPairing]:
        """Attempts waiting for a person here: a SAS to confirm, a request to accept."""
        result = []
        for attempt in self._attempts.values():
            peer = attempt.peer
            if attempt.state is State.NEEDS_CONFIRMATION and peer is not None:
                card = peer.card
                result.append(
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
        return result

    def confirm(self, attempt_id: str, yes: bool) -> PairingStatus:
        """A person's answer: the SAS matches (or the request is accepted), or not."""
        attempt = self._attempts.get(attempt_id)
        decision = attempt.decision if attempt is not None else None
        if attempt is None or decision is None or decision.done():
            raise BadInput("Nothing is waiting for a confirmation under this id.")
        decision.set_result(bool(yes))
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

    # --- lifecycle ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop: fail what is running, withdraw the mDNS nameplate."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for invitation in self._invitations.values():
            if invitation.state is _InvitationState.OPEN:
                invitation.state = _InvitationState.CANCELLED
        for attempt in list(self._attempts.values()):
            if attempt.state not in FINAL_STATES:
                self._finish(attempt, State.FAILED, STOPPED_MESSAGE)
            if attempt.decision is not None and not attempt.decision.done():
                attempt.decision.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._on_invitation_change is not None and self._advertised is not None:
            with contextlib.suppress(Exception):
                await self._on_invitation_change(None)
            self._advertised = None

    # --- helpers -----------------------------------------------------------------------------------

    def _pairing(self, role: PairingRole, code: PairingCode) -> Pairing:
        try:
            return Pairing(
                role,
                code,
                self._me,
                self._signed_card(),
                self._secret,
                now=int(self._now()),
                my_addresses=_clean_addresses(self._my_addresses()),
            )
        except LocalProtocolError as exc:
            log.error("cannot start a pairing: %s", exc)
            raise _Abort(
                "pli cannot pair on this computer right now: its keys or profile need attention "
                f"({exc}). Nothing was saved.",
                "rejected",
            ) from exc

    def _add_attempt(self, attempt: _Attempt) -> _Attempt:
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
        """Whatever ends this block early marks ``attempt`` failed with a sentence."""
        try:
            yield
        except _Abort as abort:
            self._finish(attempt, State.FAILED, abort.message)
            raise
        except asyncio.CancelledError:
            self._finish(attempt, State.FAILED, attempt.message or STOPPED_MESSAGE)
            raise
        except Exception:
            self._finish(attempt, State.FAILED, REJECTED_MESSAGE)
            raise

    async def _hang_up(self, pipe: Pipe, abort: _Abort) -> None:
        if abort.wire is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pipe.send(_frame("error", code=abort.wire)), 2.0)
        await pipe.close(_CLOSE_FAILED, abort.wire or "pairing failed")

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        try:
            task = asyncio.ensure_future(coroutine)
        except RuntimeError:  # no running loop (a synchronous caller): nothing to schedule
            if asyncio.iscoroutine(coroutine):
                coroutine.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, PliError):  # expected failures live in the attempt
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
        if wanted != self._wanted_nameplate:
            self._wanted_nameplate = wanted
            self._spawn(self._push_advertisement())

    async def _push_advertisement(self) -> None:
        callback = self._on_invitation_change
        if callback is None:  # pragma: no cover - checked by _readvertise
            return
        async with self._advert_lock:
            wanted = self._wanted_nameplate
            if wanted == self._advertised or self._closed:
                return
            try:
                await callback(wanted)
            except Exception:
                log.exception("could not update the mDNS pairing announcement")
            else:
                self._advertised = wanted


# --- wire helpers ---------------------------------------------------------------------------------


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # mark it retrieved: its outcome no longer matters


def _check_error(data: bytes) -> bytes:
    """Let a protocol.Pairing frame through, but turn an error frame into ``_Abort``."""
    try:
        fields = codec.as_map(codec.unpack(data), "pairing frame")
    except RemoteProtocolError:
        return data  # protocol.Pairing will say what is wrong with it
    if fields.get("t") == "error":
        _parse(data, "error", ("code",))
    return data


def _noise(data: bytes) -> bytes:
    message = _parse(data, "noise", ("msg",))["msg"]
    if not isinstance(message, bytes):
        raise _Abort(GARBLED_MESSAGE, "bad-message")
    return message


def _sealed_frame(session: Session, inner: Mapping[str, Any]) -> bytes:
    return _frame("sealed", box=session.encrypt(codec.pack(dict(inner))))


def _open_sealed(
    session: Session, data: bytes, kinds: Collection[str]
) -> tuple[str, Mapping[str, Any]]:
    box = _parse(data, "sealed", ("box",))["box"]
    try:
        if not isinstance(box, bytes):
            raise AuthenticationFailed()
        fields = codec.as_map(codec.unpack(session.decrypt(box)), "pairing message")
        kind = codec.field(fields, "t", str, "pairing message")
    except RemoteProtocolError as exc:
        raise _Abort(GARBLED_MESSAGE, "bad-message") from exc
    keys = {"t"} if kind == "refuse" else {"t", "card", "disco", "addr"}
    if kind not in kinds or set(fields) != keys:
        raise _Abort(GARBLED_MESSAGE, "bad-message")
    return kind, fields


def _peer_from_bundle(fields: Mapping[str, Any], remote: RemotePeer, sas: str) -> PairedPeer:
    """The peer a fingerprint exchange describes; its card must name the Noise identity."""
    what = "pairing bundle"
    try:
        card_wire = codec.field(fields, "card", bytes, what)
        card = ProfileCard.from_wire(card_wire)
        secret = codec.fixed_bytes(fields, "disco", 32, what)
        addresses = codec.field(fields, "addr", list, what)
    except RemoteProtocolError as exc:
        raise _Abort(GARBLED_MESSAGE, "bad-message") from exc
    if card.identity != remote.identity:
        raise _Abort(REJECTED_MESSAGE, "rejected")
    if len(addresses) > limits.MAX_ADDRESSES or _clean_addresses(addresses) != tuple(addresses):
        raise _Abort(GARBLED_MESSAGE, "bad-message")
    return PairedPeer(
        identity=remote.identity,
        static_cert=remote.cert,
        card=card,
        card_wire=card_wire,
        discovery_secret=secret,
        addresses=tuple(addresses),
        sas=sas,
    )


def _with_address(peer: PairedPeer, dialled: str) -> PairedPeer:
    """Remember the address we reached the peer at, first."""
    addresses = _clean_addresses([dialled, *peer.addresses])
    return replace(peer, addresses=addresses) if addresses else peer
