"""Pairing: turning a one-time code read over the phone into a trusted peer.

This module is the sans-IO state machine of ``pli pair invite`` /
``pli pair accept`` and the pure helpers discovery needs. It never touches the
network, files or the clock: bytes go in, bytes come out, ``now`` is an
argument and randomness can be injected.

The codes and discovery hints are in ``pairing_codes``; keys, boxes and
bundles in ``pairing_crypto``. (This module is over 400 lines because about
140 of them are this specification, kept next to the code it specifies.)

Roles and primitives
====================

- **Inviter** (ran ``pli pair invite``; the server) is SPAKE2 side B,
  **invitee** (typed the code; dials) is SPAKE2 side A. ``spake2`` 0.9,
  asymmetric, default Ed25519 parameters, ``idA = b"pli/1/pair/invitee"``,
  ``idB = b"pli/1/pair/inviter"``. A SPAKE2 message is 33 bytes: the side
  byte (``0x41`` "A" or ``0x42`` "B") then the 32-byte group element.
  ``K`` is the 32-byte key ``spake2`` returns.
- ``H(label, p1, p2, ...)`` = ``protocol._hashing.labelled_hash``:
  BLAKE2b-256 over ``len(label) ‖ label ‖ len(p1) ‖ p1 ‖ ...``, each length
  4 bytes big-endian.
- ``KDF(label)`` = ``protocol._hashing.derive_key(K, label)``: BLAKE2b with
  ``key = K``, ``data = label``, 32-byte digest. Labels:
  ``b"pli/1/pair/bundle-A"``, ``b"pli/1/pair/bundle-B"``,
  ``b"pli/1/pair/confirm-A"``, ``b"pli/1/pair/confirm-B"``,
  ``b"pli/1/pair/secret-A"``, ``b"pli/1/pair/secret-B"``; the SAS uses
  ``b"pli/1/pair/sas"`` with an 8-byte digest (BLAKE2b ``digest_size=8``).
- ``SEAL(k, plaintext, ad)`` = XChaCha20-Poly1305-IETF (libsodium
  ``crypto_aead_xchacha20poly1305_ietf_encrypt``) with a nonce of 24 zero
  bytes; the output is ciphertext ‖ 16-byte tag. Each box key encrypts exactly
  one message: see ``_NONCE`` for why a fixed nonce is safe here.
- ``MAC(k, data)`` = HMAC (RFC 2104) with BLAKE2b-512 (block 128 bytes), the
  full 64-byte tag, compared in constant time.
- ``commit = H(b"pli/1/pair/commit", nameplate, msgA)`` (``msgA`` with its
  side byte).
- Transcripts, label ``b"pli/1/pair/transcript"``:
  ``T0 = H(label, nameplate, commit, msgA, msgB)``,
  ``T1 = H(label, nameplate, commit, msgA, msgB, boxA)``,
  ``T2 = H(label, nameplate, commit, msgA, msgB, boxA, boxB)``.

Bundle (what each side learns about the other)
==============================================

A msgpack map, exactly these keys, in this order::

    {"id": bin 32     the sender's Ed25519 identity key,
     "cert": bin 104  StaticCert.to_wire() (X25519 transport key, not_after, signature),
     "card": bin      the sender's signed ProfileCard (ProfileCard.sign),
     "addr": [str]    0..8 "host:port" strings where the sender listens,
     "sig": bin 64    Sign(id, "pli/1/pair/bundle-sig", side ‖ T ‖ the same map
                      without "sig"), side "A" with T0 (invitee), "B" with T1 (inviter)}

The signature proves that the sender holds the identity key in *this*
session (the card and certificate are public: anybody could forward them).
The bundle must be in its one canonical encoding (re-encoded and compared).
The discovery secret is not in the bundle: it travels in message 5, after
both people compared the SAS.

On receipt: strict, canonical shape; ``id`` must not be our own identity
(reflection: pairing with oneself); the cert's transport key must not be ours;
the cert must verify under ``id`` and ``now <= not_after``; the signature must
verify under ``id``; the card must verify and name ``id``.

Messages
========

Each message is one msgpack map (``protocol.codec``, strict: exactly these
keys, bytes as bin, ``t`` first)::

    1 invitee → inviter  {"t": "pake", "nameplate": "NNN", "commit": bin 32}
    2 inviter → invitee  {"t": "pake", "msg": msgB (bin 33)}
    3 invitee → inviter  {"t": "confirm", "msg": msgA (bin 33),
                          "box": boxA = SEAL(KDF(bundle-A), bundleA, T0),
                          "mac": macA = MAC(KDF(confirm-A), "A" ‖ T1 ‖ idA)}
    4 inviter → invitee  {"t": "confirm",
                          "box": boxB = SEAL(KDF(bundle-B), bundleB, T1),
                          "mac": macB = MAC(KDF(confirm-B), "B" ‖ T2 ‖ idA ‖ idB)}

``idA`` / ``idB`` here are the invitee's / inviter's 32-byte Ed25519 identity
keys (from the bundles). The inviter, on message 3: checks ``commit`` against
``msgA``, finishes SPAKE2, opens ``boxA``, checks ``macA``, checks bundle A,
answers message 4 and is ``complete``. The invitee, on message 4: opens ``boxB``,
checks ``macB`` and bundle B, and is ``complete``. Both show the SAS. Then,
once **both** people confirmed (the service exchanges their decisions; see
``p2p/services/pairing/code.py``), each side sends::

    5 both ways  {"t": "secret", "box": SEAL(KDF(secret-A or secret-B), disco, T2)}

(``secret-A`` from the invitee, ``secret-B`` from the inviter; ``disco`` is the
sender's 32-byte discovery secret) and, on the peer's, is ``secret_received``:
``result()`` then carries the peer's secret. A refused SAS sends no secret.
Any failure of the commitment, SPAKE2, a box or a MAC is
``PairingRefused(WRONG_CODE)`` (an ``AuthenticationFailed``).

Why the invitee commits first
-----------------------------

The SAS is the second line of defence, for a code that leaked (overheard in a
waiting room, read on a screen). A man in the middle who knows the code runs
one SPAKE2 with each side; the two keys then differ and so, with probability
1 - 10^-6, do the two SAS. But if in either session the attacker could choose
its SPAKE2 share *after* the honest one, it could try ~10^6 shares offline until
both SAS match. Sending ``msgA`` at once (the first plan) gives it exactly
that chance in the session where it plays the inviter. So the invitee first
sends only ``commit``, and reveals ``msgA`` in message 3, after ``msgB``: in
each session the attacker fixes its share before it can know the resulting
key, and the two SAS agree only by a one-in-a-million chance. The message count
and the roles stay the same; the inviter's bundle now travels last, after the
inviter has seen proof that the invitee knows the code.

SAS
===

``SAS = "%06d" % (int.from_bytes(BLAKE2b(key=K, data=b"pli/1/pair/sas",
digest_size=8), "big") % 10**6)``: the same six digits on both screens when
both sides hold the same key. Both people compare before the peer is stored.

One attempt per code
====================

``code_used`` turns true on the inviter once it has answered a message 1, and
on the invitee once it has sent one. From then on the code is spent: the
inviter must close the invitation if this session fails **or is abandoned**
(otherwise an attacker who knows the code could open sessions until the SAS
matched, and one who does not could make more than one guess). A message 1 for
another nameplate (``MalformedMessage`` with code ``"wrong-nameplate"``) does
not spend the code. A wrong code is detected by the inviter at message 3; the
invitee learns it from the inviter's error or a closed connection.

After any error, misuse included, a ``Pairing`` is dead: every later call raises
``LocalProtocolError``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from nacl import utils as nacl_utils

from . import codec, limits
from ._hashing import constant_time_equal
from .errors import AuthenticationFailed, LocalProtocolError, MalformedMessage, RemoteProtocolError
from .identity import LocalIdentity, PeerId, ProfileCard, PublicIdentity, StaticCert
from .pairing_codes import (
    DISCOVERY_SECRET_SIZE,
    NAMEPLATE_DIGITS,
    BadCode,
    Entropy,
    PairingCode,
    check_secret,
    discovery_hint,
    hint_matches,
    is_digits,
    new_code,
    new_discovery_secret,
    parse_code,
)
from .pairing_crypto import (
    COMMIT_SIZE,
    ID_INVITEE,
    ID_INVITER,
    MAC_SIZE,
    SIDE_A,
    SIDE_B,
    TAG_SIZE,
    WRONG_CODE_MESSAGE,
    Keys,
    RawBundle,
    check_address,
    commit,
    decode_bundle,
    encode_bundle,
    mac,
    message,
    open_box,
    seal,
    spake_field,
    spake_finish,
    spake_start,
    transcript,
    verify_bundle,
)
from .pairing_reasons import PairingRefused, Reason

__all__ = [
    "BAD_PEER_MESSAGE",
    "DISCOVERY_SECRET_SIZE",
    "EXPIRED_PEER_MESSAGE",
    "REFLECTION_MESSAGE",
    "WRONG_CODE_MESSAGE",
    "BadCode",
    "Entropy",
    "PairedPeer",
    "Pairing",
    "PairingCode",
    "Role",
    "check_address",
    "discovery_hint",
    "hint_matches",
    "new_code",
    "new_discovery_secret",
    "parse_code",
]

REFLECTION_MESSAGE: Final = (
    "This computer tried to pair with itself (both sides have the same identity). "
    "Nothing was saved. Run 'pli pair accept' on the other practice's computer."
)
BAD_PEER_MESSAGE: Final = (
    "The other computer knew the code but sent identity details that do not check out. "
    "Nothing was saved. Ask the other practice to update pli, then make a new invitation."
)
EXPIRED_PEER_MESSAGE: Final = (
    "The other practice's pli keys have expired, or one of the two computers has the "
    "wrong date. Nothing was saved. Check both clocks, then make a new invitation."
)


class Role(enum.Enum):
    """Which side of the pairing we are."""

    INVITER = "inviter"  # ran `pli pair invite`, listens, SPAKE2 side B
    INVITEE = "invitee"  # typed the code, dials, SPAKE2 side A


@dataclass(frozen=True)
class PairedPeer:
    """What a completed pairing learned about the other side. Store it only after
    both people confirmed that their screens show the same ``sas`` and the peer's
    discovery secret arrived (code pairing: ``Pairing.secret_received``)."""

    identity: PublicIdentity
    static_cert: StaticCert
    card: ProfileCard
    card_wire: bytes = field(repr=False)
    discovery_secret: bytes = field(repr=False)
    addresses: tuple[str, ...]
    sas: str

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id


class _State(enum.Enum):
    START = "start"  # invitee: start() not called yet
    WAIT_PAKE = "wait-pake"  # inviter: awaiting message 1
    WAIT_REPLY = "wait-reply"  # invitee: awaiting message 2
    WAIT_CONFIRM_A = "wait-confirm-a"  # inviter: awaiting message 3
    WAIT_CONFIRM_B = "wait-confirm-b"  # invitee: awaiting message 4
    WAIT_SECRET = "wait-secret"  # noqa: S105 - a state name. Keys confirmed, SAS shown: awaiting the peer's secret
    DONE = "done"
    DEAD = "dead"


class Pairing:
    """One pairing attempt, one side. h11 style: bytes in, bytes out.

    Invitee: ``m1 = start()``, then ``m3 = receive(m2)``, then ``receive(m4)``
    returns ``None`` and ``complete`` is true. Inviter: ``m2 = receive(m1)``,
    ``m4 = receive(m3)``, then ``complete`` is true. Both then show ``sas``;
    once both people confirmed, each sends ``secret_message()`` and passes the
    peer's to ``receive`` (→ ``None``, ``secret_received``). ``result()`` gives
    the peer (its ``discovery_secret`` is empty until ``secret_received``).
    Any exception leaves the object dead.
    """

    def __init__(
        self,
        role: Role,
        code: PairingCode,
        me: LocalIdentity,
        my_card: bytes,
        my_discovery_secret: bytes,
        *,
        now: int,
        my_addresses: Sequence[str] = (),
        entropy: Entropy | None = None,
    ) -> None:
        if not isinstance(role, Role):
            raise LocalProtocolError("role must be a pairing Role")
        if not isinstance(code, PairingCode):
            raise LocalProtocolError("code must be a PairingCode (see parse_code)")
        self._addresses = _check_local(me, my_card, my_discovery_secret, now, my_addresses)
        self._role = role
        self._code = code
        self._local = me
        self._me: PublicIdentity = me.public
        self._card = my_card
        self._secret = my_discovery_secret
        self._now = now
        self._entropy: Entropy = entropy if entropy is not None else nacl_utils.random
        self._state = _State.START if role is Role.INVITEE else _State.WAIT_PAKE
        self._code_used = False
        self._spake: Any = None
        self._commit = b""
        self._msg_a = b""
        self._msg_b = b""
        self._box_a = b""
        self._t2 = b""
        self._keys: Keys | None = None
        self._secret_sent = False
        self._result: PairedPeer | None = None

    def __repr__(self) -> str:
        return f"Pairing({self._role.value}, {self._state.value})"

    # -- public API --------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def complete(self) -> bool:
        """Messages 1-4 done and both keys confirmed: show the SAS."""
        return self._state in (_State.WAIT_SECRET, _State.DONE)

    @property
    def secret_received(self) -> bool:
        """The peer's discovery secret arrived: ``result()`` is ready to store."""
        return self._state is _State.DONE

    @property
    def failed(self) -> bool:
        return self._state is _State.DEAD

    @property
    def code_used(self) -> bool:
        """True once this code has been put to a test: it must not be offered again
        unless this session completes."""
        return self._code_used

    def start(self) -> bytes:
        """Message 1 (invitee only)."""
        self._check_alive()
        try:
            return self._start()
        except BaseException:
            self._die()
            raise

    def receive(self, message: bytes) -> bytes | None:
        """Handle the peer's next message; return our reply, or ``None`` when none."""
        self._check_alive()
        try:
            return self._receive(message)
        except BaseException:
            self._die()
            raise

    def secret_message(self) -> bytes:
        """Message 5: our discovery secret, sealed. Call it only once **both** people
        confirmed the SAS (never after a refusal): it is what they guard."""
        self._check_alive()
        keys = self._keys
        if not self.complete or keys is None:
            raise LocalProtocolError("the SAS is not confirmed yet")
        if self._secret_sent:
            raise LocalProtocolError("the secret was already sent")
        self._secret_sent = True
        key = keys.secret_a if self._role is Role.INVITEE else keys.secret_b
        return codec.pack({"t": "secret", "box": seal(key, self._secret, self._t2)})

    def result(self) -> PairedPeer:
        """The peer, once ``complete``. Show ``sas`` to the person; store it only
        once ``secret_received``."""
        if self._result is None or not self.complete:
            raise LocalProtocolError("the pairing is not complete")
        return self._result

    # -- internals ---------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._state is _State.DEAD:
            raise LocalProtocolError("this pairing failed earlier; make a new invitation")

    def _die(self) -> None:
        self._state = _State.DEAD
        self._spake = None
        self._keys = None
        self._result = None

    def _start(self) -> bytes:
        if self._role is not Role.INVITEE:
            raise LocalProtocolError("only the invitee calls start(); the inviter waits")
        if self._state is not _State.START:
            raise LocalProtocolError("start() was already called")
        self._code_used = True
        from spake2 import SPAKE2_A  # imported on use: it loads `cryptography` (~7 MiB)

        self._spake = SPAKE2_A(
            self._code.password, idA=ID_INVITEE, idB=ID_INVITER, entropy_f=self._entropy
        )
        self._msg_a = spake_start(self._spake)
        self._commit = commit(self._code.nameplate, self._msg_a)
        self._state = _State.WAIT_REPLY
        return codec.pack({"t": "pake", "nameplate": self._code.nameplate, "commit": self._commit})

    def _receive(self, data: bytes) -> bytes | None:
        if not isinstance(data, bytes):
            raise LocalProtocolError("receive() takes the message as bytes")
        step = _STEPS.get(self._state)
        if step is not None:
            return step(self, data)
        if self._state is _State.START:
            raise LocalProtocolError("the invitee calls start() before receive()")
        raise LocalProtocolError("the pairing is already complete")

    def _on_message_1(self, data: bytes) -> bytes:
        """Inviter: the invitee's commitment. Answer with our SPAKE2 message."""
        what = "pairing message 1"
        fields = message(data, ("t", "nameplate", "commit"), "pake", what)
        nameplate = codec.field(fields, "nameplate", str, what)
        if not is_digits(nameplate, NAMEPLATE_DIGITS):
            raise MalformedMessage(f"{what}: a nameplate is 3 digits")
        if nameplate != self._code.nameplate:
            raise MalformedMessage(
                f"{what}: this is for invitation {nameplate}, not {self._code.nameplate}",
                code="wrong-nameplate",
            )
        self._commit = codec.fixed_bytes(fields, "commit", COMMIT_SIZE, what)
        self._code_used = True
        from spake2 import SPAKE2_B  # imported on use: it loads `cryptography` (~7 MiB)

        self._spake = SPAKE2_B(
            self._code.password, idA=ID_INVITEE, idB=ID_INVITER, entropy_f=self._entropy
        )
        self._msg_b = spake_start(self._spake)
        self._state = _State.WAIT_CONFIRM_A
        return codec.pack({"t": "pake", "msg": self._msg_b})

    def _on_message_2(self, data: bytes) -> bytes:
        """Invitee: the inviter's SPAKE2 message. Reveal ours, send our bundle and MAC."""
        what = "pairing message 2"
        fields = message(data, ("t", "msg"), "pake", what)
        self._msg_b = spake_field(fields, SIDE_B, what)
        keys = self._keys = Keys.derive(spake_finish(self._spake, self._msg_b))
        self._spake = None
        nameplate = self._code.nameplate
        t0 = transcript(nameplate, self._commit, self._msg_a, self._msg_b)
        bundle = encode_bundle(self._local, self._card, self._addresses, t0, SIDE_A)
        self._box_a = seal(keys.bundle_a, bundle, t0)
        t1 = transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a)
        mac_a = mac(keys.confirm_a, SIDE_A, t1, self._me.key)
        self._state = _State.WAIT_CONFIRM_B
        return codec.pack({"t": "confirm", "msg": self._msg_a, "box": self._box_a, "mac": mac_a})

    def _on_message_3(self, data: bytes) -> bytes:
        """Inviter: the invitee's reveal, bundle and MAC. Check all, send ours."""
        what = "pairing message 3"
        fields = message(data, ("t", "msg", "box", "mac"), "confirm", what)
        msg_a = spake_field(fields, SIDE_A, what)
        box_a = codec.field(fields, "box", bytes, what)
        mac_a = codec.fixed_bytes(fields, "mac", MAC_SIZE, what)
        nameplate = self._code.nameplate
        if not constant_time_equal(commit(nameplate, msg_a), self._commit):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        keys = self._keys = Keys.derive(spake_finish(self._spake, msg_a))
        self._spake = None
        t0 = transcript(nameplate, self._commit, msg_a, self._msg_b)
        raw = decode_bundle(open_box(keys.bundle_a, box_a, t0))
        t1 = transcript(nameplate, self._commit, msg_a, self._msg_b, box_a)
        if not constant_time_equal(mac_a, mac(keys.confirm_a, SIDE_A, t1, raw.identity.key)):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        peer = self._accept(raw, keys.sas, t0, SIDE_A)
        bundle = encode_bundle(self._local, self._card, self._addresses, t1, SIDE_B)
        box_b = seal(keys.bundle_b, bundle, t1)
        self._t2 = transcript(nameplate, self._commit, msg_a, self._msg_b, box_a, box_b)
        mac_b = mac(keys.confirm_b, SIDE_B, self._t2, raw.identity.key, self._me.key)
        self._confirmed(peer)
        return codec.pack({"t": "confirm", "box": box_b, "mac": mac_b})

    def _on_message_4(self, data: bytes) -> None:
        """Invitee: the inviter's bundle and MAC."""
        what = "pairing message 4"
        fields = message(data, ("t", "box", "mac"), "confirm", what)
        box_b = codec.field(fields, "box", bytes, what)
        mac_b = codec.fixed_bytes(fields, "mac", MAC_SIZE, what)
        keys = self._keys
        if keys is None:  # pragma: no cover - guarded by the state
            raise LocalProtocolError("no key in this state")
        nameplate = self._code.nameplate
        t1 = transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a)
        raw = decode_bundle(open_box(keys.bundle_b, box_b, t1))
        self._t2 = transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a, box_b)
        expected = mac(keys.confirm_b, SIDE_B, self._t2, self._me.key, raw.identity.key)
        if not constant_time_equal(mac_b, expected):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        self._confirmed(self._accept(raw, keys.sas, t1, SIDE_B))

    def _on_secret(self, data: bytes) -> None:
        """Both: the peer's discovery secret, after both people confirmed."""
        what = "pairing message 5"
        fields = message(data, ("t", "box"), "secret", what)
        keys, peer = self._keys, self._result
        if keys is None or peer is None:  # pragma: no cover - guarded by the state
            raise LocalProtocolError("no key in this state")
        theirs = keys.secret_b if self._role is Role.INVITEE else keys.secret_a
        secret = open_box(theirs, codec.field(fields, "box", bytes, what), self._t2)
        if len(secret) != DISCOVERY_SECRET_SIZE:
            raise MalformedMessage(f"{what}: a discovery secret is 32 bytes")
        self._result = replace(peer, discovery_secret=secret)
        self._state = _State.DONE
        self._keys = None if self._secret_sent else keys

    def _accept(self, raw: RawBundle, sas: str, signed_over: bytes, side: bytes) -> PairedPeer:
        """The checks on an authenticated bundle: reflection, certificate, signature, card."""
        if raw.identity == self._me:
            raise PairingRefused(Reason.REFLECTION, REFLECTION_MESSAGE)
        if constant_time_equal(raw.cert.static_public, self._local.static_cert.static_public):
            raise PairingRefused(Reason.BAD_PEER, BAD_PEER_MESSAGE)  # our transport key
        if self._now > raw.cert.not_after:
            raise PairingRefused(Reason.EXPIRED_PEER, EXPIRED_PEER_MESSAGE)
        try:
            raw.cert.verify(raw.identity, now=self._now)
            verify_bundle(raw, signed_over, side)
            card = ProfileCard.from_wire(raw.card_wire)
        except AuthenticationFailed as exc:
            raise PairingRefused(Reason.BAD_PEER, BAD_PEER_MESSAGE) from exc
        if card.identity != raw.identity:
            raise PairingRefused(Reason.BAD_PEER, BAD_PEER_MESSAGE)
        return PairedPeer(
            identity=raw.identity,
            static_cert=raw.cert,
            card=card,
            card_wire=raw.card_wire,
            discovery_secret=b"",
            addresses=raw.addresses,
            sas=sas,
        )

    def _confirmed(self, peer: PairedPeer) -> None:
        self._result = peer
        self._state = _State.WAIT_SECRET


def _check_local(
    me: LocalIdentity, card_wire: bytes, secret: bytes, now: int, addresses: Sequence[str]
) -> tuple[str, ...]:
    """Our own side, checked before any message: our addresses, as we will send them."""
    if not isinstance(me, LocalIdentity):
        raise LocalProtocolError("me must be a LocalIdentity")
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise LocalProtocolError("now is a POSIX time in whole seconds")
    check_secret(secret)
    if not isinstance(card_wire, bytes):
        raise LocalProtocolError("my_card is the signed card, as bytes")
    try:
        card = ProfileCard.from_wire(card_wire)
    except RemoteProtocolError as exc:
        raise LocalProtocolError("our own profile card does not verify") from exc
    if card.identity != me.public:
        raise LocalProtocolError("our profile card belongs to another identity")
    if now > me.static_cert.not_after:
        raise LocalProtocolError("our transport certificate has expired; renew it first")
    try:
        checked = tuple(check_address(a, "our address") for a in addresses)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(str(exc)) from exc
    if len(checked) > limits.MAX_ADDRESSES:
        raise LocalProtocolError("too many addresses to announce")
    largest = encode_bundle(me, card_wire, checked, bytes(32), SIDE_A)
    if len(largest) + TAG_SIZE > limits.MAX_BIN_LEN:
        raise LocalProtocolError("our profile card is too large to send")
    return checked


#: What a message received in each state does (the transitions, as data).
_STEPS: Final = {
    _State.WAIT_PAKE: Pairing._on_message_1,
    _State.WAIT_REPLY: Pairing._on_message_2,
    _State.WAIT_CONFIRM_A: Pairing._on_message_3,
    _State.WAIT_CONFIRM_B: Pairing._on_message_4,
    _State.WAIT_SECRET: Pairing._on_secret,
}
