"""Later receipts through the daemon: which document is meant, and what peers send about them.

The seam between the archive (which document a person or program named), the
later receipts service (``services/receipts.py``: sign, queue, send, check,
store) and the sessions: ``mark_integrated`` and ``mark_read`` are what the
local API, the page and the watched inbox folder call; ``on_message`` takes a
session's ``later`` and ``noted`` messages. The mailbox path is in ``mailbox.py``.
"""

from __future__ import annotations

from typing import Any

from p2p.documents import integration
from p2p.errors import BadInput
from p2p.net.transport import Channel
from p2p.services.archive import Archive
from p2p.services.receipts import LaterReceipts
from protocol import messages, not_integrated


class LaterRouting:
    def __init__(self, archive: Archive, receipts: LaterReceipts) -> None:
        self._archive = archive
        self._receipts = receipts

    async def mark_integrated(self, text: str, error_code: int | None = None) -> dict[str, Any]:
        """The practice software took a received document in, or could not (``error_code``).

        The answer says what was done: ``receipt`` is ``queued`` (signed, on its
        way to the sender), ``already`` (that layer was signed before), ``off``
        (this practice sends no integrated receipts) or ``not-paired`` (the
        sender is revoked or no longer paired: nothing is sent).
        """
        found = self._archive.find(text)
        if found.direction != "in":
            raise BadInput("Only a document this practice received can be marked integrated.")
        if error_code is None:
            status = "integrated"
        elif error_code in integration.CODES:
            status = not_integrated(error_code)
        else:
            known = integration.listing()
            raise BadInput(f"Unknown integration error code {error_code}. Known codes: {known}.")
        outcome = await self._receipts.note(found.doc_id, status)
        answer: dict[str, Any] = {"id": found.doc_id, "status": status, "receipt": outcome}
        if error_code is not None:
            answer["code"], answer["label"] = error_code, integration.label(error_code)
        return answer

    async def mark_read(self, text: str) -> dict[str, Any]:
        """A person opened or exported a document: a read receipt, if this practice sends them.

        For a document this practice sent, nothing (``receipt`` is ``not-received``).
        """
        found = self._archive.find(text)
        if found.direction != "in":
            return {"id": found.doc_id, "status": "read", "receipt": "not-received"}
        outcome = await self._receipts.note(found.doc_id, "read")
        return {"id": found.doc_id, "status": "read", "receipt": outcome}

    async def on_message(
        self, channel: Channel, item: messages.LaterReceipt | messages.Noted
    ) -> bool:
        """A session's later receipt (answered ``noted`` once held) or acknowledgement.

        False when it was about nothing this practice knows: the caller counts
        those against the peer's allowance of unsolicited answers.
        """
        if isinstance(item, messages.Noted):
            return await self._receipts.noted(channel.peer_id.hex, item)
        arrival, status = await self._receipts.received(
            channel.peer.identity, item.document_id, item.receipt, "direct"
        )
        if status is not None:
            await channel.send(messages.Noted(item.document_id, status))
        return arrival != "refused"
