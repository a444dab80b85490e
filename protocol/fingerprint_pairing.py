"""Pairing by fingerprint (``pli peers add FINGERPRINT`` / ``pli peers accept``), sans-IO.

R, the **requester**, typed the fingerprint of S, the **responder**, and dials
it. Bytes in, events out: ``FingerprintPairing.start`` / ``receive`` /
``decide`` return ``Send`` (bytes for the peer), ``ShowCheckCode`` (six digits
for the person), ``Paired`` (the peer, to store) or ``Declined``; the clock is
the ``now`` argument, the Noise ephemeral key can be pinned. What the state
machine does in each state is the table ``_STEPS``. Frames (one WebSocket
message each, msgpack maps written in exactly this key order)::

    1  R → S  {"t": "fingerprint", "msg": Noise XX message 1, "commit": bin 32}
    2  S → R  {"t": "noise", "msg": Noise XX message 2}
    3  R → S  {"t": "noise", "msg": Noise XX message 3}
    4  R → S  {"t": "sealed", "box": Noise transport message of
                {"t": "request", "card": bin, "disco": bin 32, "addr": [str]}}
    5  S → R  {"t": "sealed", "box": ... {"t": "accept", "card", "disco", "addr"}}
              or {"t": "sealed", "box": ... {"t": "refuse"}}

The handshake is ``protocol.Handshake`` (Noise XX, identity key and static
certificate in messages 2 and 3) with the prologue ``PROLOGUE ‖
b"/pair-fingerprint"``, so a pairing transcript never passes for a peer one.
R refuses an S whose peer id does not match the typed fingerprint before
message 3 (``NOT_THAT_PEER``): it tells the wrong computer nothing about
itself. S accepts any identity but its own; a person decides.

Check code (both screens)::

    code = "%06d" % (u64be(session.export(b"pli/1/pair-fingerprint/check-code", 8)) mod 10^6)

``Session.export`` is keyed by the Noise chaining key after the last DH, which
only the two ends hold: an onlooker who saw every byte cannot compute a
colleague's code (the old code hashed the handshake hash, which is public).

Commitment: ``commit = H("pli/1/pair-fingerprint/commit", identity key,
static cert, request plaintext)`` goes in message 1, before S contributes its
ephemeral key; S checks it against what messages 3 and 4 reveal
(``BAD_COMMITMENT``). Everything R puts into the session after message 1 is
fixed by then, so R cannot try variants after seeing S's share: a stranger
who learns a colleague's code gets one chance in 10^6 per request, not a
grind. Every frame and sealed message must be in its canonical encoding (re-encoded and
compared: one encoding per value), and so must the handshake payloads (see
``noise``). Cards must name the identity the handshake proved.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from . import codec, limits
from ._hashing import constant_time_equal, labelled_hash
from .errors import LocalProtocolError, MalformedMessage
from .identity import LocalIdentity, ProfileCard, normalize_fingerprint
from .noise import PROLOGUE, Handshake, RemotePeer, Session
from .noise import Role as NoiseRole
from .pairing import DISCOVERY_SECRET_SIZE, PairedPeer, check_address
from .pairing_reasons import PairingRefused, Reason

__all__ = [
    "PROLOGUE_FINGERPRINT",
    "Declined",
    "FingerprintEvent",
    "FingerprintPairing",
    "FingerprintRole",
    "Paired",
    "Send",
    "ShowCheckCode",
]

PROLOGUE_FINGERPRINT: Final = PROLOGUE + b"/pair-fingerprint"
_LABEL_CHECK: Final = b"pli/1/pair-fingerprint/check-code"
_LABEL_COMMIT: Final = b"pli/1/pair-fingerprint/commit"
_COMMIT_SIZE: Final = 32
_CODE_DIGITS: Final = 6


class FingerprintRole(enum.Enum):
    REQUESTER = "requester"  # typed the fingerprint, dials, Noise initiator
    RESPONDER = "responder"  # was asked; its person accepts or refuses


@dataclass(frozen=True)
class Send:
    """Bytes to send to the peer, in order."""

    data: bytes


@dataclass(frozen=True)
class ShowCheckCode:
    """Show ``code`` to the person, with ``fingerprint`` (the proved identity's, in full).

    The responder then calls ``decide``; ``peer`` is the requester as it describes
    itself (``None`` on the requester, which learns the responder's card last).
    """

    code: str
    fingerprint: str
    peer: PairedPeer | None


@dataclass(frozen=True)
class Paired:
    """Both sides agreed: store ``peer``."""

    peer: PairedPeer


@dataclass(frozen=True)
class Declined:
    """The responder's person declined (requester), or ours did (responder)."""

    reason: Reason


FingerprintEvent = Send | ShowCheckCode | Paired | Declined


class _State(enum.Enum):
    START = "requester, nothing sent"
    AWAIT_HELLO = "responder, awaiting message 1"
    AWAIT_NOISE_2 = "requester, awaiting message 2"
    AWAIT_NOISE_3 = "responder, awaiting message 3"
    AWAIT_REQUEST = "responder, awaiting message 4"
    AWAIT_DECISION = "responder, the person decides"
    AWAIT_ANSWER = "requester, awaiting message 5"
    DONE = "done"
    DEAD = "dead after an error"


# --- canonical frames ----------------------------------------------------------


def _canonical(data: bytes, kind: str, keys: Sequence[str], what: str) -> Mapping[str, Any]:
    """A map ``{"t": kind, keys...}`` whose bytes are exactly its canonical encoding."""
    fields = codec.as_map(codec.unpack(data), what)
    if fields.get("t") != kind or set(fields) != {"t", *keys}:
        raise MalformedMessage(f"{what}: not a {kind!r} message with the expected fields")
    if codec.pack({"t": kind, **{key: fields[key] for key in keys}}) != data:
        raise MalformedMessage(f"{what}: not in canonical form")
    return fields


def _bundle(kind: str, card: bytes, secret: bytes, addresses: Sequence[str]) -> bytes:
    return codec.pack({"t": kind, "card": card, "disco": secret, "addr": list(addresses)})


_BUNDLE_KEYS: Final = ("card", "disco", "addr")


def decode_bundle(data: bytes, kind: str, remote: RemotePeer, check_code: str) -> PairedPeer:
    """A request or accept bundle: canonical, its card naming the proved identity."""
    what = f"fingerprint pairing {kind}"
    fields = _canonical(data, kind, _BUNDLE_KEYS, what)
    card_wire = codec.field(fields, "card", bytes, what)
    card = ProfileCard.from_wire(card_wire)
    secret = codec.fixed_bytes(fields, "disco", DISCOVERY_SECRET_SIZE, what)
    addresses = codec.field(fields, "addr", list, what)
    if len(addresses) > limits.MAX_ADDRESSES:
        raise MalformedMessage(f"{what}: too many addresses")
    checked = tuple(check_address(a, f"{what} address") for a in addresses)
    if len(set(checked)) != len(checked):
        raise MalformedMessage(f"{what}: an address is repeated")
    if card.identity != remote.identity:
        raise PairingRefused(Reason.BAD_PEER, "the card names another identity")
    return PairedPeer(
        identity=remote.identity,
        static_cert=remote.cert,
        card=card,
        card_wire=card_wire,
        discovery_secret=secret,
        addresses=checked,
        sas=check_code,
    )


def commitment(identity: bytes, cert: bytes, request: bytes) -> bytes:
    """What message 1 commits the requester to (see the module docstring)."""
    return labelled_hash(_LABEL_COMMIT, identity, cert, request)


def check_code(session: Session) -> str:
    """The 6 digits both screens show; secret to everyone but the two ends."""
    value = int.from_bytes(session.export(_LABEL_CHECK, 8), "big")
    return f"{value % 10**_CODE_DIGITS:0{_CODE_DIGITS}d}"


def _pretty(canonical: str) -> str:
    return "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))


# --- the state machine -----------------------------------------------------------


class FingerprintPairing:
    """One fingerprint pairing, one side. Any exception leaves it dead.

    Requester: ``start()``, then ``receive(message 2)`` (→ messages 3 and 4 and
    the check code), then ``receive(message 5)`` (→ ``Paired`` or ``Declined``).
    Responder: ``receive(message 1)`` (→ message 2), ``receive(message 3)``,
    ``receive(message 4)`` (→ the check code and the requester), then
    ``decide(yes)`` (→ message 5 and ``Paired``, or ``Declined``).
    """

    def __init__(
        self,
        role: FingerprintRole,
        me: LocalIdentity,
        *,
        card: bytes,
        discovery_secret: bytes,
        addresses: Sequence[str],
        now: int,
        fingerprint: str | None = None,
        ephemeral_secret: bytes | None = None,
    ) -> None:
        if (fingerprint is None) != (role is FingerprintRole.RESPONDER):
            raise LocalProtocolError("the requester, and only it, gives the fingerprint")
        if len(discovery_secret) != DISCOVERY_SECRET_SIZE:
            raise LocalProtocolError("a discovery secret is 32 bytes")
        self._role = role
        self._me = me
        self._kind = "request" if role is FingerprintRole.REQUESTER else "accept"
        self._bundle = _bundle(self._kind, card, discovery_secret, addresses)
        self._wanted = normalize_fingerprint(fingerprint) if fingerprint is not None else ""
        noise_role = NoiseRole.INITIATOR if fingerprint is not None else NoiseRole.RESPONDER
        self._handshake = Handshake(
            noise_role,
            me,
            self._verify,
            now=now,
            prologue=PROLOGUE_FINGERPRINT,
            ephemeral_secret=ephemeral_secret,
        )
        self._state = _State.START if fingerprint is not None else _State.AWAIT_HELLO
        self._commit = b""
        self._session: Session | None = None
        self._peer: PairedPeer | None = None

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def check_code(self) -> str:
        return check_code(self._live_session())

    def start(self) -> list[FingerprintEvent]:
        """Message 1 (requester only)."""
        return self._run(_State.START, self._on_start)

    def receive(self, data: bytes) -> list[FingerprintEvent]:
        """The peer's next frame."""
        if not isinstance(data, bytes):
            raise LocalProtocolError("receive() takes bytes")
        step = _STEPS.get(self._state)
        if step is None:
            raise LocalProtocolError(f"receive() in state {self._state.value!r}")
        return self._run(self._state, lambda: step(self, data))

    def decide(self, yes: bool) -> list[FingerprintEvent]:
        """The responder's person accepted (``True``) or declined the request."""
        return self._run(_State.AWAIT_DECISION, lambda: self._on_decision(yes))

    # -- the table ------------------------------------------------------------------

    def _run(
        self, expected: _State, step: Callable[[], list[FingerprintEvent]]
    ) -> list[FingerprintEvent]:
        if self._state is not expected:
            raise LocalProtocolError(f"not possible in state {self._state.value!r}")
        try:
            events = step()
        except BaseException:
            self._state = _State.DEAD
            self._session = None
            raise
        self._state = _NEXT[self._state]
        return events

    def _on_start(self) -> list[FingerprintEvent]:
        cert = self._me.static_cert.to_wire()
        self._commit = commitment(self._me.public.key, cert, self._bundle)
        hello = self._handshake.initiate()
        return [Send(codec.pack({"t": "fingerprint", "msg": hello, "commit": self._commit}))]

    def _on_hello(self, data: bytes) -> list[FingerprintEvent]:
        fields = _canonical(data, "fingerprint", ("msg", "commit"), "fingerprint message 1")
        self._commit = codec.fixed_bytes(fields, "commit", _COMMIT_SIZE, "fingerprint message 1")
        reply = self._handshake.receive(codec.field(fields, "msg", bytes, "message 1"))
        return [Send(_noise_frame(reply))]

    def _on_noise_2(self, data: bytes) -> list[FingerprintEvent]:
        reply = self._handshake.receive(_noise_message(data, "fingerprint message 2"))
        session = self._session = self._handshake.session()
        sealed = codec.pack({"t": "sealed", "box": session.encrypt(self._bundle)})
        fingerprint = session.remote.peer_id.fingerprint
        code = ShowCheckCode(self.check_code, fingerprint, None)
        return [Send(_noise_frame(reply)), Send(sealed), code]

    def _on_noise_3(self, data: bytes) -> list[FingerprintEvent]:
        self._handshake.receive(_noise_message(data, "fingerprint message 3"))
        self._session = self._handshake.session()
        return []

    def _on_request(self, data: bytes) -> list[FingerprintEvent]:
        session = self._live_session()
        plain = self._open(data, "fingerprint message 4")
        remote = session.remote
        expected = commitment(remote.identity.key, remote.cert.to_wire(), plain)
        if not constant_time_equal(expected, self._commit):
            raise PairingRefused(Reason.BAD_COMMITMENT, "the request broke its commitment")
        peer = self._peer = decode_bundle(plain, "request", remote, self.check_code)
        return [ShowCheckCode(peer.sas, peer.peer_id.fingerprint, peer)]

    def _on_decision(self, yes: bool) -> list[FingerprintEvent]:
        session, peer = self._live_session(), self._peer
        if peer is None:  # pragma: no cover - guarded by the state
            raise LocalProtocolError("no request in this state")
        if not yes:
            refuse = codec.pack({"t": "refuse"})
            return [Send(_sealed(session, refuse)), Declined(Reason.YOU_DECLINED)]
        return [Send(_sealed(session, self._bundle)), Paired(peer)]

    def _on_answer(self, data: bytes) -> list[FingerprintEvent]:
        session = self._live_session()
        plain = self._open(data, "fingerprint message 5")
        if plain == codec.pack({"t": "refuse"}):
            return [Declined(Reason.DECLINED)]
        return [Paired(decode_bundle(plain, "accept", session.remote, self.check_code))]

    # -- helpers --------------------------------------------------------------------

    def _verify(self, remote: RemotePeer) -> None:
        if self._role is FingerprintRole.REQUESTER:
            if not remote.peer_id.matches_fingerprint(self._wanted):
                raise PairingRefused(Reason.NOT_THAT_PEER, f"not {_pretty(self._wanted)}")
        elif remote.identity == self._me.public:
            raise PairingRefused(Reason.REFLECTION, "a request from our own identity")

    def _live_session(self) -> Session:
        if self._session is None:
            raise LocalProtocolError("the handshake is not complete")
        return self._session

    def _open(self, data: bytes, what: str) -> bytes:
        fields = _canonical(data, "sealed", ("box",), what)
        return self._live_session().decrypt(codec.field(fields, "box", bytes, what))


def _noise_frame(message: bytes | None) -> bytes:
    if message is None:  # pragma: no cover - XX always answers messages 1 and 2
        raise LocalProtocolError("the handshake produced no message")
    return codec.pack({"t": "noise", "msg": message})


def _noise_message(data: bytes, what: str) -> bytes:
    return codec.field(_canonical(data, "noise", ("msg",), what), "msg", bytes, what)


def _sealed(session: Session, plaintext: bytes) -> bytes:
    return codec.pack({"t": "sealed", "box": session.encrypt(plaintext)})


_Step = Callable[[FingerprintPairing, bytes], list[FingerprintEvent]]

#: What a frame received in each state does (the state transitions, as data) ...
_STEPS: Final[Mapping[_State, _Step]] = {
    _State.AWAIT_HELLO: FingerprintPairing._on_hello,
    _State.AWAIT_NOISE_2: FingerprintPairing._on_noise_2,
    _State.AWAIT_NOISE_3: FingerprintPairing._on_noise_3,
    _State.AWAIT_REQUEST: FingerprintPairing._on_request,
    _State.AWAIT_ANSWER: FingerprintPairing._on_answer,
}

#: ... and the state after each successful step.
_NEXT: Final[Mapping[_State, _State]] = {
    _State.START: _State.AWAIT_NOISE_2,
    _State.AWAIT_NOISE_2: _State.AWAIT_ANSWER,
    _State.AWAIT_ANSWER: _State.DONE,
    _State.AWAIT_HELLO: _State.AWAIT_NOISE_3,
    _State.AWAIT_NOISE_3: _State.AWAIT_REQUEST,
    _State.AWAIT_REQUEST: _State.AWAIT_DECISION,
    _State.AWAIT_DECISION: _State.DONE,
}
