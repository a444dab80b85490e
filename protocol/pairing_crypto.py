"""The cryptographic pieces of code pairing: keys, transcripts, boxes, MACs, bundles.

Part of the pairing protocol: ``pairing`` (the state machine, whose docstring
is the specification) uses these; nothing else should. Every name and label
here is in ``docs/protocol.md`` §12.2.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nacl import bindings as nacl_bindings
from nacl import exceptions as nacl_exceptions

from . import codec, limits
from ._hashing import derive_key, labelled_hash
from .errors import LocalProtocolError, MalformedMessage
from .identity import KEY_SIZE, SIGNATURE_SIZE, LocalIdentity, PublicIdentity, StaticCert
from .pairing_reasons import PairingRefused, Reason

WRONG_CODE_MESSAGE: Final = (
    "The pairing code was wrong, or someone tried to intercept the pairing. "
    "Nothing was saved. Make a new invitation and try again."
)

ID_INVITEE: Final = b"pli/1/pair/invitee"
ID_INVITER: Final = b"pli/1/pair/inviter"
LABEL_COMMIT: Final = b"pli/1/pair/commit"
LABEL_TRANSCRIPT: Final = b"pli/1/pair/transcript"
LABEL_BUNDLE_A: Final = b"pli/1/pair/bundle-A"
LABEL_BUNDLE_B: Final = b"pli/1/pair/bundle-B"
LABEL_CONFIRM_A: Final = b"pli/1/pair/confirm-A"
LABEL_CONFIRM_B: Final = b"pli/1/pair/confirm-B"
LABEL_SECRET_A: Final = b"pli/1/pair/secret-A"
LABEL_SECRET_B: Final = b"pli/1/pair/secret-B"
LABEL_BUNDLE_SIG: Final = b"pli/1/pair/bundle-sig"
LABEL_SAS: Final = b"pli/1/pair/sas"

SIDE_A: Final = b"A"
SIDE_B: Final = b"B"
SPAKE_MESSAGE_SIZE: Final = 33  # side byte + Ed25519 group element
COMMIT_SIZE: Final = 32
MAC_SIZE: Final = 64
TAG_SIZE: Final = 16
SAS_DIGITS: Final = 6
MAX_ADDRESS_LEN: Final = 260
_PORT = re.compile(r"[0-9]{1,5}")

#: The AEAD nonce: fixed, all zero. Safe because a nonce only has to be unique
#: per key, and each box key encrypts exactly one message: it is derived from a
#: SPAKE2 key that contains the sender's fresh random share (so it is new in
#: every session, whatever the peer sends), the A and B directions (bundle and
#: secret alike) use separate labels, and the state machine seals each box
#: once. This is how Noise treats its first handshake key. A random nonce would
#: add 24 bytes and no safety (a broken random source breaks SPAKE2 first), and
#: the fixed one makes the whole exchange reproducible from pinned entropy.
_NONCE: Final = bytes(24)


@dataclass(frozen=True)
class Keys:
    bundle_a: bytes
    bundle_b: bytes
    confirm_a: bytes
    confirm_b: bytes
    secret_a: bytes
    secret_b: bytes
    sas: str

    @classmethod
    def derive(cls, key: bytes) -> Keys:
        sas_value = int.from_bytes(derive_key(key, LABEL_SAS, size=8), "big")
        return cls(
            bundle_a=derive_key(key, LABEL_BUNDLE_A),
            bundle_b=derive_key(key, LABEL_BUNDLE_B),
            confirm_a=derive_key(key, LABEL_CONFIRM_A),
            confirm_b=derive_key(key, LABEL_CONFIRM_B),
            secret_a=derive_key(key, LABEL_SECRET_A),
            secret_b=derive_key(key, LABEL_SECRET_B),
            sas=f"{sas_value % 10**SAS_DIGITS:0{SAS_DIGITS}d}",
        )


@dataclass(frozen=True)
class RawBundle:
    identity: PublicIdentity
    cert: StaticCert
    card_wire: bytes
    addresses: tuple[str, ...]
    signature: bytes
    signed: bytes  # the bundle without its signature, canonical: what ``signature`` covers


def commit(nameplate: str, msg_a: bytes) -> bytes:
    return labelled_hash(LABEL_COMMIT, nameplate.encode("ascii"), msg_a)


def transcript(nameplate: str, *parts: bytes) -> bytes:
    return labelled_hash(LABEL_TRANSCRIPT, nameplate.encode("ascii"), *parts)


def mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.blake2b).digest()


def seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    box: bytes = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, ad, _NONCE, key
    )
    return box


def open_box(key: bytes, box: bytes, ad: bytes) -> bytes:
    if len(box) < TAG_SIZE:
        raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE)
    try:
        plaintext: bytes = nacl_bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            box, ad, _NONCE, key
        )
    except (nacl_exceptions.CryptoError, ValueError, TypeError) as exc:
        raise PairingRefused(Reason.WRONG_CODE, WRONG_CODE_MESSAGE) from exc
    return plaintext


def spake_start(spake: Any) -> bytes:
    try:
        message = spake.start()
    except Exception as exc:  # a broken entropy source, inside spake2
        raise LocalProtocolError(f"SPAKE2 could not start: {exc.__class__.__name__}") from exc
    if not isinstance(message, bytes) or len(message) != SPAKE_MESSAGE_SIZE:
        raise LocalProtocolError("SPAKE2 produced a message of an unexpected size")
    return message


def spake_finish(spake: Any, message: bytes) -> bytes:
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
    codec.check_text(value, what, max_len=MAX_ADDRESS_LEN)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise MalformedMessage(f"{what}: an address is host:port")
    return value


def message(data: bytes, keys: tuple[str, ...], kind: str, what: str) -> Mapping[str, Any]:
    fields = codec.as_map(codec.unpack(data), what)
    if codec.field(fields, "t", str, what) != kind:
        raise MalformedMessage(f"{what}: unexpected message type")
    if set(fields) != set(keys):
        raise MalformedMessage(f"{what}: expected exactly the fields {', '.join(keys)}")
    return fields


def spake_field(fields: Mapping[str, Any], side: bytes, what: str) -> bytes:
    message = codec.fixed_bytes(fields, "msg", SPAKE_MESSAGE_SIZE, what)
    if message[:1] != side:
        raise MalformedMessage(f"{what}: key exchange message from the wrong side")
    return message


_BUNDLE_KEYS: Final = ("id", "cert", "card", "addr")


def encode_bundle(
    me: LocalIdentity, card: bytes, addresses: Sequence[str], transcript: bytes, side: bytes
) -> bytes:
    """Our bundle, signed with our identity key over ``side ‖ transcript ‖ bundle``.

    The signature proves that the sender holds the identity key *now*, in this
    session: the card and certificate alone are public, anybody could forward them.
    """
    unsigned = _unsigned(me.public.key, me.static_cert.to_wire(), card, list(addresses))
    signature = me.identity.sign(LABEL_BUNDLE_SIG, side + transcript + unsigned)
    return codec.pack(
        {
            "id": me.public.key,
            "cert": me.static_cert.to_wire(),
            "card": card,
            "addr": list(addresses),
            "sig": signature,
        }
    )


def _unsigned(identity: bytes, cert: bytes, card: bytes, addresses: list[str]) -> bytes:
    return codec.pack({"id": identity, "cert": cert, "card": card, "addr": addresses})


def decode_bundle(data: bytes) -> RawBundle:
    """A peer's bundle: exactly these fields, in its one canonical encoding."""
    what = "pairing bundle"
    fields = codec.as_map(codec.unpack(data), what)
    if set(fields) != {*_BUNDLE_KEYS, "sig"}:
        raise MalformedMessage(f"{what}: expected exactly the fields id, cert, card, addr, sig")
    addresses = codec.field(fields, "addr", list, what)
    if len(addresses) > limits.MAX_ADDRESSES:
        raise MalformedMessage(f"{what}: too many addresses")
    checked = tuple(check_address(a, f"{what} address") for a in addresses)
    identity = codec.fixed_bytes(fields, "id", KEY_SIZE, what)
    cert = codec.field(fields, "cert", bytes, what)
    card = codec.field(fields, "card", bytes, what)
    signature = codec.fixed_bytes(fields, "sig", SIGNATURE_SIZE, what)
    unsigned = _unsigned(identity, cert, card, list(checked))
    canonical = codec.pack(
        {"id": identity, "cert": cert, "card": card, "addr": list(checked), "sig": signature}
    )
    if canonical != data:
        raise MalformedMessage(f"{what}: not in canonical form")
    return RawBundle(
        identity=PublicIdentity(identity),
        cert=StaticCert.from_wire(cert),
        card_wire=card,
        addresses=checked,
        signature=signature,
        signed=unsigned,
    )


def verify_bundle(raw: RawBundle, transcript: bytes, side: bytes) -> None:
    """Raise ``AuthenticationFailed`` unless the bundle's own key signed it in this session."""
    raw.identity.verify(LABEL_BUNDLE_SIG, side + transcript + raw.signed, raw.signature)
