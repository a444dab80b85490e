"""Receiving documents: quarantine → verify → durable → signed receipt.

An offered envelope is written to ``quarantine/`` as it arrives and verified
record by record in a worker thread (TAG_FINAL, signature, hashes; no plaintext
is produced). Only a verified envelope is fsync'd, renamed into
``documents/received/`` and committed to the database; only then is the signed
receipt sent. A cut transfer resumes from the bytes already in quarantine
(re-verified from the start). The same document offered twice is stored once
and its receipt sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from protocol import (
    EnvelopeReader,
    LocalIdentity,
    PublicIdentity,
    Receipt,
    RemoteProtocolError,
    Verified,
    VerifiedEnvelope,
    limits,
    messages,
)

from .blobs import Layout, commit_file
from .events import DocumentReceived, Link
from .store import InboxRow, Store

log = logging.getLogger("pli.inbox")

#: How many bytes of a partial envelope are re-read at once when resuming.
_RESUME_READ = 1024 * 1024


@dataclass
class _Transfer:
    doc_id: bytes
    sender: str
    sender_identity: PublicIdentity
    size: int
    received: int
    file: BinaryIO
    reader: EnvelopeReader
    verified: VerifiedEnvelope | None = None


class TransferRefused(Exception):
    """The peer broke the transfer protocol; the connection should be closed."""


class Inbox:
    def __init__(
        self,
        store: Store,
        layout: Layout,
        me: LocalIdentity,
        check_sender: Callable[[PublicIdentity], None],
        on_event: Callable[[DocumentReceived], None],
        *,
        max_size: int = limits.MAX_DOCUMENT_SIZE,
    ) -> None:
        self._store = store
        self._layout = layout
        self._me = me
        self._check_sender = check_sender
        self._on_event = on_event
        self._max_size = max_size
        self._transfers: dict[int, _Transfer] = {}

    async def on_offer(self, channel: Link, sender: PublicIdentity, offer: messages.Offer) -> None:
        """Answer an offer: resend the receipt, refuse, or accept from an offset."""
        key = id(channel)
        if key in self._transfers:
            self._abandon(key)
            raise TransferRefused("a new offer arrived before the previous envelope was complete")
        sender_hex = sender.peer_id.hex
        doc_hex = offer.document_id.hex()
        stored = self._store.inbox_entry(doc_hex, sender_hex)
        if stored is not None:
            await channel.send(messages.Delivered(offer.document_id, stored.receipt))
            self._on_event(DocumentReceived(doc_hex, sender_hex, stored.size, duplicate=True))
            return
        if offer.size > self._max_size:
            reason = "the document is over this practice's limit"
            await channel.send(messages.Refuse(offer.document_id, "too-large", reason))
            return
        transfer = await asyncio.to_thread(self._open_partial, offer, sender, sender_hex)
        self._transfers[key] = transfer
        await channel.send(messages.Accept(offer.document_id, transfer.received))
        if transfer.received == transfer.size:
            await self._finish(channel, key)

    def _open_partial(
        self, offer: messages.Offer, sender: PublicIdentity, sender_hex: str
    ) -> _Transfer:
        path = self._layout.partial(sender_hex, offer.document_id.hex())
        reader = EnvelopeReader(self._me, check_sender=self._check_sender, want_plaintext=False)
        handle = open(path, "a+b")  # noqa: SIM115 - closed when the transfer ends
        transfer = _Transfer(offer.document_id, sender_hex, sender, offer.size, 0, handle, reader)
        existing = os.fstat(handle.fileno()).st_size
        if existing > offer.size or not self._replay_partial(transfer, existing):
            log.info("restarting a partial transfer from %s from zero", sender.peer_id.short)
            handle.truncate(0)
            transfer.reader = EnvelopeReader(
                self._me, check_sender=self._check_sender, want_plaintext=False
            )
            transfer.verified = None
            existing = 0
        transfer.received = existing
        return transfer

    def _replay_partial(self, transfer: _Transfer, existing: int) -> bool:
        """Re-verify what an earlier, cut transfer left in quarantine."""
        transfer.file.seek(0)
        try:
            remaining = existing
            while remaining:
                data = transfer.file.read(min(_RESUME_READ, remaining))
                if not data:
                    return False
                remaining -= len(data)
                self._verify(transfer, data)
        except RemoteProtocolError:
            return False
        transfer.file.seek(0, os.SEEK_END)
        return True

    def _verify(self, transfer: _Transfer, data: bytes | memoryview) -> None:
        for event in transfer.reader.feed(bytes(data)):
            if isinstance(event, Verified):
                transfer.verified = event.envelope

    def _absorb(self, transfer: _Transfer, data: memoryview) -> None:
        self._verify(transfer, data)
        transfer.file.write(data)

    async def on_bulk(self, channel: Link, data: memoryview) -> None:
        key = id(channel)
        transfer = self._transfers.get(key)
        if transfer is None or transfer.received + len(data) > transfer.size:
            self._abandon(key)
            raise TransferRefused("envelope bytes that were not offered")
        try:
            await asyncio.to_thread(self._absorb, transfer, data)
        except RemoteProtocolError as exc:
            await self._refuse(channel, key, exc)
            return
        transfer.received += len(data)
        if transfer.received == transfer.size:
            await self._finish(channel, key)

    async def _refuse(self, channel: Link, key: int, exc: RemoteProtocolError) -> None:
        transfer = self._transfers.pop(key)
        log.debug("verification failure", exc_info=exc)
        log.warning("refused a document from %s: it failed verification (%s)",
                    transfer.sender_identity.peer_id.short, exc.code)  # fmt: skip
        transfer.file.close()
        self._layout.partial(transfer.sender, transfer.doc_id.hex()).unlink(missing_ok=True)
        await channel.send(messages.Refuse(transfer.doc_id, exc.code,
                                             "the envelope failed verification"))  # fmt: skip

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
        receipt = await asyncio.to_thread(self._commit, transfer, verified)
        await channel.send(messages.Delivered(transfer.doc_id, receipt))

    def _commit(self, transfer: _Transfer, verified: VerifiedEnvelope) -> bytes:
        """Make the envelope durable, then record it with its receipt; return the receipt."""
        doc_hex = transfer.doc_id.hex()
        transfer.file.close()
        commit_file(
            self._layout.partial(transfer.sender, doc_hex),
            self._layout.received_envelope(transfer.sender, doc_hex),
        )
        now = int(time.time())
        receipt = Receipt.create(
            self._me.identity,
            document_id=transfer.doc_id,
            envelope_digest=verified.digest,
            sender=transfer.sender_identity,
            status="delivered",
            now=now,
        ).to_wire()
        row = InboxRow(doc_hex, transfer.sender, transfer.size, verified.digest, now, receipt, None)
        new = self._store.received(row)
        if not new:  # a concurrent connection stored it first: answer with that receipt
            stored = self._store.inbox_entry(doc_hex, transfer.sender)
            receipt = stored.receipt if stored is not None else receipt
        log.info("received a document from %s (%d bytes)",
                 transfer.sender_identity.peer_id.short, transfer.size)  # fmt: skip
        self._on_event(DocumentReceived(doc_hex, transfer.sender, transfer.size, duplicate=not new))
        return receipt

    def _abandon(self, key: int) -> None:
        transfer = self._transfers.pop(key, None)
        if transfer is not None:
            with contextlib.suppress(OSError):
                transfer.file.close()

    def channel_closed(self, channel: Link) -> None:
        """Keep the partial file for a resume; just release the handle."""
        self._abandon(id(channel))
