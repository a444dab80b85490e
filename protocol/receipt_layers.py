"""The later layers of a receipt: what the sender accepts after ``delivered``.

Once a document is delivered, its recipient may say more, each time with a new
receipt signed by its identity key (the form of ``protocol.receipts``): the
practice software took the document in (``integrated``) or could not
(``not-integrated:<NNN>``), and a person opened it (``read``). These come on
their own, long after the transfer, directly (``messages.LaterReceipt``) or
through a mailbox, so the sender checks more than a delivery receipt needs:

- the receipt parses, and its layer is ``integrated`` or ``read`` (a
  delivery receipt here is refused: it travels only as the answer to an offer);
- it is about a document this practice sent to the peer it came from: the
  caller looks the document up by (document id, that peer) and passes what it
  recorded, or ``None``, which is refused (unknown document, or one sent to
  someone else);
- it names that peer as its signer and this practice as the sender, the
  document id and envelope digest recorded when it was sealed, its time is not
  too far ahead, and the peer's signature is valid;
- it is not a replay: per layer the sender keeps one receipt. The very same
  bytes again are answered ``None`` (already known: acknowledge, store
  nothing); any other receipt for a layer already held is ``ReplayDetected``,
  except that a document the software could not integrate may later be
  integrated (``not-integrated:…`` then ``integrated``, not older than it).

Every refusal is a ``RemoteProtocolError``; the function is pure (no clock: ``now``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from . import limits
from ._hashing import constant_time_equal
from .errors import AuthenticationFailed, MalformedMessage, ReplayDetected
from .identity import PublicIdentity
from .receipts import LAYER_INTEGRATED, LAYER_READ, NOT_INTEGRATED_PREFIX, Receipt

LATER_LAYERS: Final = (LAYER_INTEGRATED, LAYER_READ)


@dataclass(frozen=True)
class SentDocument:
    """What the sender recorded about one (document, recipient), and the later receipts held."""

    document_id: bytes
    envelope_digest: bytes
    recipient: PublicIdentity
    held: Mapping[str, bytes]  # layer -> the stored receipt's wire bytes


def accept_later_receipt(
    wire: bytes,
    *,
    peer: PublicIdentity,
    me: PublicIdentity,
    sent: SentDocument | None,
    now: int,
    max_skew: int = limits.MAX_CLOCK_SKEW,
) -> Receipt | None:
    """The receipt to store, ``None`` if it is already stored, or ``RemoteProtocolError``.

    ``peer`` is who it came from (the session's peer, or the mailbox pair's);
    ``sent`` is the sender's record of that document for that peer, or None.
    """
    receipt = Receipt.from_wire(wire)
    if receipt.layer not in LATER_LAYERS:
        raise MalformedMessage("a later receipt says integrated, not-integrated or read")
    if sent is None or sent.recipient != peer or receipt.recipient != peer:
        raise AuthenticationFailed()
    receipt.verify(
        recipient=peer,
        sender=me,
        document_id=sent.document_id,
        envelope_digest=sent.envelope_digest,
        now=now,
        max_skew=max_skew,
    )
    held = sent.held.get(receipt.layer)
    if held is None:
        return receipt
    if constant_time_equal(held, wire):
        return None
    if _supersedes(receipt, Receipt.from_wire(held)):
        return receipt
    raise ReplayDetected("this layer of the receipt is already held")


def _supersedes(new: Receipt, old: Receipt) -> bool:
    """A document not integrated at first may be integrated later; nothing else changes."""
    return (
        old.status.startswith(NOT_INTEGRATED_PREFIX)
        and new.status == LAYER_INTEGRATED
        and new.time >= old.time
    )
