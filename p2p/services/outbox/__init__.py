"""Sending documents: seal once, queue durably, deliver until a signed receipt is back.

``queue`` seals the envelope (one for all recipients, written atomically to
``documents/sent/``) and commits one outbox row per recipient; the recipients'
senders stream it while it is being sealed, and its last byte leaves only once
it is durable (``sealing.py``). The scheduler runs one sender per peer with
due documents: it offers each envelope, streams it from the offset the
receiver already holds (a cut transfer resumes, it does not restart), and
marks the row delivered only once the recipient's receipt verifies against
its key. Failures back off exponentially with jitter; a peer that comes back
(seen by discovery or dialling us) is retried at once.

A sender does not wait for one receipt before offering the next document (at
most ``RECEIPT_WINDOW`` are outstanding): the receiver commits the envelopes
it verified meanwhile as one group, and the receipts that came back together
are verified and stored in one transaction, off the event loop.

The modules: ``service.py`` the ``Outbox`` (queueing, scheduling, one sender's
state machine), ``sealing.py`` an envelope streamed while it is sealed (and
once durable), ``parts.py`` what ``queue`` is given and the refusals' words.
"""

from p2p.services.outbox.parts import (
    REFUSALS,
    REFUSED_OTHERWISE,
    Attachment,
    Recipient,
    refusal_sentence,
)
from p2p.services.outbox.service import Outbox, TooManyReplies

__all__ = [
    "REFUSALS",
    "REFUSED_OTHERWISE",
    "Attachment",
    "Outbox",
    "Recipient",
    "TooManyReplies",
    "refusal_sentence",
]
