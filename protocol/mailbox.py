"""Mailbox frames: what two paired practices leave for each other on a NATS server.

A mailbox server (NATS JetStream, run by a practice group) holds messages for
members that are offline. It must learn as little as possible, so everything a
practice puts there is wrapped once more with a key only the two peers of a
pair can derive:

- ``box_name(identity)``: the member's mailbox, a public label derived from its
  identity key (the server's configuration names it; peers compute it). A sender
  publishes under the recipient's box and its own (the server authenticates it as
  that member anyway, and caps what each sender may leave);
- ``PairKeys.derive(me, peer_card, ...)``: X25519 between our document key and
  the peer's (from its signed card, exchanged at pairing), then BLAKE2b with a
  label per use and the direction (sender id ‖ recipient id) as data. One
  AEGIS-256 key per direction;
- ``encode_frame`` / ``decode_frame``: a chunk of a sealed envelope, a signed
  receipt, or the sender's newer signed card, as ``nonce ‖ AEGIS-256(kind ‖ doc
  id ‖ ...)`` (libsodium, as the session frames: about ten times the speed of
  secretbox, which cost each side a second per GiB); the server sees neither
  document ids nor receipts, only opaque ids, sizes and times.

The envelope and receipt inside are exactly those of the direct path: the
receiver verifies them as if they had come over a session. Sans-IO.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from nacl import bindings, exceptions

from . import _aegis
from .errors import AuthenticationFailed, FrameTooLarge, LocalProtocolError, MalformedMessage
from .identity import LocalIdentity, ProfileCard, PublicIdentity

#: Envelope bytes per mailbox message, as a BULK frame of the direct path: the
#: receiver's inbox takes it in one step, and the server stores 4x fewer messages
#: than with 256 KiB. The server's ``max_payload`` (2 MiB, ``server_config``) is above.
CHUNK_SIZE = 1024 * 1024
#: The largest frame accepted from a mailbox: a chunk plus its small header, nonce and tag.
MAX_FRAME = CHUNK_SIZE + 1024
#: The largest envelope announced in a chunk (as the direct path's limit).
MAX_ENVELOPE = 64 * 1024 * 1024 * 1024
#: A receipt is small; anything larger is refused before it is parsed.
MAX_RECEIPT = 4096

#: A signed profile card is small (its fields are bounded, protocol.md §5).
MAX_CARD = 32 * 1024

KIND_CHUNK = "chunk"
KIND_RECEIPT = "receipt"
KIND_CARD = "card"
_CHUNK, _RECEIPT, _CARD = b"C", b"R", b"K"
#: The document id field of a card frame, which names no document.
NO_DOCUMENT = bytes(16)
_DOC_ID = 16
_HEAD = struct.Struct(">QQ")

_LABEL_BOX = b"pli/mbox/box"
_LABEL_KEY = b"pli/mbox/key"
_LABEL_MSGID = b"pli/mbox/msgid"
#: A mailbox message's nonce: random, 32 bytes (AEGIS-256's nonce is as large as its key).
NONCE_SIZE: int = bindings.crypto_aead_aegis256_NPUBBYTES
_TAG_SIZE: int = bindings.crypto_aead_aegis256_ABYTES


def box_name(identity: PublicIdentity) -> str:
    """The member's mailbox label: 20 hex digits, the same for every peer that knows it."""
    digest = hashlib.blake2b(identity.key, digest_size=10, person=_LABEL_BOX[:16])
    return digest.hexdigest()


def _derive(shared: bytes, label: bytes, data: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, key=shared, digest_size=size, person=label[:16]).digest()


@dataclass(frozen=True)
class Direction:
    """One direction of a pair: the key that wraps its frames."""

    key: bytes

    def __repr__(self) -> str:
        return "Direction(…)"

    def message_id(self, kind: str, doc_id: bytes, index: int) -> str:
        """``Nats-Msg-Id``: the server de-duplicates on it but cannot link it to a document."""
        data = kind.encode() + b"\0" + doc_id + index.to_bytes(8, "big")
        return _derive(self.key, _LABEL_MSGID, data, 16).hex()


@dataclass(frozen=True)
class PairKeys:
    """What a practice needs to write to a peer's mailbox and read what it left in its own."""

    outgoing: Direction
    incoming: Direction

    @classmethod
    def derive(cls, me: LocalIdentity, peer: ProfileCard) -> PairKeys:
        """Both sides compute the same two directions, swapped. Raises ``AuthenticationFailed``."""
        try:
            shared = bindings.crypto_scalarmult(me.doc_secret, peer.doc_key)
        except exceptions.RuntimeError as exc:  # a low-order point: no secret to share
            raise AuthenticationFailed("the peer's document key cannot be used") from exc
        ours, theirs = me.peer_id.digest, peer.identity.peer_id.digest
        return cls(_direction(shared, ours + theirs), _direction(shared, theirs + ours))


def _direction(shared: bytes, data: bytes) -> Direction:
    return Direction(_derive(shared, _LABEL_KEY, data, 32))


@dataclass(frozen=True)
class Chunk:
    """Bytes ``[index * CHUNK_SIZE, ...)`` of the sealed envelope of ``doc_id``."""

    doc_id: bytes
    index: int
    total: int  # the envelope's size in bytes
    data: bytes | memoryview  # opened: a view of the decrypted frame (no copy)

    @property
    def offset(self) -> int:
        return self.index * CHUNK_SIZE

    @property
    def last(self) -> bool:
        return self.offset + len(self.data) == self.total


@dataclass(frozen=True)
class ReceiptFrame:
    """The signed receipt for ``doc_id``, on its way back to the sender."""

    doc_id: bytes
    receipt: bytes


@dataclass(frozen=True)
class CardFrame:
    """The sender's newer signed card (it lists its mailboxes), for a peer that no
    session reaches; the receiver verifies it as a ``card`` message (§7)."""

    card: bytes


Frame = Chunk | ReceiptFrame | CardFrame


def chunk_count(total: int) -> int:
    """How many chunks an envelope of ``total`` bytes is cut into (at least one)."""
    return max(1, -(-total // CHUNK_SIZE))


def encode_frame(direction: Direction, frame: Frame, *, nonce: bytes) -> bytearray:
    """``nonce ‖ AEGIS-256(kind ‖ doc id ‖ ...) ‖ tag``; ``nonce`` is ``NONCE_SIZE`` random
    bytes from the caller.

    A chunk's plaintext is ``C ‖ doc id (16) ‖ index (8) ‖ total (8) ‖ bytes``, a
    receipt's ``R ‖ doc id (16) ‖ receipt``, a card's ``K ‖ 16 zero bytes ‖ signed
    card``; integers are big-endian. Laid out once in the returned buffer and sealed
    there in place: a 1 MiB chunk is copied once (PyNaCl's call and the concatenations
    copied it four times).
    """
    if len(nonce) != NONCE_SIZE:
        raise LocalProtocolError("a mailbox nonce is 32 bytes")
    if isinstance(frame, Chunk):
        if frame.index >= chunk_count(frame.total) or len(frame.data) > CHUNK_SIZE:
            raise LocalProtocolError("a chunk outside its envelope")
        head = _CHUNK + frame.doc_id + _HEAD.pack(frame.index, frame.total)
        body: bytes | memoryview = frame.data
    elif isinstance(frame, CardFrame):
        if not 0 < len(frame.card) <= MAX_CARD:
            raise LocalProtocolError("a card of an impossible size")
        head, body = _CARD + NO_DOCUMENT, frame.card
    else:
        head, body = _RECEIPT + frame.doc_id, frame.receipt
    plain = len(head) + len(body)
    wire = bytearray(NONCE_SIZE + plain + _TAG_SIZE)
    wire[:NONCE_SIZE] = nonce
    start = NONCE_SIZE + len(head)
    wire[NONCE_SIZE:start] = head
    wire[start : start + len(body)] = body
    view = memoryview(wire)
    _aegis.encrypt_into(
        view[NONCE_SIZE:], view[NONCE_SIZE : NONCE_SIZE + plain], None, nonce, direction.key
    )
    return wire


def decode_frame(direction: Direction, data: bytes | bytearray | memoryview) -> Frame:
    """Open and check one mailbox message. Raises ``RemoteProtocolError``.

    A chunk's ``data`` is a view of the one buffer the message is opened into (no
    slice copies a 1 MiB chunk again)."""
    if len(data) > MAX_FRAME:
        raise FrameTooLarge("a mailbox message is over the size limit")
    if len(data) < NONCE_SIZE + _TAG_SIZE + 1 + _DOC_ID:
        raise MalformedMessage("a mailbox message is too short")
    view = memoryview(data)
    try:
        plain = _aegis.decrypt(view[NONCE_SIZE:], None, bytes(view[:NONCE_SIZE]), direction.key)
    except exceptions.CryptoError:
        raise AuthenticationFailed("a mailbox message did not open") from None
    return parse_frame(plain)


def parse_frame(plain: bytes | memoryview) -> Frame:
    """The frame inside an opened message. Raises ``RemoteProtocolError``."""
    if len(plain) < 1 + _DOC_ID:
        raise MalformedMessage("a mailbox frame is too short")
    view = memoryview(plain)
    kind, doc_id, rest = bytes(view[:1]), bytes(view[1 : 1 + _DOC_ID]), view[1 + _DOC_ID :]
    if kind == _RECEIPT:
        if not 0 < len(rest) <= MAX_RECEIPT:
            raise MalformedMessage("a mailbox receipt of an impossible size")
        return ReceiptFrame(doc_id, bytes(rest))
    if kind == _CARD:
        if doc_id != NO_DOCUMENT or not 0 < len(rest) <= MAX_CARD:
            raise MalformedMessage("a mailbox card of an impossible size")
        return CardFrame(bytes(rest))
    if kind != _CHUNK or len(rest) < _HEAD.size:
        raise MalformedMessage("a mailbox frame of an unknown kind")
    index, total = _HEAD.unpack_from(rest)
    chunk = rest[_HEAD.size :]
    if not 0 < total <= MAX_ENVELOPE or index >= chunk_count(total):
        raise MalformedMessage("a mailbox chunk outside its envelope")
    if len(chunk) != min(CHUNK_SIZE, total - index * CHUNK_SIZE):
        raise MalformedMessage("a mailbox chunk of the wrong length")
    return Chunk(doc_id, index, total, chunk)
