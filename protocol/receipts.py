"""Signed receipts: the recipient's word that a document arrived (and what became of it).

A sender keeps a document in its outbox until it holds a **delivery receipt**:
the recipient's Ed25519 signature saying "I, recipient R, got document D,
whose envelope digest is H, from sender S, at time T, with status X". Later
statuses use the same form, one **layer** each: ``delivered`` (or
``rejected:<code>``, a refusal after storing it) for the delivery layer;
``integrated`` (imported into the practice software) or ``not-integrated:<NNN>``
(it could not be, with a three-digit error code, e.g. ``not-integrated:902``,
unknown patient) for the integration layer; ``read`` for the read layer. The
status, hence the layer, is signed. ``protocol.receipt_layers`` checks the
later layers a sender is shown.

Signed bytes (``IdentityKey.sign`` adds the label ``"pli/1/receipt"`` in front,
prefixed by its length)::

    document_id (16) ‖ envelope_digest (32) ‖ sender pk (32) ‖ recipient pk (32)
    ‖ u8 len(status) ‖ status (ASCII) ‖ u64-BE time

Every field but the status has a fixed size and the status carries its
length, so no two receipts share signed bytes. The envelope digest (see
``protocol.envelope``) binds the receipt to the exact envelope: a receipt for
one letter cannot be shown for another, nor for another version of the same
document id.

Wire form (msgpack map, exactly these keys)::

    {"v": 1, "doc": bin(16), "digest": bin(32), "sender": bin(32),
     "recipient": bin(32), "status": str, "time": uint, "sig": bin(64)}

``from_wire`` checks shape only; ``verify`` checks the signature and that the
receipt is about what the caller expects. Time comes in as ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from . import codec, limits
from ._hashing import constant_time_equal
from .errors import AuthenticationFailed, LocalProtocolError, MalformedMessage, VersionMismatch
from .identity import KEY_SIZE, SIGNATURE_SIZE, IdentityKey, PublicIdentity

LABEL_RECEIPT: Final = b"pli/1/receipt"
VERSION: Final = 1
DOCUMENT_ID_SIZE: Final = 16
DIGEST_SIZE: Final = 32

#: Statuses a receipt may carry, besides ``"rejected:<code>"`` and ``"not-integrated:<NNN>"``.
RECEIPT_STATUSES: Final = ("delivered", "integrated", "read")
REJECTED_PREFIX: Final = "rejected:"
NOT_INTEGRATED_PREFIX: Final = "not-integrated:"
_REJECT_CODE: Final = re.compile(r"[a-z0-9-]{1,32}")
_INTEGRATION_CODE: Final = re.compile(r"[0-9]{3}")

#: The layers, in the order a document goes through them.
LAYER_DELIVERED: Final = "delivered"
LAYER_INTEGRATED: Final = "integrated"
LAYER_READ: Final = "read"
RECEIPT_LAYERS: Final = (LAYER_DELIVERED, LAYER_INTEGRATED, LAYER_READ)
_FIELDS: Final = frozenset({"v", "doc", "digest", "sender", "recipient", "status", "time", "sig"})


def is_receipt_status(status: object) -> bool:
    """Whether ``status`` is one a receipt may carry."""
    if not isinstance(status, str):
        return False
    if status in RECEIPT_STATUSES:
        return True
    if status.startswith(NOT_INTEGRATED_PREFIX):
        return _INTEGRATION_CODE.fullmatch(status.removeprefix(NOT_INTEGRATED_PREFIX)) is not None
    code = status.removeprefix(REJECTED_PREFIX)
    return code != status and _REJECT_CODE.fullmatch(code) is not None


def receipt_layer(status: str) -> str:
    """The layer of a valid status: ``delivered``, ``integrated`` or ``read``."""
    if not is_receipt_status(status):
        raise LocalProtocolError(f"not a receipt status: {status!r}")
    if status == LAYER_READ:
        return LAYER_READ
    if status == LAYER_INTEGRATED or status.startswith(NOT_INTEGRATED_PREFIX):
        return LAYER_INTEGRATED
    return LAYER_DELIVERED


def not_integrated(code: int) -> str:
    """The status of a document the practice software could not take, with its error code."""
    if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 999:
        raise LocalProtocolError("an integration error code has three digits")
    return f"{NOT_INTEGRATED_PREFIX}{code}"


def _signed_bytes(
    document_id: bytes,
    envelope_digest: bytes,
    sender: PublicIdentity,
    recipient: PublicIdentity,
    *,
    status: str,
    time: int,
) -> bytes:
    encoded = status.encode("ascii")
    return b"".join(
        (
            document_id,
            envelope_digest,
            sender.key,
            recipient.key,
            len(encoded).to_bytes(1, "big"),
            encoded,
            time.to_bytes(8, "big"),
        )
    )


@dataclass(frozen=True)
class Receipt:
    """A recipient's signed statement about one envelope."""

    document_id: bytes
    envelope_digest: bytes
    sender: PublicIdentity
    recipient: PublicIdentity
    status: str
    time: int
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.document_id, bytes) or len(self.document_id) != DOCUMENT_ID_SIZE:
            raise MalformedMessage("receipt: a document id is 16 bytes")
        if not isinstance(self.envelope_digest, bytes) or len(self.envelope_digest) != DIGEST_SIZE:
            raise MalformedMessage("receipt: an envelope digest is 32 bytes")
        if not isinstance(self.sender, PublicIdentity) or not isinstance(
            self.recipient, PublicIdentity
        ):
            raise MalformedMessage("receipt: sender and recipient are identity keys")
        if not is_receipt_status(self.status):
            raise MalformedMessage("receipt: unknown status")
        if not isinstance(self.time, int) or isinstance(self.time, bool):
            raise MalformedMessage("receipt: time must be an integer")
        if not 0 <= self.time < 2**63:
            raise MalformedMessage("receipt: time out of range")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise MalformedMessage("receipt: a signature is 64 bytes")

    @classmethod
    def create(
        cls,
        recipient: IdentityKey,
        *,
        document_id: bytes,
        envelope_digest: bytes,
        sender: PublicIdentity,
        status: str = "delivered",
        now: int,
    ) -> Receipt:
        """Sign a receipt as ``recipient``. Bad arguments raise ``LocalProtocolError``."""
        if not is_receipt_status(status):
            raise LocalProtocolError(f"not a receipt status: {status!r}")
        if len(document_id) != DOCUMENT_ID_SIZE or len(envelope_digest) != DIGEST_SIZE:
            raise LocalProtocolError("receipt: wrong document id or digest size")
        if not isinstance(now, int) or isinstance(now, bool) or not 0 <= now < 2**63:
            raise LocalProtocolError("receipt: time must be a non-negative integer")
        me = recipient.public
        data = _signed_bytes(document_id, envelope_digest, sender, me, status=status, time=now)
        signature = recipient.sign(LABEL_RECEIPT, data)
        return cls(document_id, envelope_digest, sender, me, status, now, signature)

    def to_wire(self) -> bytes:
        return codec.pack(
            {
                "v": VERSION,
                "doc": self.document_id,
                "digest": self.envelope_digest,
                "sender": self.sender.key,
                "recipient": self.recipient.key,
                "status": self.status,
                "time": self.time,
                "sig": self.signature,
            }
        )

    @classmethod
    def from_wire(cls, data: bytes) -> Receipt:
        """Parse a receipt (shape only: call ``verify``). Raises ``RemoteProtocolError``."""
        fields: Any = codec.as_map(codec.unpack(data), "receipt")
        if fields.keys() != _FIELDS:
            raise MalformedMessage("receipt has missing or unknown fields")
        if codec.field(fields, "v", int, "receipt") != VERSION:
            raise VersionMismatch("unknown receipt version")
        return cls(
            document_id=codec.fixed_bytes(fields, "doc", DOCUMENT_ID_SIZE, "receipt"),
            envelope_digest=codec.fixed_bytes(fields, "digest", DIGEST_SIZE, "receipt"),
            sender=PublicIdentity(codec.fixed_bytes(fields, "sender", KEY_SIZE, "receipt")),
            recipient=PublicIdentity(codec.fixed_bytes(fields, "recipient", KEY_SIZE, "receipt")),
            status=codec.field(fields, "status", str, "receipt"),
            time=codec.uint(fields, "time", "receipt"),
            signature=codec.fixed_bytes(fields, "sig", SIGNATURE_SIZE, "receipt"),
        )

    def verify(
        self,
        *,
        recipient: PublicIdentity,
        sender: PublicIdentity,
        document_id: bytes,
        envelope_digest: bytes,
        now: int,
        max_skew: int = limits.MAX_CLOCK_SKEW,
    ) -> None:
        """Raise ``AuthenticationFailed`` unless this is ``recipient``'s receipt for that envelope.

        Checks, without saying which failed: the receipt names the expected
        recipient, sender, document and envelope digest; its time is not
        further than ``max_skew`` seconds in the future; the recipient's
        signature is valid. An old receipt is fine: receipts are evidence.
        """
        matches = (
            self.recipient == recipient
            and self.sender == sender
            and constant_time_equal(self.document_id, document_id)
            and constant_time_equal(self.envelope_digest, envelope_digest)
            and self.time <= now + max_skew
        )
        if not matches:
            raise AuthenticationFailed()
        data = _signed_bytes(
            self.document_id,
            self.envelope_digest,
            self.sender,
            self.recipient,
            status=self.status,
            time=self.time,
        )
        recipient.verify(LABEL_RECEIPT, data, self.signature)

    @property
    def layer(self) -> str:
        """``delivered``, ``integrated`` or ``read``: what this receipt says happened."""
        return receipt_layer(self.status)

    @property
    def integration_code(self) -> int | None:
        """The error code of a ``not-integrated:<NNN>`` receipt, else None."""
        if not self.status.startswith(NOT_INTEGRATED_PREFIX):
            return None
        return int(self.status.removeprefix(NOT_INTEGRATED_PREFIX))

    @property
    def rejected(self) -> bool:
        return self.status.startswith(REJECTED_PREFIX)

    @property
    def reject_code(self) -> str | None:
        """The code of a ``rejected:<code>`` receipt, else None."""
        return self.status.removeprefix(REJECTED_PREFIX) if self.rejected else None
