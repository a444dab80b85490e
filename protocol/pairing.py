"""Pairing: turning a one-time code read over the phone into a trusted peer.

This module is the sans-IO state machine of ``pli pair invite`` /
``pli pair accept`` and the pure helpers discovery needs. It never touches the
network, files or the clock: bytes go in, bytes come out, ``now`` is an
argument and randomness can be injected.

Code
====

``NNN-DDDDDDD``: a 3-digit **nameplate** (public: it finds the invitation and is
advertised over mDNS as ``pair=NNN`` while the invitation is open) and 7
**secret digits** (log2(10^7) ≈ 23.3 bits). Both parts are drawn uniformly
(rejection sampling over 8 random bytes). ``parse_code`` drops all white space,
accepts any dash-like character or no dash at all (10 digits), and raises
``BadCode`` with a sentence a person can act on.

SPAKE2 password: ``PW = b"pli/1/pair" ‖ nameplate ‖ b"-" ‖ secret`` (ASCII),
e.g. ``b"pli/1/pair314-1592653"``.

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
  ``b"pli/1/pair/confirm-A"``, ``b"pli/1/pair/confirm-B"``; the SAS uses
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
     "disco": bin 32  the sender's discovery secret (see "Discovery hint"),
     "addr": [str]    0..8 "host:port" strings where the sender listens}

On receipt: strict shape; ``id`` must not be our own identity (reflection:
pairing with oneself); the cert's transport key must not be ours; the cert must
verify under ``id`` and ``now <= not_after``; the card must verify and name
``id``.

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
answers message 4 and is complete. The invitee, on message 4: opens ``boxB``,
checks ``macB`` and bundle B, and is complete. Any failure of the commitment,
SPAKE2, a box or a MAC is ``AuthenticationFailed(WRONG_CODE_MESSAGE)``.

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

Discovery hint
==============

``hint = hex(HMAC-BLAKE2b-512(secret, b"pli/1/hint" ‖ u64be(now // 3600))[:8])``:
16 lower-case hex characters, published in the mDNS TXT record. Only peers that
received ``secret`` at pairing recognise it; ``hint_matches`` accepts the
previous, current and next hour (clock skew at the hour boundary).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from nacl import bindings as nacl_bindings
from nacl import exceptions as nacl_exceptions
from nacl import utils as nacl_utils

from . import codec, limits
from ._hashing import constant_time_equal, derive_key, labelled_hash
from .errors import (
    AuthenticationFailed,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
)
from .identity import (
    KEY_SIZE,
    LocalIdentity,
    PeerId,
    ProfileCard,
    PublicIdentity,
    StaticCert,
)
from .pairing_reasons import PairingRefused, Reason

__all__ = [
    "BAD_PEER_MESSAGE",
    "EXPIRED_PEER_MESSAGE",
    "REFLECTION_MESSAGE",
    "WRONG_CODE_MESSAGE",
    "BadCode",
    "Entropy",
    "PairedPeer",
    "Pairing",
    "PairingCode",
    "Role",
    "discovery_hint",
    "hint_matches",
    "new_code",
    "new_discovery_secret",
    "parse_code",
]

#: A source of random bytes, like ``os.urandom``: ``entropy(n)`` returns n bytes.
Entropy = Callable[[int], bytes]

WRONG_CODE_MESSAGE: Final = (
    "The pairing code was wrong, or someone tried to intercept the pairing. "
    "Nothing was saved. Make a new invitation and try again."
)
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

# --- labels and sizes ------------------------------------------------------------

_PASSWORD_PREFIX: Final = b"pli/1/pair"
_ID_INVITEE: Final = b"pli/1/pair/invitee"
_ID_INVITER: Final = b"pli/1/pair/inviter"
_LABEL_COMMIT: Final = b"pli/1/pair/commit"
_LABEL_TRANSCRIPT: Final = b"pli/1/pair/transcript"
_LABEL_BUNDLE_A: Final = b"pli/1/pair/bundle-A"
_LABEL_BUNDLE_B: Final = b"pli/1/pair/bundle-B"
_LABEL_CONFIRM_A: Final = b"pli/1/pair/confirm-A"
_LABEL_CONFIRM_B: Final = b"pli/1/pair/confirm-B"
_LABEL_SAS: Final = b"pli/1/pair/sas"
_LABEL_HINT: Final = b"pli/1/hint"

_SIDE_A: Final = b"A"
_SIDE_B: Final = b"B"
_SPAKE_MESSAGE_SIZE: Final = 33  # side byte + Ed25519 group element
_COMMIT_SIZE: Final = 32
_MAC_SIZE: Final = 64
_TAG_SIZE: Final = 16
_SAS_DIGITS: Final = 6

#: The AEAD nonce: fixed, all zero. Safe because a nonce only has to be unique
#: per key, and each box key encrypts exactly one message: it is derived from a
#: SPAKE2 key that contains the sender's fresh random share (so it is new in
#: every session, whatever the peer sends), the A and B directions use separate
#: labels, and the state machine seals each box once. This is how Noise treats
#: its first handshake key. A random nonce would add 24 bytes and no safety (a
#: broken random source breaks SPAKE2 first), and the fixed one makes the whole
#: exchange reproducible from pinned entropy, for test vectors.
_NONCE: Final = bytes(24)

DISCOVERY_SECRET_SIZE: Final = 32
HINT_PERIOD: Final = 3600
_HINT_BYTES: Final = 8

_NAMEPLATE_DIGITS: Final = 3
_SECRET_DIGITS: Final = 7
_CODE_EXAMPLE: Final = "314-1592653"
_MAX_ADDRESS_LEN: Final = 260
_PORT = re.compile(r"[0-9]{1,5}")


# --- codes -----------------------------------------------------------------------


class BadCode(MalformedMessage):
    """A pairing code typed by a person is not well formed; ``str()`` says why."""

    code = "bad-code"


@dataclass(frozen=True)
class PairingCode:
    """``NNN-DDDDDDD``: public nameplate and secret digits. ``repr`` hides the secret."""

    nameplate: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for value, size, what in (
            (self.nameplate, _NAMEPLATE_DIGITS, "nameplate"),
            (self.secret, _SECRET_DIGITS, "secret"),
        ):
            if not isinstance(value, str) or not _is_digits(value, size):
                raise BadCode(f"the {what} of a pairing code is {size} digits")

    def __str__(self) -> str:
        return f"{self.nameplate}-{self.secret}"

    @property
    def password(self) -> bytes:
        """The SPAKE2 password: ``b"pli/1/pair" ‖ nameplate ‖ "-" ‖ secret``."""
        return _PASSWORD_PREFIX + str(self).encode("ascii")


def _is_digits(value: str, size: int) -> bool:
    return len(value) == size and all("0" <= ch <= "9" for ch in value)


def _draw(rng: Entropy, size: int) -> bytes:
    value = rng(size)
    if not isinstance(value, bytes) or len(value) != size:
        raise LocalProtocolError(f"the random source must return {size} bytes")
    return value


def _uniform(rng: Entropy, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` by rejection sampling over 64 bits."""
    limit = (1 << 64) - (1 << 64) % bound
    for _ in range(64):  # each try is rejected with probability < 2**-40
        value = int.from_bytes(_draw(rng, 8), "big")
        if value < limit:
            return value % bound
    raise LocalProtocolError("the random source looks broken")


def new_code(rng: Entropy = nacl_utils.random) -> PairingCode:
    """A fresh code: uniform 3-digit nameplate and 7 secret digits."""
    nameplate = _uniform(rng, 10**_NAMEPLATE_DIGITS)
    secret = _uniform(rng, 10**_SECRET_DIGITS)
    return PairingCode(f"{nameplate:0{_NAMEPLATE_DIGITS}d}", f"{secret:0{_SECRET_DIGITS}d}")


_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−_", "-"))


def parse_code(text: str) -> PairingCode:
    """Read a code typed by a person. Raises ``BadCode`` with a readable reason."""
    if not isinstance(text, str):
        raise BadCode("The pairing code must be typed as text.")
    cleaned = "".join(text.split()).translate(_DASHES)
    if not cleaned:
        raise BadCode(
            "Please type the pairing code shown on the other computer, "
            f"for example {_CODE_EXAMPLE}."
        )
    if len(cleaned) > 32 or any(not ("0" <= ch <= "9" or ch == "-") for ch in cleaned):
        raise BadCode(
            "A pairing code has only digits and one dash, for example "
            f"{_CODE_EXAMPLE}. Please check what you typed."
        )
    if cleaned.count("-") > 1:
        raise BadCode(
            f"A pairing code has one dash, after the first three digits, for example "
            f"{_CODE_EXAMPLE}. Please check what you typed."
        )
    if "-" in cleaned:
        nameplate, _, secret = cleaned.partition("-")
    elif len(cleaned) == _NAMEPLATE_DIGITS + _SECRET_DIGITS:
        nameplate, secret = cleaned[:_NAMEPLATE_DIGITS], cleaned[_NAMEPLATE_DIGITS:]
    else:
        raise BadCode(
            f"A pairing code has 10 digits: 3, a dash, then 7 (for example {_CODE_EXAMPLE}). "
            f"What you typed has {len(cleaned)}. Please check it."
        )
    if len(nameplate) != _NAMEPLATE_DIGITS:
        raise BadCode(
            f"A pairing code starts with 3 digits before the dash (for example {_CODE_EXAMPLE}); "
            f"what you typed has {len(nameplate)}. Please check it."
        )
    if len(secret) != _SECRET_DIGITS:
        raise BadCode(
            f"A pairing code has 7 digits after the dash (for example {_CODE_EXAMPLE}); "
            f"what you typed has {len(secret)}. Please check it."
        )
    return PairingCode(nameplate, secret)


# --- discovery helpers -------------------------------------------------------------


def new_discovery_secret(rng: Entropy = nacl_utils.random) -> bytes:
    """A fresh 32-byte discovery secret (handed to peers at pairing)."""
    return _draw(rng, DISCOVERY_SECRET_SIZE)


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != DISCOVERY_SECRET_SIZE:
        raise LocalProtocolError("a discovery secret is 32 bytes")


def discovery_hint(secret: bytes, hour: int) -> str:
    """The mDNS hint for ``hour`` (= ``now // 3600``): 16 lower-case hex characters."""
    _check_secret(secret)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour < 2**64:
        raise LocalProtocolError("the hour of a discovery hint is an unsigned 64-bit integer")
    digest = hmac.new(secret, _LABEL_HINT + hour.to_bytes(8, "big"), hashlib.blake2b).digest()
    return digest[:_HINT_BYTES].hex()


def hint_matches(secret: bytes, hint: str, now: int) -> bool:
    """Whether ``hint`` (untrusted, from mDNS) was made with ``secret`` near ``now``.

    The previous, current and next hour are accepted: clocks drift, and an
    advertisement made just before the hour is read just after it.
    """
    _check_secret(secret)
    if isinstance(now, bool) or not isinstance(now, int):
        raise LocalProtocolError("now is a POSIX time in whole seconds")
    if not isinstance(hint, str) or len(hint) != 2 * _HINT_BYTES or not hint.isascii():
        return False
    candidate = hint.lower().encode("ascii")
    hour = now // HINT_PERIOD
    matched = False
    for near in (hour - 1, hour, hour + 1):
        if 0 <= near < 2**64:
            # No early exit: the time taken does not tell which hour matched.
            matched |= hmac.compare_digest(discovery_hint(secret, near).encode(), candidate)
    return matched


# --- the pairing state machine ----------------------------------------------------


class Role(enum.Enum):
    """Which side of the pairing we are."""

    INVITER = "inviter"  # ran `pli pair invite`, listens, SPAKE2 side B
    INVITEE = "invitee"  # typed the code, dials, SPAKE2 side A


@dataclass(frozen=True)
class PairedPeer:
    """What a completed pairing learned about the other side. Store it only after
    both people confirmed that their screens show the same ``sas``."""

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
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True)
class _Keys:
    bundle_a: bytes
    bundle_b: bytes
    confirm_a: bytes
    confirm_b: bytes
    sas: str

    @classmethod
    def derive(cls, key: bytes) -> _Keys:
        sas_value = int.from_bytes(derive_key(key, _LABEL_SAS, size=8), "big")
        return cls(
            bundle_a=derive_key(key, _LABEL_BUNDLE_A),
            bundle_b=derive_key(key, _LABEL_BUNDLE_B),
            confirm_a=derive_key(key, _LABEL_CONFIRM_A),
            confirm_b=derive_key(key, _LABEL_CONFIRM_B),
            sas=f"{sas_value % 10**_SAS_DIGITS:0{_SAS_DIGITS}d}",
        )


@dataclass(frozen=True)
class _RawBundle:
    identity: PublicIdentity
    cert: StaticCert
    card_wire: bytes
    discovery_secret: bytes
    addresses: tuple[str, ...]


def _commit(nameplate: str, msg_a: bytes) -> bytes:
    return labelled_hash(_LABEL_COMMIT, nameplate.encode("ascii"), msg_a)


def _transcript(nameplate: str, *parts: bytes) -> bytes:
    return labelled_hash(_LABEL_TRANSCRIPT, nameplate.encode("ascii"), *parts)


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.blake2b).digest()


def _seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    box: bytes = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, ad, _NONCE, key
    )
    return box


def _open(key: bytes, box: bytes, ad: bytes) -> bytes:
    if len(box) < _TAG_SIZE:
        raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
    try:
        plaintext: bytes = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            box, ad, _NONCE, key
        )
    except (nacl_exceptions.CryptoError, ValueError, TypeError) as exc:
        raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE) from exc
    return plaintext


def _spake_start(spake: Any) -> bytes:
    try:
        message = spake.start()
    except Exception as exc:  # a broken entropy source, inside spake2
        raise LocalProtocolError(f"SPAKE2 could not start: {exc.__class__.__name__}") from exc
    if not isinstance(message, bytes) or len(message) != _SPAKE_MESSAGE_SIZE:
        raise LocalProtocolError("SPAKE2 produced a message of an unexpected size")
    return message


def _spake_finish(spake: Any, message: bytes) -> bytes:
    from spake2 import SPAKEError

    try:
        key = spake.finish(message)
    except SPAKEError as exc:  # e.g. our own message reflected back to us
        raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE) from exc
    except Exception as exc:  # not a point of the right group: ValueError, NotOnCurve
        raise MalformedMessage("pairing: the key exchange message is not a valid key") from exc
    if not isinstance(key, bytes) or len(key) != 32:
        raise LocalProtocolError("SPAKE2 produced a key of an unexpected size")
    return key


def check_address(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedMessage(f"{what}: an address is text")
    codec.check_text(value, what, max_len=_MAX_ADDRESS_LEN)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise MalformedMessage(f"{what}: an address is host:port")
    return value


def _message(data: bytes, keys: tuple[str, ...], kind: str, what: str) -> Mapping[str, Any]:
    fields = codec.as_map(codec.unpack(data), what)
    if codec.field(fields, "t", str, what) != kind:
        raise MalformedMessage(f"{what}: unexpected message type")
    if set(fields) != set(keys):
        raise MalformedMessage(f"{what}: expected exactly the fields {', '.join(keys)}")
    return fields


def _spake_field(fields: Mapping[str, Any], side: bytes, what: str) -> bytes:
    message = codec.fixed_bytes(fields, "msg", _SPAKE_MESSAGE_SIZE, what)
    if message[:1] != side:
        raise MalformedMessage(f"{what}: key exchange message from the wrong side")
    return message


_BUNDLE_KEYS: Final = ("id", "cert", "card", "disco", "addr")


def _decode_bundle(data: bytes) -> _RawBundle:
    what = "pairing bundle"
    fields = codec.as_map(codec.unpack(data), what)
    if set(fields) != set(_BUNDLE_KEYS):
        raise MalformedMessage(f"{what}: expected exactly the fields {', '.join(_BUNDLE_KEYS)}")
    addresses = codec.field(fields, "addr", list, what)
    if len(addresses) > limits.MAX_ADDRESSES:
        raise MalformedMessage(f"{what}: too many addresses")
    return _RawBundle(
        identity=PublicIdentity(codec.fixed_bytes(fields, "id", KEY_SIZE, what)),
        cert=StaticCert.from_wire(codec.field(fields, "cert", bytes, what)),
        card_wire=codec.field(fields, "card", bytes, what),
        discovery_secret=codec.fixed_bytes(fields, "disco", DISCOVERY_SECRET_SIZE, what),
        addresses=tuple(check_address(a, f"{what} address") for a in addresses),
    )


class Pairing:
    """One pairing attempt, one side. h11 style: bytes in, bytes out.

    Invitee: ``m1 = start()``, then ``m3 = receive(m2)``, then ``receive(m4)``
    returns ``None`` and ``complete`` is true. Inviter: ``m2 = receive(m1)``,
    ``m4 = receive(m3)``, then ``complete`` is true. ``result()`` gives the
    peer. Any exception leaves the object dead.
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
        if not isinstance(me, LocalIdentity):
            raise LocalProtocolError("me must be a LocalIdentity")
        if isinstance(now, bool) or not isinstance(now, int) or now < 0:
            raise LocalProtocolError("now is a POSIX time in whole seconds")
        _check_secret(my_discovery_secret)
        if not isinstance(my_card, bytes):
            raise LocalProtocolError("my_card is the signed card, as bytes")
        try:
            card = ProfileCard.from_wire(my_card)
        except RemoteProtocolError as exc:
            raise LocalProtocolError("our own profile card does not verify") from exc
        if card.identity != me.public:
            raise LocalProtocolError("our profile card belongs to another identity")
        if now > me.static_cert.not_after:
            raise LocalProtocolError("our transport certificate has expired; renew it first")
        try:
            addresses = tuple(check_address(a, "our address") for a in my_addresses)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc
        if len(addresses) > limits.MAX_ADDRESSES:
            raise LocalProtocolError("too many addresses to announce")
        self._bundle = codec.pack(
            {
                "id": me.public.key,
                "cert": me.static_cert.to_wire(),
                "card": my_card,
                "disco": my_discovery_secret,
                "addr": list(addresses),
            }
        )
        if len(self._bundle) + _TAG_SIZE > limits.MAX_BIN_LEN:
            raise LocalProtocolError("our profile card is too large to send")

        self._role = role
        self._code = code
        self._me: PublicIdentity = me.public
        self._my_static = me.static_cert.static_public
        self._now = now
        self._entropy: Entropy = entropy if entropy is not None else nacl_utils.random
        self._state = _State.START if role is Role.INVITEE else _State.WAIT_PAKE
        self._code_used = False
        self._spake: Any = None
        self._commit = b""
        self._msg_a = b""
        self._msg_b = b""
        self._box_a = b""
        self._keys: _Keys | None = None
        self._result: PairedPeer | None = None

    def __repr__(self) -> str:
        return f"Pairing({self._role.value}, {self._state.value})"

    # -- public API --------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def complete(self) -> bool:
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
        """Handle the peer's next message; return our reply, or ``None`` when done."""
        self._check_alive()
        try:
            return self._receive(message)
        except BaseException:
            self._die()
            raise

    def result(self) -> PairedPeer:
        """The peer, once ``complete``. Show ``sas`` to the person before storing it."""
        if self._result is None or self._state is not _State.DONE:
            raise LocalProtocolError("the pairing is not complete")
        return self._result

    # -- internals ---------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._state is _State.DEAD:
            raise LocalProtocolError("this pairing failed earlier; make a new invitation")

    def _die(self) -> None:
        self._state = _State.DEAD
        self._forget()
        self._result = None

    def _forget(self) -> None:
        """Drop key material we no longer need (Python cannot wipe it, only let it go)."""
        self._spake = None
        self._keys = None

    def _start(self) -> bytes:
        if self._role is not Role.INVITEE:
            raise LocalProtocolError("only the invitee calls start(); the inviter waits")
        if self._state is not _State.START:
            raise LocalProtocolError("start() was already called")
        self._code_used = True
        from spake2 import SPAKE2_A  # imported on use: it loads `cryptography` (~7 MiB)

        self._spake = SPAKE2_A(
            self._code.password, idA=_ID_INVITEE, idB=_ID_INVITER, entropy_f=self._entropy
        )
        self._msg_a = _spake_start(self._spake)
        self._commit = _commit(self._code.nameplate, self._msg_a)
        self._state = _State.WAIT_REPLY
        return codec.pack({"t": "pake", "nameplate": self._code.nameplate, "commit": self._commit})

    def _receive(self, message: bytes) -> bytes | None:
        if not isinstance(message, bytes):
            raise LocalProtocolError("receive() takes the message as bytes")
        if self._state is _State.WAIT_PAKE:
            return self._on_message_1(message)
        if self._state is _State.WAIT_REPLY:
            return self._on_message_2(message)
        if self._state is _State.WAIT_CONFIRM_A:
            return self._on_message_3(message)
        if self._state is _State.WAIT_CONFIRM_B:
            self._on_message_4(message)
            return None
        if self._state is _State.START:
            raise LocalProtocolError("the invitee calls start() before receive()")
        raise LocalProtocolError("the pairing is already complete")

    def _on_message_1(self, message: bytes) -> bytes:
        """Inviter: the invitee's commitment. Answer with our SPAKE2 message."""
        what = "pairing message 1"
        fields = _message(message, ("t", "nameplate", "commit"), "pake", what)
        nameplate = codec.field(fields, "nameplate", str, what)
        if not _is_digits(nameplate, _NAMEPLATE_DIGITS):
            raise MalformedMessage(f"{what}: a nameplate is 3 digits")
        if nameplate != self._code.nameplate:
            raise MalformedMessage(
                f"{what}: this is for invitation {nameplate}, not {self._code.nameplate}",
                code="wrong-nameplate",
            )
        self._commit = codec.fixed_bytes(fields, "commit", _COMMIT_SIZE, what)
        self._code_used = True
        from spake2 import SPAKE2_B  # imported on use: it loads `cryptography` (~7 MiB)

        self._spake = SPAKE2_B(
            self._code.password, idA=_ID_INVITEE, idB=_ID_INVITER, entropy_f=self._entropy
        )
        self._msg_b = _spake_start(self._spake)
        self._state = _State.WAIT_CONFIRM_A
        return codec.pack({"t": "pake", "msg": self._msg_b})

    def _on_message_2(self, message: bytes) -> bytes:
        """Invitee: the inviter's SPAKE2 message. Reveal ours, send our bundle and MAC."""
        what = "pairing message 2"
        fields = _message(message, ("t", "msg"), "pake", what)
        self._msg_b = _spake_field(fields, _SIDE_B, what)
        keys = self._keys = _Keys.derive(_spake_finish(self._spake, self._msg_b))
        self._spake = None
        nameplate = self._code.nameplate
        t0 = _transcript(nameplate, self._commit, self._msg_a, self._msg_b)
        self._box_a = _seal(keys.bundle_a, self._bundle, t0)
        t1 = _transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a)
        mac_a = _mac(keys.confirm_a, _SIDE_A, t1, self._me.key)
        self._state = _State.WAIT_CONFIRM_B
        return codec.pack({"t": "confirm", "msg": self._msg_a, "box": self._box_a, "mac": mac_a})

    def _on_message_3(self, message: bytes) -> bytes:
        """Inviter: the invitee's reveal, bundle and MAC. Check all, send ours."""
        what = "pairing message 3"
        fields = _message(message, ("t", "msg", "box", "mac"), "confirm", what)
        msg_a = _spake_field(fields, _SIDE_A, what)
        box_a = codec.field(fields, "box", bytes, what)
        mac_a = codec.fixed_bytes(fields, "mac", _MAC_SIZE, what)
        nameplate = self._code.nameplate
        if not constant_time_equal(_commit(nameplate, msg_a), self._commit):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        keys = _Keys.derive(_spake_finish(self._spake, msg_a))
        self._spake = None
        t0 = _transcript(nameplate, self._commit, msg_a, self._msg_b)
        raw = _decode_bundle(_open(keys.bundle_a, box_a, t0))
        t1 = _transcript(nameplate, self._commit, msg_a, self._msg_b, box_a)
        if not constant_time_equal(mac_a, _mac(keys.confirm_a, _SIDE_A, t1, raw.identity.key)):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        peer = self._accept(raw, keys.sas)
        box_b = _seal(keys.bundle_b, self._bundle, t1)
        t2 = _transcript(nameplate, self._commit, msg_a, self._msg_b, box_a, box_b)
        mac_b = _mac(keys.confirm_b, _SIDE_B, t2, raw.identity.key, self._me.key)
        self._finish(peer)
        return codec.pack({"t": "confirm", "box": box_b, "mac": mac_b})

    def _on_message_4(self, message: bytes) -> None:
        """Invitee: the inviter's bundle and MAC."""
        what = "pairing message 4"
        fields = _message(message, ("t", "box", "mac"), "confirm", what)
        box_b = codec.field(fields, "box", bytes, what)
        mac_b = codec.fixed_bytes(fields, "mac", _MAC_SIZE, what)
        keys = self._keys
        if keys is None:  # pragma: no cover - guarded by the state
            raise LocalProtocolError("no key in this state")
        nameplate = self._code.nameplate
        t1 = _transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a)
        raw = _decode_bundle(_open(keys.bundle_b, box_b, t1))
        t2 = _transcript(nameplate, self._commit, self._msg_a, self._msg_b, self._box_a, box_b)
        expected = _mac(keys.confirm_b, _SIDE_B, t2, self._me.key, raw.identity.key)
        if not constant_time_equal(mac_b, expected):
            raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
        self._finish(self._accept(raw, keys.sas))

    def _accept(self, raw: _RawBundle, sas: str) -> PairedPeer:
        """The checks on an authenticated bundle: reflection, certificate, card."""
        if raw.identity == self._me:
            raise PairingRefused(Reason.REFLECTION, REFLECTION_MESSAGE)
        if constant_time_equal(raw.cert.static_public, self._my_static):
            raise PairingRefused(Reason.BAD_PEER, BAD_PEER_MESSAGE)  # our transport key, their name
        if self._now > raw.cert.not_after:
            raise PairingRefused(Reason.EXPIRED_PEER, EXPIRED_PEER_MESSAGE)
        try:
            raw.cert.verify(raw.identity, now=self._now)
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
            discovery_secret=raw.discovery_secret,
            addresses=raw.addresses,
            sas=sas,
        )

    def _finish(self, peer: PairedPeer) -> None:
        self._result = peer
        self._state = _State.DONE
        self._forget()
