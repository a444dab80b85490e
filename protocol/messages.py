"""What two paired peers say to each other once the Noise session is up.

Every WebSocket message after the handshake is one sealed frame
(``protocol/frames.py``) whose plaintext starts with a type byte:

- ``0x01 CONTROL``: one control message below (msgpack map with a ``t`` field);
- ``0x02 BULK``: bytes of the envelope the sender is currently streaming in
  that direction (sealed by the frame layer like everything else).

Control messages (``to_wire`` / ``from_wire``, strict, bounded):

- ``Offer(document_id, size, push)``: the sender proposes an envelope of ``size``
  bytes. ``push`` (envelopes of at most ``limits.MAX_PUSHED_ENVELOPE``): the
  whole envelope follows at once in BULK frames, without waiting for an accept
  (a letter costs no round trip); the receiver answers only with the receipt or
  a refusal, and discards the pushed bytes of a document it already holds or
  refuses.
- ``Accept(document_id, offset)``: send from ``offset`` (bytes already stored).
- ``Delivered(document_id, receipt)``: the signed receipt (also for a duplicate).
- ``Refuse(document_id, code, reason)``: the receiver will not take it now.
- ``CardUpdate(card)``: a newer signed profile card.
- ``Rekey()``: the sender rekeys its direction right after this message (hourly).
- ``LaterReceipt(document_id, receipt)``: the recipient of a delivered document
  says more about it: integrated, not integrated (with a code), or read
  (``protocol.receipt_layers``). Either side may send one at any time.
- ``Noted(document_id, status)``: the sender stored that later receipt (or held
  it already); the recipient stops sending it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from . import codec, limits
from .errors import FrameTooLarge, MalformedMessage
from .receipts import is_receipt_status

DOCUMENT_ID_SIZE = 16
#: A signed receipt is ~240 bytes; anything much larger is not one.
MAX_RECEIPT_SIZE = 4096


class FrameType(enum.IntEnum):
    CONTROL = 1
    BULK = 2


def _doc_id(fields: Any, what: str) -> bytes:
    return codec.fixed_bytes(fields, "id", DOCUMENT_ID_SIZE, what)


@dataclass(frozen=True)
class Offer:
    TYPE: ClassVar[str] = "offer"
    document_id: bytes
    size: int
    #: The envelope's bytes follow at once, unasked (at most ``MAX_PUSHED_ENVELOPE``).
    push: bool = False

    def fields(self) -> dict[str, Any]:
        pushed = {"push": True} if self.push else {}
        return {"id": self.document_id, "size": self.size, **pushed}

    @classmethod
    def parse(cls, fields: Any) -> Offer:
        size = codec.uint(fields, "size", "offer")
        if size > limits.MAX_ENVELOPE_SIZE:
            raise FrameTooLarge("offered document is over the size limit")
        push = codec.optional(fields, "push", bool, "offer") or False
        if push and size > limits.MAX_PUSHED_ENVELOPE:
            raise FrameTooLarge("a pushed envelope is over the push limit")
        return cls(_doc_id(fields, "offer"), size, push)


@dataclass(frozen=True)
class Accept:
    TYPE: ClassVar[str] = "accept"
    document_id: bytes
    offset: int

    def fields(self) -> dict[str, Any]:
        return {"id": self.document_id, "offset": self.offset}

    @classmethod
    def parse(cls, fields: Any) -> Accept:
        return cls(_doc_id(fields, "accept"), codec.uint(fields, "offset", "accept"))


@dataclass(frozen=True)
class Delivered:
    TYPE: ClassVar[str] = "delivered"
    document_id: bytes
    receipt: bytes

    def fields(self) -> dict[str, Any]:
        return {"id": self.document_id, "receipt": self.receipt}

    @classmethod
    def parse(cls, fields: Any) -> Delivered:
        return cls(_doc_id(fields, "delivered"), codec.field(fields, "receipt", bytes, "delivered"))


@dataclass(frozen=True)
class Refuse:
    TYPE: ClassVar[str] = "refuse"
    document_id: bytes
    code: str
    reason: str

    def fields(self) -> dict[str, Any]:
        return {"id": self.document_id, "code": self.code, "reason": self.reason}

    @classmethod
    def parse(cls, fields: Any) -> Refuse:
        return cls(
            _doc_id(fields, "refuse"),
            codec.text(fields, "code", "refuse"),
            codec.text(fields, "reason", "refuse"),
        )


@dataclass(frozen=True)
class CardUpdate:
    TYPE: ClassVar[str] = "card"
    card: bytes

    def fields(self) -> dict[str, Any]:
        return {"card": self.card}

    @classmethod
    def parse(cls, fields: Any) -> CardUpdate:
        return cls(codec.field(fields, "card", bytes, "card update"))


@dataclass(frozen=True)
class Rekey:
    """The sender switches its sending key right after this message (hourly rekey)."""

    TYPE: ClassVar[str] = "rekey"

    def fields(self) -> dict[str, Any]:
        return {}

    @classmethod
    def parse(cls, fields: Any) -> Rekey:
        return cls()


@dataclass(frozen=True)
class LaterReceipt:
    """A later layer of a delivered document's receipt (integrated, read), signed."""

    TYPE: ClassVar[str] = "later"
    document_id: bytes
    receipt: bytes

    def fields(self) -> dict[str, Any]:
        return {"id": self.document_id, "receipt": self.receipt}

    @classmethod
    def parse(cls, fields: Any) -> LaterReceipt:
        receipt = codec.field(fields, "receipt", bytes, "later receipt")
        if not 0 < len(receipt) <= MAX_RECEIPT_SIZE:
            raise FrameTooLarge("a receipt is at most 4096 bytes")
        return cls(_doc_id(fields, "later receipt"), receipt)


@dataclass(frozen=True)
class Noted:
    """The sender holds the later receipt of ``status`` for that document."""

    TYPE: ClassVar[str] = "noted"
    document_id: bytes
    status: str

    def fields(self) -> dict[str, Any]:
        return {"id": self.document_id, "status": self.status}

    @classmethod
    def parse(cls, fields: Any) -> Noted:
        status = codec.field(fields, "status", str, "noted")
        if not is_receipt_status(status):
            raise MalformedMessage("noted: unknown receipt status")
        return cls(_doc_id(fields, "noted"), status)


Message = Offer | Accept | Delivered | Refuse | CardUpdate | Rekey | LaterReceipt | Noted
_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (Offer, Accept, Delivered, Refuse, CardUpdate, Rekey, LaterReceipt, Noted)
}


def encode(message: Message) -> bytes:
    return codec.pack({"t": message.TYPE, **message.fields()})


def decode(data: bytes) -> Message:
    """Parse one control message. Raises ``RemoteProtocolError``."""
    fields = codec.as_map(codec.unpack(data), "message")
    kind = codec.field(fields, "t", str, "message")
    cls = _TYPES.get(kind)
    if cls is None:
        raise MalformedMessage("unknown message type")
    message: Message = cls.parse(fields)
    return message
