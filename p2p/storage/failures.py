"""Why an outbox row is not delivered: a reason code and pli's English sentence.

Each failed attempt and each cancellation the outbox records is a ``Failed``: its
``code`` (a ``Failure``, stored in ``outbox.error_code``) is what the page turns
into its own words, in French first (``p2p/web/words_failures.py``); its ``text``
(stored in ``outbox.last_error``) is the English sentence that logs, the CLI and
``--json`` show. A recipient's refusal is one of our codes too
(``services/outbox/parts.py``): the peer's own ``reason`` text is never stored
nor shown (a peer could write anything there).
Rows recorded before the codes existed have a sentence and no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Failure(StrEnum):
    """What went wrong with one (document, recipient), as stored."""

    UNREACHABLE = "unreachable"  # no address answered as the colleague
    MAILBOX_FULL = "mailbox-full"  # unreachable, and the shared mailbox is full for them
    CONNECTION_LOST = "connection-lost"
    NO_ANSWER = "no-answer"  # no answer or receipt in time
    OUT_OF_TURN = "out-of-turn"  # an answer the protocol does not allow there
    SEAL_FAILED = "seal-failed"
    ENVELOPE_DAMAGED = "envelope-damaged"  # our sealed copy is shorter than recorded
    RECEIPT_INVALID = "receipt-invalid"
    PEER_REMOVED = "peer-removed"
    REFUSED_DISK_FULL = "refused-disk-full"
    REFUSED_QUOTA_FULL = "refused-quota-full"
    REFUSED_RATE_LIMITED = "refused-rate-limited"
    REFUSED_STORAGE_FAILED = "refused-storage-failed"
    REFUSED_TOO_LARGE = "refused-too-large"
    REFUSED_AUTHENTICATION = "refused-authentication"
    REFUSED = "refused"  # a refusal code pli does not know
    CANCELLED_BY_SENDER = "cancelled-by-sender"
    CANCELLED_REMOVED = "cancelled-removed"
    CANCELLED_REVOKED = "cancelled-revoked"


#: pli's English sentence for each code (an unreachable peer's says which addresses).
ENGLISH: dict[Failure, str] = {
    Failure.UNREACHABLE: "The other practice's computer could not be reached; "
    "pli keeps the document and will try again.",
    Failure.MAILBOX_FULL: "The other practice's computer could not be reached and the "
    "mailbox is full for this colleague: the document stays here.",
    Failure.CONNECTION_LOST: "the connection was lost",
    Failure.NO_ANSWER: "the peer did not answer in time",
    Failure.OUT_OF_TURN: "the peer answered out of turn",
    Failure.SEAL_FAILED: "a document could not be sealed",
    Failure.ENVELOPE_DAMAGED: "the sent envelope is shorter than recorded",
    Failure.RECEIPT_INVALID: "the receipt did not verify",
    Failure.PEER_REMOVED: "the peer was removed",
    Failure.REFUSED_DISK_FULL: "Their computer's disk is nearly full; "
    "pli will offer the document again later.",
    Failure.REFUSED_QUOTA_FULL: "Their computer already holds as much from this practice "
    "as it accepts; pli will offer the document again once they free space.",
    Failure.REFUSED_RATE_LIMITED: "Their computer received its hourly limit of documents "
    "from this practice; pli will offer the document again later.",
    Failure.REFUSED_STORAGE_FAILED: "Their computer could not store the document; "
    "pli will try again later.",
    Failure.REFUSED_TOO_LARGE: "The document is over the size their computer accepts.",
    Failure.REFUSED_AUTHENTICATION: "Their computer refused the document: it failed "
    "verification (it may have been altered on the way); pli will send it again.",
    Failure.REFUSED: "Their computer refused the document; pli will try again later.",
    Failure.CANCELLED_BY_SENDER: "cancelled by the sender",
    Failure.CANCELLED_REMOVED: "Cancelled: this colleague was removed from your peers.",
    Failure.CANCELLED_REVOKED: "the recipient's key was revoked",
}


@dataclass(frozen=True)
class Failed:
    """One failure as the outbox records it: the code and its English sentence."""

    code: Failure
    text: str

    @classmethod
    def of(cls, code: Failure, detail: str | None = None) -> Failed:
        """``code`` with its sentence, or with ``detail`` (pli's own, more precise words)."""
        return cls(code, detail or ENGLISH[code])


def failure(stored: object) -> Failure | None:
    """The code of a stored row; None for a row from before the codes (or unknown)."""
    try:
        return Failure(str(stored)) if stored is not None else None
    except ValueError:
        return None
