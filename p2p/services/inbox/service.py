"""The ``Inbox``: a channel's offers and envelope frames, answered in order.

An offer is answered with the stored receipt (offered again), a refusal (too
large, over quota, a failed write) or an accept from the bytes already in
quarantine. Its frames go to the verifier (``quarantine.py``); a verified
envelope goes to the group commit (``commit.py``), which sends the receipt.

A pushed offer (a letter, ``Offer.push``) is followed by its bytes unasked: it
gets no accept, and the bytes of one answered at once (held already, refused)
are read and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from p2p.errors import StorageError
from p2p.events import Link
from p2p.services.inbox.commit import Committer
from p2p.services.inbox.quarantine import (
    INLINE_MAX,
    Quarantine,
    Transfer,
    ignore_result,
    write_failed,
)
from p2p.storage.files import Layout
from p2p.storage.quota import REFUSAL_CODES, Quota
from p2p.storage.store import Store
from protocol import LocalIdentity, PublicIdentity, RemoteProtocolError, limits, messages

log = logging.getLogger("pli.inbox")

#: BULK frames (≤ 1 MiB each) handed to the verifier and not yet processed, per
#: transfer: enough to keep the socket and the verifier busy at the same time.
_IN_FLIGHT = 1


class TransferRefused(Exception):
    """The peer broke the transfer protocol; the connection should be closed."""


class Inbox:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        me: LocalIdentity,
        check_sender: Callable[[PublicIdentity], None],
        *,
        quota: Quota,
        max_size: int = limits.MAX_ENVELOPE_SIZE,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._quota = quota
        self._max_size = max_size
        self._transfers: dict[int, Transfer] = {}
        #: Pushed bytes still to drop, by channel: their offer was answered at once.
        self._dropping: dict[int, int] = {}
        self._quarantine = Quarantine(layout, me, check_sender)
        # on_event is told of each new document (any thread; ids only).
        self._committer = Committer(store, me, quota, self._quarantine, on_event=on_event)

    def close(self, *, wait: bool = False) -> None:
        """Stop the worker threads once their queued work is done (a commit under
        way completes: it is consistent whenever it stops). ``wait`` blocks until then."""
        self._quarantine.close(wait=wait)
        self._committer.close(wait=wait)

    async def on_offer(self, channel: Link, sender: PublicIdentity, offer: messages.Offer) -> None:
        """Answer an offer: resend the receipt, refuse, or accept from an offset."""
        key = id(channel)
        if key in self._transfers or key in self._dropping:
            self._abandon(key)
            raise TransferRefused("a new offer arrived before the previous envelope was complete")
        sender_hex = sender.peer_id.hex
        doc_hex = offer.document_id.hex()
        committing = self._committer.under_way(doc_hex, sender_hex)
        if committing is not None:  # offered again while its commit is under way
            with contextlib.suppress(StorageError):
                await asyncio.shield(committing)
        stored = self._store.inbox_entry(doc_hex, sender_hex)
        if stored is not None:
            self._drop_pushed(key, offer)
            await channel.send(messages.Delivered(offer.document_id, stored.receipt))
            return
        if offer.size > self._max_size:
            reason = "the document is over this practice's limit"
            self._drop_pushed(key, offer)
            await channel.send(messages.Refuse(offer.document_id, "too-large", reason))
            return
        transfer = await self._start(sender, offer)
        if isinstance(transfer, str):
            self._drop_pushed(key, offer)
            await channel.send(
                messages.Refuse(offer.document_id, transfer, REFUSAL_CODES[transfer])
            )
            return
        self._transfers[key] = transfer
        if not offer.push:  # pushed bytes come unasked
            await channel.send(messages.Accept(offer.document_id, transfer.received))
        if transfer.received == transfer.size:
            await self._finish(channel, key)

    def _drop_pushed(self, key: int, offer: messages.Offer) -> None:
        """The offer is answered already: its pushed bytes, still coming, are dropped."""
        if offer.push and offer.size:
            self._dropping[key] = offer.size

    async def _start(self, sender: PublicIdentity, offer: messages.Offer) -> Transfer | str:
        """A new or resumed transfer for an admitted offer, or the refusal's code."""
        sender_hex = sender.peer_id.hex
        doc_hex = offer.document_id.hex()
        refusal = await self._admit(sender_hex, doc_hex, offer.size)
        if refusal is not None:
            return refusal
        if offer.size <= INLINE_MAX:  # a letter: kept in memory, no quarantine file
            reader = self._quarantine.reader()
            return Transfer(
                offer.document_id,
                sender_hex,
                sender,
                offer.size,
                0,
                None,
                reader,
                buffer=bytearray(),
            )
        self._quota.holding(sender_hex, doc_hex, offer.size)
        quarantine = self._quarantine
        try:
            return await quarantine.run(False, quarantine.open_partial, offer, sender, sender_hex)
        except OSError as exc:
            await quarantine.drop_partial(sender_hex, doc_hex)
            return write_failed(self._quota, sender_hex, doc_hex, exc)

    async def _admit(self, sender_hex: str, doc_hex: str, size: int) -> str | None:
        """The quota's answer, given the transfers under way (a thread: it reads the disk)."""
        in_flight = sum(t.size - t.received for t in self._transfers.values())
        admit = self._quota.admit
        return await asyncio.to_thread(admit, sender_hex, doc_hex, size, in_flight=in_flight)

    async def on_bulk(self, channel: Link, data: memoryview) -> None:
        key = id(channel)
        if key in self._dropping:
            self._drop(key, len(data))
            return
        transfer = self._transfers.get(key)
        if transfer is None or transfer.received + len(data) > transfer.size:
            self._abandon(key)
            raise TransferRefused("envelope bytes that were not offered")
        transfer.received += len(data)
        pending = transfer.pending
        small = transfer.buffer is not None and not pending  # a letter: no thread hop
        quarantine = self._quarantine
        pending.append(quarantine.run(small, quarantine.absorb, transfer, data))
        last = transfer.received == transfer.size
        try:
            # Wait only when too many frames are queued (or at the end); collect the
            # finished ones so that a verification failure is seen early.
            while pending and (last or len(pending) > _IN_FLIGHT or pending[0].done()):
                await pending[0]
                pending.popleft()
            if last and transfer.buffer is None:  # a letter in memory has no writes to wait for
                await quarantine.run(False, quarantine.drain_writes, transfer)
        except RemoteProtocolError as exc:
            await self._refuse(channel, key, exc)
            return
        except OSError as exc:
            await self._refuse(channel, key, exc)
            return
        if last:
            await self._finish(channel, key)

    async def _refuse(self, channel: Link, key: int, exc: RemoteProtocolError | OSError) -> None:
        """Give up a transfer that failed verification, or whose write failed."""
        transfer = self._transfers.pop(key)
        transfer.dead = True
        doc_hex = transfer.doc_id.hex()
        if isinstance(exc, RemoteProtocolError):
            log.debug("verification failure", exc_info=exc)
            log.warning(
                "refused a document from %s: it failed verification (%s)",
                transfer.sender_identity.peer_id.short,
                exc.code,
            )
            code, reason = exc.code, "the envelope failed verification"
        for future in transfer.pending:
            future.add_done_callback(ignore_result)
        transfer.pending.clear()
        await self._quarantine.discard(transfer)
        if isinstance(exc, OSError):
            code = write_failed(self._quota, transfer.sender, doc_hex, exc)
            reason = REFUSAL_CODES[code]
        self._quota.settled(transfer.sender, doc_hex)
        await channel.send(messages.Refuse(transfer.doc_id, code, reason))

    async def _finish(self, channel: Link, key: int) -> None:
        transfer = self._transfers[key]
        try:
            transfer.reader.close()
            verified = transfer.verified
            if verified is None:
                raise RemoteProtocolError("no signature", code="authentication")
            if (
                verified.meta.document_id != transfer.doc_id
                or verified.meta.sender != transfer.sender_identity
            ):
                raise RemoteProtocolError("offer and envelope disagree", code="authentication")
        except RemoteProtocolError as exc:
            await self._refuse(channel, key, exc)
            return
        del self._transfers[key]
        await self._committer.commit(transfer, verified, channel)

    def _drop(self, key: int, length: int) -> None:
        left = self._dropping[key] - length
        if left < 0:
            del self._dropping[key]
            raise TransferRefused("envelope bytes that were not offered")
        if left:
            self._dropping[key] = left
        else:
            del self._dropping[key]

    def _abandon(self, key: int) -> None:
        self._dropping.pop(key, None)
        transfer = self._transfers.pop(key, None)
        if transfer is None:
            return
        transfer.dead = True
        for future in transfer.pending:  # their errors no longer matter
            future.add_done_callback(ignore_result)
        transfer.pending.clear()
        self._quarantine.release(transfer)

    def channel_closed(self, channel: Link) -> None:
        """Keep the partial file for a resume; just release the handle."""
        self._abandon(id(channel))

    async def sweep(self, paired: list[str]) -> int:
        """Delete expired partial files (on the verifier thread: no open races it)."""
        layout = self._quarantine.layout
        active = [layout.partial(t.sender, t.doc_id.hex()) for t in self._transfers.values()]
        return await self._quarantine.run(False, self._quota.sweep, paired, active)
