"""Pairing by fingerprint: ``pli peers add FINGERPRINT --address`` / ``pli peers accept``.

Part of the pairing service: ``pairing.py`` owns the attempts and the people,
this module only runs the exchange over a ``Pipe`` (no sockets, no clock, no
timeouts: the service bounds every call). Frames as in ``pairing_wire``::

    1  R → S  {"t": "fingerprint", "msg": Noise XX message 1}
    2  S → R  {"t": "noise", "msg": Noise XX message 2}
    3  R → S  {"t": "noise", "msg": Noise XX message 3}
    4  R → S  {"t": "sealed", "box": Noise transport message of
                {"t": "request", "card": bin, "disco": bin 32, "addr": [str]}}
    5  S → R  {"t": "sealed", "box": ... {"t": "accept", "card", "disco", "addr"}}
              or {"t": "sealed", "box": ... {"t": "refuse"}}

R is the requester (a person typed S's fingerprint), S the responder. The
handshake is ``protocol.Handshake`` (Noise XX, identity key and static
certificate in messages 2 and 3) with the prologue
``PROLOGUE ‖ b"/pair-fingerprint"``, so a pairing transcript can never pass for
a ``/pli/1/peer`` one. R's ``verify_remote`` refuses an S whose peer id does not
match the typed fingerprint (160 bits, check characters catch typos): R aborts
before message 3 and tells the wrong computer nothing about itself. S accepts
any identity but its own; it has not decided to trust R, a person will.

Messages 4 and 5 travel under the Noise session. ``card`` is the sender's signed
``ProfileCard``, which must name the identity the handshake proved; ``disco``
its discovery secret; ``addr`` up to 8 ``host:port``. S sends its own card and
secret only when its person accepts. Both screens show a 6-digit check code,
``BLAKE2b(key=h, data=b"pli/1/pair-fingerprint/sas", digest_size=8) mod 10^6``
of the handshake hash ``h``: the person accepting can tell their colleague's
request (same code on the phone) from a stranger's sent at the same moment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from p2p.services.pairing.wire import (
    NOT_THAT_PEER_MESSAGE,
    REJECTED_MESSAGE,
    Abort,
    Pipe,
    bin_field,
    clean_addresses,
    frame,
    garbled,
    parse,
    receive,
    send,
)
from protocol import (
    PROLOGUE,
    AuthenticationFailed,
    Handshake,
    LocalIdentity,
    PairedPeer,
    ProfileCard,
    RemotePeer,
    RemoteProtocolError,
    Role,
    Session,
    codec,
    limits,
    normalize_fingerprint,
)

PROLOGUE_FINGERPRINT: Final = PROLOGUE + b"/pair-fingerprint"
_SAS_LABEL: Final = b"pli/1/pair-fingerprint/sas"
_BUNDLE_KEYS: Final = frozenset({"t", "card", "disco", "addr"})


@dataclass(frozen=True)
class Bundle:
    """What one side tells the other about itself."""

    card: bytes
    discovery_secret: bytes
    addresses: tuple[str, ...]

    def message(self, kind: str) -> dict[str, Any]:
        return {
            "t": kind,
            "card": self.card,
            "disco": self.discovery_secret,
            "addr": list(self.addresses),
        }


def check_code(session: Session) -> str:
    """The 6 digits both screens show for this exchange."""
    key = session.handshake_hash[:64]
    digest = hashlib.blake2b(_SAS_LABEL, key=key, digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') % 10**6:06d}"


# --- requester ---------------------------------------------------------------------------------


async def request(
    me: LocalIdentity, pipe: Pipe, fingerprint: str, bundle: Bundle, *, now: int
) -> Session:
    """Messages 1-4 as the requester; ``fingerprint`` was checked (``normalize_fingerprint``)."""
    canonical = normalize_fingerprint(fingerprint)

    def verify(remote: RemotePeer) -> None:
        if not remote.peer_id.matches_fingerprint(canonical):
            raise AuthenticationFailed()

    handshake = Handshake(Role.INITIATOR, me, verify, now=now, prologue=PROLOGUE_FINGERPRINT)
    await send(pipe, frame("fingerprint", msg=handshake.initiate()))
    message_2 = bin_field(parse(await receive(pipe), "noise", ("msg",)), "msg")
    try:
        message_3 = handshake.receive(message_2)
    except AuthenticationFailed:
        pretty = "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))
        raise Abort(
            NOT_THAT_PEER_MESSAGE.format(address=pipe.remote_address, fingerprint=pretty)
        ) from None
    except RemoteProtocolError as exc:
        raise garbled() from exc
    if message_3 is None:  # pragma: no cover - XX always has a message 3
        raise garbled()
    await send(pipe, frame("noise", msg=message_3))
    session = handshake.session()
    await send(pipe, _seal(session, bundle.message("request")))
    return session


async def receive_answer(session: Session, pipe: Pipe, sas: str) -> PairedPeer | None:
    """Message 5 as the requester: the responder, or ``None`` if its person refused."""
    kind, fields = _open(session, await receive(pipe), ("accept", "refuse"))
    return None if kind == "refuse" else _peer(fields, session.remote, sas)


# --- responder ---------------------------------------------------------------------------------


async def answer_request(
    me: LocalIdentity, pipe: Pipe, message_1: bytes, *, now: int
) -> tuple[Session, PairedPeer]:
    """Messages 1-4 as the responder: the session and the requester as it describes itself."""

    def verify(remote: RemotePeer) -> None:
        if remote.identity == me.public:
            raise AuthenticationFailed()

    handshake = Handshake(Role.RESPONDER, me, verify, now=now, prologue=PROLOGUE_FINGERPRINT)
    try:
        message_2 = handshake.receive(message_1)
        if message_2 is None:  # pragma: no cover - XX always has a message 2
            raise garbled()
        await send(pipe, frame("noise", msg=message_2))
        handshake.receive(bin_field(parse(await receive(pipe), "noise", ("msg",)), "msg"))
    except RemoteProtocolError as exc:
        raise garbled() from exc
    session = handshake.session()
    _, fields = _open(session, await receive(pipe), ("request",))
    return session, _peer(fields, session.remote, check_code(session))


async def send_answer(session: Session, pipe: Pipe, bundle: Bundle | None) -> None:
    """Message 5 as the responder: accept with our bundle, or refuse (``None``)."""
    inner = bundle.message("accept") if bundle is not None else {"t": "refuse"}
    await send(pipe, _seal(session, inner))


# --- helpers -----------------------------------------------------------------------------------


def _seal(session: Session, inner: Mapping[str, Any]) -> bytes:
    return frame("sealed", box=session.encrypt(codec.pack(dict(inner))))


def _open(session: Session, data: bytes, kinds: tuple[str, ...]) -> tuple[str, Mapping[str, Any]]:
    box = bin_field(parse(data, "sealed", ("box",)), "box")
    try:
        fields = codec.as_map(codec.unpack(session.decrypt(box)), "pairing message")
        kind = codec.field(fields, "t", str, "pairing message")
    except RemoteProtocolError as exc:
        raise garbled() from exc
    if kind not in kinds or set(fields) != ({"t"} if kind == "refuse" else _BUNDLE_KEYS):
        raise garbled()
    return kind, fields


def _peer(fields: Mapping[str, Any], remote: RemotePeer, sas: str) -> PairedPeer:
    """The peer a bundle describes; its card must name the identity Noise proved."""
    what = "pairing bundle"
    try:
        card_wire = codec.field(fields, "card", bytes, what)
        card = ProfileCard.from_wire(card_wire)
        secret = codec.fixed_bytes(fields, "disco", 32, what)
        addresses = codec.field(fields, "addr", list, what)
    except RemoteProtocolError as exc:
        raise garbled() from exc
    if card.identity != remote.identity:
        raise Abort(REJECTED_MESSAGE, "rejected")
    if len(addresses) > limits.MAX_ADDRESSES or clean_addresses(addresses) != tuple(addresses):
        raise garbled()
    return PairedPeer(
        identity=remote.identity,
        static_cert=remote.cert,
        card=card,
        card_wire=card_wire,
        discovery_secret=secret,
        addresses=tuple(addresses),
        sas=sas,
    )
