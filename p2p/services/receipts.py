"""Later receipts: telling a sender that its document was integrated, or read.

As **recipient**, ``note`` signs a later receipt (``protocol.receipt_layers``) for
a document received: ``integrated`` or ``not-integrated:NNN`` when the practice
software took it in or could not (the API's ``POST /v1/documents/{id}/integrated``,
the watched inbox folder), ``read`` when a person opened or exported it. Each
layer is optional (``receipts_integrated``, ``receipts_read`` in config.toml),
signed once and committed before it is sent (``storage/later_receipts.py``), so
it survives a restart or ``kill -9`` and is never signed twice. ``run`` sends
what is still unsent: over the live session with the sender (who answers
``noted``), else through a mailbox both practices share; again at each new
session and every ``RESEND_EVERY`` seconds until one of them holds it. Nothing
is signed or sent for a document whose sender is revoked or no longer paired,
and what waited for a sender that was revoked since is dropped.

As **sender**, ``received`` checks a later receipt that came from a peer (the
pure rules of ``accept_later_receipt``: layer, document, peer, signature,
replay) and stores it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from p2p.errors import PliError
from p2p.events import Link
from p2p.storage.later_receipts import LaterIn, LaterOut
from p2p.storage.store import PeerState, Store
from protocol import (
    LocalIdentity,
    PublicIdentity,
    Receipt,
    RemoteProtocolError,
    SentDocument,
    accept_later_receipt,
    messages,
    receipt_layer,
)

log = logging.getLogger("pli.receipts")

#: Seconds between two attempts to send the later receipts still unsent.
RESEND_EVERY = 30.0
#: Seconds a dial to a sender may take before trying a mailbox instead.
DIAL_TIMEOUT = 10.0
#: The mailbox's message index of each status kind (its ``Nats-Msg-Id`` is per index).
MAILBOX_INDEX = {"integrated": 1, "not-integrated": 2, "read": 3}

Outcome = Literal["queued", "already", "off", "not-paired"]
Arrival = Literal["stored", "known", "refused"]
Connect = Callable[[str], Awaitable[Link]]
Post = Callable[[str, bytes, bytes, int], Awaitable[bool]]


def mailbox_index(status: str) -> int:
    return MAILBOX_INDEX[status.partition(":")[0]]


class LaterReceipts:
    def __init__(
        self,
        store: Store,
        me: LocalIdentity,
        *,
        integrated: bool,
        read: bool,
        connect: Connect,
        post: Post,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._me = me
        self._enabled = {"integrated": integrated, "read": read}
        self._connect = connect  # the live session with a paired peer, or a new one
        self._post = post  # (peer, doc id, receipt, index) -> a mailbox stored it
        self._on_event = on_event
        self._wake = asyncio.Event()

    def enabled(self, layer: str) -> bool:
        return self._enabled.get(layer, False)

    # --- as recipient ------------------------------------------------------------------

    async def note(self, doc_id: str, status: str) -> Outcome:
        """Sign and queue the later receipt ``status`` for a received document.

        ``off``: this practice does not send that layer; ``not-paired``: the
        sender is revoked or no longer paired (nothing signed); ``already``: that
        layer was signed before (a failure to integrate may still be followed by
        ``integrated``). The caller checked that ``doc_id`` is a received document.
        """
        layer = receipt_layer(status)
        if not self.enabled(layer):
            return "off"
        senders = self._store.senders_of(doc_id)
        outcomes = [await self._note_one(sender, doc_id, status) for sender in senders]
        if "queued" in outcomes:
            self._wake.set()
            return "queued"
        return outcomes[0] if outcomes else "not-paired"

    async def _note_one(self, sender: str, doc_id: str, status: str) -> Outcome:
        peer = self._store.peer(sender)
        if peer is None or peer.state is not PeerState.PAIRED or self._store.revocation(sender):
            return "not-paired"
        held = self._store.later_outgoing(doc_id, sender, receipt_layer(status))
        if held is not None and not (
            held.status.startswith("not-integrated:") and status == "integrated"
        ):
            return "already"
        entry = self._store.inbox_entry(doc_id, sender)
        if entry is None:
            return "not-paired"
        now = int(time.time())
        receipt = Receipt.create(
            self._me.identity,
            document_id=bytes.fromhex(doc_id),
            envelope_digest=entry.digest,
            sender=PublicIdentity(peer.identity),
            status=status,
            now=now,
        )
        row = LaterOut(doc_id, sender, receipt.layer, status, receipt.to_wire(), now)
        new = await asyncio.to_thread(self._store.later_signed, row)
        return "queued" if new else "already"

    def wake(self) -> None:
        """Send what is unsent now (a session came up, a mailbox joined)."""
        self._wake.set()

    async def run(self) -> None:
        """Send the unsent later receipts now and then, and whenever woken."""
        while True:
            self._wake.clear()
            try:
                await self._send_unsent()
            except PliError as exc:  # the database: try again at the next round
                log.warning("later receipts not sent: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESEND_EVERY):
                    await self._wake.wait()

    async def _send_unsent(self) -> None:
        by_sender: dict[str, list[LaterOut]] = {}
        for row in self._store.later_unsent():
            by_sender.setdefault(row.sender, []).append(row)
        for sender, rows in by_sender.items():
            peer = self._store.peer(sender)
            if peer is None or peer.state is not PeerState.PAIRED or self._store.revocation(sender):
                dropped = await asyncio.to_thread(self._store.later_dropped, sender)
                log.info("dropped %d later receipt(s) for a peer no longer trusted", dropped)
                continue
            if not await self._send_direct(sender, rows):
                await self._send_by_mailbox(sender, rows)

    async def _send_direct(self, sender: str, rows: list[LaterOut]) -> bool:
        """Over a session (the sender answers ``noted``); False if the sender cannot be reached."""
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                link = await self._connect(sender)
            for row in rows:
                await link.send(messages.LaterReceipt(bytes.fromhex(row.doc_id), row.receipt))
        except (PliError, ConnectionError, OSError, TimeoutError):
            return False
        return True

    async def _send_by_mailbox(self, sender: str, rows: list[LaterOut]) -> None:
        for row in rows:
            doc_id = bytes.fromhex(row.doc_id)
            if not await self._post(sender, doc_id, row.receipt, mailbox_index(row.status)):
                return  # no mailbox shared with this sender takes it now
            now = int(time.time())
            await asyncio.to_thread(
                self._store.later_sent, row.doc_id, sender, row.status, "mailbox", now
            )

    async def noted(self, peer_hex: str, message: messages.Noted) -> bool:
        """The sender holds that later receipt: it is sent. False if we had none unsent."""
        doc_hex, now = message.document_id.hex(), int(time.time())
        return await asyncio.to_thread(
            self._store.later_sent, doc_hex, peer_hex, message.status, "direct", now
        )

    # --- as sender -------------------------------------------------------------------------

    async def received(
        self, peer: PublicIdentity, doc_id: bytes, wire: bytes, via: str
    ) -> tuple[Arrival, str | None]:
        """A later receipt from ``peer``: stored, already known, or refused; and its status."""
        return await asyncio.to_thread(self._receive, peer, doc_id, wire, via)

    def _receive(
        self, peer: PublicIdentity, doc_id: bytes, wire: bytes, via: str
    ) -> tuple[Arrival, str | None]:
        doc_hex, peer_hex = doc_id.hex(), peer.peer_id.hex
        row = self._store.outbox_entry(doc_hex, peer_hex)
        sent = None
        if row is not None:
            sent = SentDocument(doc_id, row.digest, peer, self._store.later_held(doc_hex, peer_hex))
        now = int(time.time())
        try:
            receipt = accept_later_receipt(wire, peer=peer, me=self._me.public, sent=sent, now=now)
        except RemoteProtocolError as exc:
            log.warning("refused a later receipt from %s (%s)", peer.peer_id.short, exc.code)
            return "refused", None
        if receipt is None:
            return "known", Receipt.from_wire(wire).status
        layer, status = receipt.layer, receipt.status
        self._store.later_stored(
            LaterIn(doc_hex, peer_hex, layer, status, wire, receipt.time, via, now)
        )
        log.info("%s receipt from %s", receipt.layer, peer.peer_id.short)
        if self._on_event is not None:
            self._on_event(
                {
                    "type": "document-" + receipt.layer,
                    "id": doc_hex,
                    "to": peer_hex,
                    "status": receipt.status,
                    "time": receipt.time,
                }
            )
        return "stored", receipt.status
