"""Revocation statements: "this identity is revoked", signed by the identity itself.

A ``Revocation`` is made at ``pli init`` (printed, kept away from the computer)
or by ``pli revoke --yes`` on the machine itself. It is self-authenticating:
anyone may carry it to any daemon, and a daemon that verifies it stops
trusting that identity for good. Nothing in it can be changed without the
identity key, and nothing else is needed to check it.

Wire form, exactly ``WIRE_SIZE`` (105) bytes, fixed layout, nothing optional::

    version     1 byte   0x01
    identity   32 bytes  the Ed25519 public key being revoked
    revoked_at  8 bytes  big-endian seconds since 1970 when it was signed (< 2**63)
    signature  64 bytes  Ed25519 over  len(label) ‖ label ‖ the 41 bytes above,
                         label = b"pli/1/revocation"

The label is used for nothing else, so no other signature of pli (documents,
receipts, cards, static certificates, pairing) can be turned into a revocation,
and a revocation cannot be replayed as any of them.

Text form (what is printed, and what the QR code holds): ``TEXT_PREFIX``
followed by the unpadded RFC 4648 base32 of the wire form, 168 characters of
A-Z and 2-7, on one line. It uses only QR "alphanumeric" characters.

Decoders raise only ``RemoteProtocolError``; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .errors import FrameTooLarge, MalformedMessage
from .identity import KEY_SIZE, SIGNATURE_SIZE, IdentityKey, PeerId, PublicIdentity

LABEL_REVOCATION = b"pli/1/revocation"
REVOCATION_VERSION = 1
WIRE_SIZE = 1 + KEY_SIZE + 8 + SIGNATURE_SIZE
TEXT_PREFIX = "PLI1-REVOKE:"
_TEXT_CHARS = WIRE_SIZE * 8 // 5  # 168: 105 bytes are a whole number of base32 groups
#: Largest text searched for a statement (a whole certificate file or page fits many times).
MAX_TEXT = 256 * 1024
_TOKEN = re.compile(re.escape(TEXT_PREFIX) + r"([A-Z2-7]*)")


@dataclass(frozen=True)
class Revocation:
    """A verified revocation of ``identity``, signed at ``revoked_at``."""

    identity: PublicIdentity
    revoked_at: int
    signature: bytes

    @staticmethod
    def _signed_part(identity: PublicIdentity, revoked_at: int) -> bytes:
        if not 0 <= revoked_at < 2**63:
            raise MalformedMessage("revocation: time out of range")
        return bytes([REVOCATION_VERSION]) + identity.key + revoked_at.to_bytes(8, "big")

    @classmethod
    def issue(cls, key: IdentityKey, *, now: int) -> Revocation:
        """Sign the statement that ``key``'s identity is revoked as of ``now``."""
        signed = cls._signed_part(key.public, now)
        return cls(key.public, now, key.sign(LABEL_REVOCATION, signed))

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    def to_wire(self) -> bytes:
        return self._signed_part(self.identity, self.revoked_at) + self.signature

    @classmethod
    def from_wire(cls, data: bytes) -> Revocation:
        """Parse and verify a statement. Raises ``RemoteProtocolError``.

        Exactly ``WIRE_SIZE`` bytes, version 1, a time below 2**63 and a valid
        signature by the identity it names; anything else is refused.
        """
        if not isinstance(data, bytes | bytearray):
            raise MalformedMessage("revocation: bytes expected")
        if len(data) > WIRE_SIZE:
            raise FrameTooLarge(f"a revocation is {WIRE_SIZE} bytes")
        if len(data) != WIRE_SIZE:
            raise MalformedMessage(f"a revocation is {WIRE_SIZE} bytes")
        data = bytes(data)
        if data[0] != REVOCATION_VERSION:
            raise MalformedMessage("revocation: unknown version")
        identity = PublicIdentity(data[1 : 1 + KEY_SIZE])
        revoked_at = int.from_bytes(data[1 + KEY_SIZE : 41], "big")
        signed = cls._signed_part(identity, revoked_at)
        signature = data[41:]
        identity.verify(LABEL_REVOCATION, signed, signature)
        return cls(identity, revoked_at, signature)

    def to_text(self) -> str:
        return TEXT_PREFIX + base64.b32encode(self.to_wire()).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Revocation:
        """Find, parse and verify the statement in a text (a certificate file, a scan).

        The text may hold other words around it; the statement may appear more
        than once (a page shows it and encodes it) but every copy must be the
        same. Raises ``RemoteProtocolError``.
        """
        if not isinstance(text, str):
            raise MalformedMessage("revocation: text expected")
        if len(text) > MAX_TEXT:
            raise FrameTooLarge("revocation: this text is too long to be a certificate")
        found = {match.group(1) for match in _TOKEN.finditer(text)}
        if not found:
            raise MalformedMessage(f"no revocation statement ({TEXT_PREFIX}...) in this text")
        if len(found) > 1:
            raise MalformedMessage("this text holds different revocation statements")
        (body,) = found
        if len(body) != _TEXT_CHARS:
            raise MalformedMessage("the revocation statement is cut or too long")
        try:
            wire = base64.b32decode(body, casefold=False)
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage("the revocation statement is not valid base32") from exc
        return cls.from_wire(wire)
