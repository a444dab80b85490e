"""Who a practice is: keys, peer ids, fingerprints, static certificates, profile cards.

- ``IdentityKey`` / ``PublicIdentity``: the long-term Ed25519 key that signs
  documents, receipts, cards and certificates. Every signature is over a purpose
  label followed by the data, so a signature made for one job never verifies
  for another.
- ``PeerId``: BLAKE2b-256("pli/1/peer-id" ‖ ed25519 public key), shown to people
  as a ``fingerprint``: its first 160 bits in base32, eight groups of four
  characters each followed by a check character (a one-character typo and a
  swap of two neighbours are both caught, see ``_damm_check``).
- ``StaticCert``: the identity's signature over the X25519 transport key and
  its expiry. The transport key can rotate without a new identity.
- ``ProfileCard``: name, profession, RPPS, practice, addresses and the X25519
  key documents are sealed to, signed and sequence-numbered.
- ``LocalIdentity``: our own secret keys, bundled.

Nothing here touches files or the clock: ``now`` is always an argument.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from nacl import exceptions as nacl_exceptions
from nacl import public, signing

from . import codec, limits
from ._hashing import constant_time_equal
from .errors import AuthenticationFailed, LocalProtocolError, MalformedMessage

KEY_SIZE = 32
SIGNATURE_SIZE = 64

LABEL_PEER_ID = b"pli/1/peer-id"
LABEL_STATIC_CERT = b"pli/1/static"
LABEL_CARD = b"pli/1/card"

# --- keys ----------------------------------------------------------------------


def _signed_message(label: bytes, data: bytes) -> bytes:
    return len(label).to_bytes(1, "big") + label + data


@dataclass(frozen=True, eq=False)
class PublicIdentity:
    """An Ed25519 identity public key (32 bytes)."""

    key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != KEY_SIZE:
            raise MalformedMessage("an identity key is 32 bytes")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicIdentity) and constant_time_equal(self.key, other.key)

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def peer_id(self) -> PeerId:
        return PeerId(hashlib.blake2b(LABEL_PEER_ID + self.key, digest_size=32).digest())

    def verify(self, label: bytes, data: bytes, signature: bytes) -> None:
        """Raise ``AuthenticationFailed`` unless ``signature`` is ours over ``label`` ‖ ``data``."""
        if len(signature) != SIGNATURE_SIZE:
            raise AuthenticationFailed()
        try:
            signing.VerifyKey(self.key).verify(_signed_message(label, data), signature)
        except (nacl_exceptions.BadSignatureError, nacl_exceptions.ValueError) as exc:
            raise AuthenticationFailed() from exc
        except nacl_exceptions.CryptoError as exc:
            raise AuthenticationFailed() from exc


class IdentityKey:
    """Our Ed25519 signing key. Never printed, never logged."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != KEY_SIZE:
            raise LocalProtocolError("an identity seed is 32 bytes")
        self._key = signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> IdentityKey:
        return cls(bytes(signing.SigningKey.generate()))

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public.peer_id.short})"

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(bytes(self._key.verify_key))

    def sign(self, label: bytes, data: bytes) -> bytes:
        signature: bytes = self._key.sign(_signed_message(label, data)).signature
        return signature


# --- peer ids and fingerprints -------------------------------------------------

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_INDEX = {ch: i for i, ch in enumerate(_B32)}
_FINGERPRINT_BYTES = 20  # 160 bits shown to people; well above the ~100 a person must compare
_GROUP = 4
_TYPO_FIXES = str.maketrans({"0": "O", "1": "I", "8": "B"})


def _gf32_double(x: int) -> int:
    """Multiply by the generator x in GF(2^5) modulo x^5 + x^2 + 1."""
    x <<= 1
    return x ^ 0b100101 if x & 0b100000 else x


def _damm_check(values: list[int]) -> int:
    """Damm check symbol over the quasigroup a∘b = 2a ⊕ b of GF(32).

    That quasigroup is totally anti-symmetric, so the check catches every
    single-symbol substitution and every swap of two adjacent symbols.
    """
    interim = 0
    for value in values:
        interim = _gf32_double(interim) ^ value
    return _gf32_double(interim)


@dataclass(frozen=True, order=True)
class PeerId:
    """BLAKE2b-256 of a peer's identity key: the stable name of a peer."""

    digest: bytes

    def __post_init__(self) -> None:
        if len(self.digest) != 32:
            raise MalformedMessage("a peer id is 32 bytes")

    @property
    def hex(self) -> str:
        return self.digest.hex()

    @property
    def short(self) -> str:
        """The first fingerprint group: enough to tell peers apart in logs."""
        return self.fingerprint[:5]

    @property
    def fingerprint(self) -> str:
        chars = base64.b32encode(self.digest[:_FINGERPRINT_BYTES]).decode()
        groups = []
        for start in range(0, len(chars), _GROUP):
            group = chars[start : start + _GROUP]
            check = _damm_check([_B32_INDEX[ch] for ch in group])
            groups.append(group + _B32[check])
        return "-".join(groups)

    def matches_fingerprint(self, text: str) -> bool:
        return constant_time_equal(
            normalize_fingerprint(text).encode(), self.fingerprint.replace("-", "").encode()
        )

    def __str__(self) -> str:
        return self.fingerprint


class FingerprintError(MalformedMessage):
    """A fingerprint typed by a person has a typo; ``str()`` says where."""


def normalize_fingerprint(text: str) -> str:
    """Canonical form of a typed fingerprint (no separators, upper case), checked.

    Raises ``FingerprintError`` naming the group with a typo.
    """
    cleaned = re.sub(r"[\s\-_.:]", "", text).upper().translate(_TYPO_FIXES)
    expected = (_FINGERPRINT_BYTES * 8 // 5) // _GROUP * (_GROUP + 1)
    if len(cleaned) != expected:
        raise FingerprintError(
            f"a fingerprint has {expected} letters and digits; this one has {len(cleaned)}"
        )
    if any(ch not in _B32_INDEX for ch in cleaned):
        raise FingerprintError("a fingerprint uses only the letters A-Z and the digits 2-7")
    for number, start in enumerate(range(0, len(cleaned), _GROUP + 1), 1):
        group = [_B32_INDEX[ch] for ch in cleaned[start : start + _GROUP + 1]]
        if _damm_check(group[:-1]) != group[-1]:
            raise FingerprintError(
                f"group {number} of the fingerprint has a typo; please read it again"
            )
    return cleaned


def fingerprint_prefix(text: str) -> str:
    """Normalise a possibly partial fingerprint for prefix matching (no check)."""
    return re.sub(r"[\s\-_.:]", "", text).upper().translate(_TYPO_FIXES)


# --- static key certificate ----------------------------------------------------


@dataclass(frozen=True)
class StaticCert:
    """``Sign(id, "pli/1/static" ‖ x25519_pk ‖ not_after)``; 104 bytes on the wire."""

    static_public: bytes
    not_after: int
    signature: bytes

    WIRE_SIZE = KEY_SIZE + 8 + SIGNATURE_SIZE

    @staticmethod
    def _signed_data(static_public: bytes, not_after: int) -> bytes:
        return static_public + not_after.to_bytes(8, "big")

    @classmethod
    def issue(cls, identity: IdentityKey, static_public: bytes, not_after: int) -> StaticCert:
        data = cls._signed_data(static_public, not_after)
        return cls(static_public, not_after, identity.sign(LABEL_STATIC_CERT, data))

    def to_wire(self) -> bytes:
        return self._signed_data(self.static_public, self.not_after) + self.signature

    @classmethod
    def from_wire(cls, data: bytes) -> StaticCert:
        if not isinstance(data, bytes) or len(data) != cls.WIRE_SIZE:
            raise MalformedMessage("a static certificate is 104 bytes")
        return cls(data[:32], int.from_bytes(data[32:40], "big"), data[40:])

    def verify(self, identity: PublicIdentity, *, now: int) -> None:
        """Raise ``AuthenticationFailed`` unless ``identity`` certified this key and it is valid."""
        identity.verify(
            LABEL_STATIC_CERT, self._signed_data(self.static_public, self.not_after), self.signature
        )
        if now > self.not_after:
            raise AuthenticationFailed("the peer's transport certificate has expired")


# --- profile card ----------------------------------------------------------------

_RPPS = re.compile(r"[0-9]{11}")


def check_rpps(value: str) -> None:
    """An RPPS number is 11 digits (the French national health-professional directory)."""
    if value and not _RPPS.fullmatch(value):
        raise MalformedMessage("an RPPS number is 11 digits")


@dataclass(frozen=True)
class ProfileCard:
    """A practice's public profile, signed by its identity key.

    ``doc_key`` is the X25519 key envelopes are sealed to. A card with a higher
    ``seq`` replaces an older one.
    """

    identity: PublicIdentity
    doc_key: bytes
    seq: int
    name: str
    profession: str = ""
    rpps: str = ""
    practice: str = ""
    addresses: tuple[str, ...] = field(default_factory=tuple)
    #: The mailboxes the practice joined (URLs); ``None``: the card does not say
    #: (written before cards listed them), ``()``: none.
    mailboxes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.doc_key) != KEY_SIZE:
            raise MalformedMessage("card: the document key is 32 bytes")
        for what, value in (
            ("name", self.name),
            ("profession", self.profession),
            ("practice", self.practice),
        ):
            codec.check_text(value, f"card {what}")
        check_rpps(self.rpps)
        if len(self.addresses) > limits.MAX_ADDRESSES:
            raise MalformedMessage("card: too many addresses")
        for address in self.addresses:
            codec.check_text(address, "card address", max_len=260)
        if self.mailboxes is not None:
            if len(self.mailboxes) > limits.MAX_CARD_MAILBOXES:
                raise MalformedMessage("card: too many mailboxes")
            for url in self.mailboxes:
                codec.check_text(url, "card mailbox", max_len=limits.MAX_MAILBOX_URL)

    def _body(self) -> bytes:
        body: dict[str, object] = {
            "v": 1,
            "id": self.identity.key,
            "doc_key": self.doc_key,
            "seq": self.seq,
            "name": self.name,
            "profession": self.profession,
            "rpps": self.rpps,
            "practice": self.practice,
            "addresses": list(self.addresses),
        }
        if self.mailboxes is not None:  # absent, as on older cards: unknown
            body["mailboxes"] = list(self.mailboxes)
        return codec.pack(body)

    def sign(self, identity: IdentityKey) -> bytes:
        """The signed card as sent on the wire."""
        if identity.public != self.identity:
            raise LocalProtocolError("a card is signed by the identity it describes")
        body = self._body()
        return codec.pack({"body": body, "sig": identity.sign(LABEL_CARD, body)})

    @classmethod
    def from_wire(cls, data: bytes) -> ProfileCard:
        """Parse and verify a signed card. Raises ``RemoteProtocolError``."""
        outer = codec.as_map(codec.unpack(data), "card")
        body = codec.field(outer, "body", bytes, "card")
        signature = codec.field(outer, "sig", bytes, "card")
        fields = codec.as_map(codec.unpack(body), "card body")
        if codec.field(fields, "v", int, "card") != 1:
            raise MalformedMessage("card: unknown version")
        identity = PublicIdentity(codec.fixed_bytes(fields, "id", KEY_SIZE, "card"))
        identity.verify(LABEL_CARD, body, signature)
        addresses = codec.field(fields, "addresses", list, "card")
        if not all(isinstance(a, str) for a in addresses):
            raise MalformedMessage("card: addresses must be text")
        listed = codec.optional(fields, "mailboxes", list, "card")  # absent: an older card
        if listed is not None and not all(isinstance(url, str) for url in listed):
            raise MalformedMessage("card: mailboxes must be text")
        return cls(
            identity=identity,
            doc_key=codec.fixed_bytes(fields, "doc_key", KEY_SIZE, "card"),
            seq=codec.uint(fields, "seq", "card"),
            name=codec.text(fields, "name", "card"),
            profession=codec.text(fields, "profession", "card"),
            rpps=codec.field(fields, "rpps", str, "card"),
            practice=codec.text(fields, "practice", "card"),
            addresses=tuple(addresses),
            mailboxes=tuple(listed) if listed is not None else None,
        )

    def replaces(self, older: ProfileCard | None) -> bool:
        """Whether this card should replace ``older`` (same identity, newer sequence)."""
        return older is None or (self.identity == older.identity and self.seq > older.seq)


# --- our own keys ----------------------------------------------------------------


@dataclass(frozen=True)
class LocalIdentity:
    """Our secret keys: identity (Ed25519), transport static and document key (X25519)."""

    identity: IdentityKey
    static_secret: bytes
    static_cert: StaticCert
    doc_secret: bytes

    def __repr__(self) -> str:
        return f"LocalIdentity({self.peer_id.short})"

    @classmethod
    def generate(cls, *, now: int) -> LocalIdentity:
        identity = IdentityKey.generate()
        return cls.from_secrets(
            identity.seed,
            bytes(public.PrivateKey.generate()),
            bytes(public.PrivateKey.generate()),
            not_after=now + limits.STATIC_CERT_LIFETIME,
        )

    @classmethod
    def from_secrets(
        cls, identity_seed: bytes, static_secret: bytes, doc_secret: bytes, *, not_after: int
    ) -> LocalIdentity:
        identity = IdentityKey(identity_seed)
        static_public = bytes(public.PrivateKey(static_secret).public_key)
        return cls(
            identity=identity,
            static_secret=static_secret,
            static_cert=StaticCert.issue(identity, static_public, not_after),
            doc_secret=doc_secret,
        )

    @property
    def public(self) -> PublicIdentity:
        return self.identity.public

    @property
    def peer_id(self) -> PeerId:
        return self.public.peer_id

    @property
    def static_public(self) -> bytes:
        return self.static_cert.static_public

    @property
    def doc_public(self) -> bytes:
        return bytes(public.PrivateKey(self.doc_secret).public_key)

    def card(self, seq: int, **profile: Any) -> ProfileCard:
        return ProfileCard(identity=self.public, doc_key=self.doc_public, seq=seq, **profile)
