"""Pushed letters (``Offer.push``): offered with their bytes at once, never accepted.

A letter costs no round trip; a receiver that holds it already or refuses it
drops the pushed bytes and keeps the connection; a sender that pushes more
than it offered, or offers again mid-push, is closed and nothing is stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from p2p.events import Link
from p2p.net.transport import Channel
from protocol import limits, messages

from .conftest import Running, wait_for
from .test_exchange import delivered, send_file

Answer = messages.Accept | messages.Delivered | messages.Refuse


def record_replies(sender: Running) -> list[Answer]:
    """Every answer the sender's outbox is handed, in order."""
    seen: list[Answer] = []
    outbox = sender.daemon.outbox
    hand_over = outbox.on_reply

    def on_reply(link: Link, message: Answer) -> bool:
        seen.append(message)
        return hand_over(link, message)

    outbox.on_reply = on_reply  # type: ignore[method-assign]
    return seen


def session(a: Running, b: Running) -> Channel:
    channel = a.daemon.transport.channel(b.daemon.me.peer_id)
    assert channel is not None
    return channel


async def first_letter(a: Running, b: Running, tmp_path: Path) -> tuple[str, Path]:
    """A 10 kB letter sent from ``a`` to ``b`` and delivered: (its id, its file)."""
    letter = tmp_path / "lettre.txt"
    letter.write_bytes(os.urandom(10_000))
    doc_id = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, doc_id))
    return doc_id, letter


async def push(channel: Channel, doc_id: bytes, envelope: bytes, size: int) -> None:
    await channel.send(messages.Offer(doc_id, size, push=True))
    await channel.send_bulk(bytes([messages.FrameType.BULK]) + envelope)


async def test_a_letter_is_pushed_and_a_file_is_accepted_first(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    seen = record_replies(a)
    doc_id, _ = await first_letter(a, b, tmp_path)
    assert [type(m) for m in seen if m.document_id.hex() == doc_id] == [messages.Delivered]
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(limits.MAX_PUSHED_ENVELOPE + 1))
    file_id = await send_file(a, b, scan, kind="file")
    await wait_for(lambda: delivered(a, file_id))
    answers = [type(m) for m in seen if m.document_id.hex() == file_id]
    assert answers == [messages.Accept, messages.Delivered]


async def test_a_letter_pushed_again_gets_the_stored_receipt_and_the_session_goes_on(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    doc_id, letter = await first_letter(a, b, tmp_path)
    stored = b.daemon.store.inbox_entry(doc_id, a.daemon.me.peer_id.hex)
    assert stored is not None
    seen = record_replies(a)
    channel = session(a, b)
    # As after a kill -9 of the sender before it stored the receipt: pushed again.
    envelope = a.daemon.layout.sent_envelope(doc_id).read_bytes()
    await push(channel, bytes.fromhex(doc_id), envelope, len(envelope))
    await wait_for(lambda: any(isinstance(m, messages.Delivered) for m in seen))
    assert seen == [messages.Delivered(bytes.fromhex(doc_id), stored.receipt)]
    # Its bytes were dropped, not taken for the next transfer: the next letter goes.
    second = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, second))
    assert session(a, b) is channel
    assert len(b.daemon.store.inbox()) == 2


async def test_a_refused_push_drops_its_bytes_and_keeps_the_session(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    seen = record_replies(a)
    first, letter = await first_letter(a, b, tmp_path)
    channel = session(a, b)
    limits_before = b.daemon.quota.limits
    # This practice takes no more documents from a this hour: the first one counts.
    b.daemon.quota.limits = dataclasses.replace(limits_before, peer_documents_per_hour=1)
    envelope = a.daemon.layout.sent_envelope(first).read_bytes()
    other = os.urandom(16)
    await push(channel, other, envelope, len(envelope))
    await wait_for(lambda: any(m.document_id == other for m in seen))
    refusals = [m for m in seen if m.document_id == other]
    assert [(type(m), getattr(m, "code", None)) for m in refusals] == [
        (messages.Refuse, "rate-limited")
    ]
    b.daemon.quota.limits = limits_before
    second = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, second))
    assert session(a, b) is channel
    assert len(b.daemon.store.inbox()) == 2


async def test_more_bytes_than_pushed_close_the_connection_and_nothing_is_stored(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    first, _ = await first_letter(a, b, tmp_path)
    envelope = a.daemon.layout.sent_envelope(first).read_bytes()
    before = len(b.daemon.store.inbox())
    channel = session(a, b)
    # Offered short: the extra bytes belong to no transfer.
    await push(channel, os.urandom(16), envelope, len(envelope) - 1)
    await wait_for(lambda: channel.closed, timeout=5)
    # A stored document pushed again, with bytes beyond its pushed size: closed too.
    channel = await reconnect(a, b)
    await push(channel, bytes.fromhex(first), envelope + b"\x00", len(envelope))
    await wait_for(lambda: channel.closed, timeout=5)
    assert len(b.daemon.store.inbox()) == before
    assert list(b.daemon.layout.quarantine.iterdir()) == []


async def test_an_offer_before_the_pushed_bytes_closes_the_connection(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    await first_letter(a, b, tmp_path)
    channel = session(a, b)
    await channel.send(messages.Offer(os.urandom(16), 5000, push=True))
    await channel.send(messages.Offer(os.urandom(16), 5000, push=True))
    await wait_for(lambda: channel.closed, timeout=5)
    assert len(b.daemon.store.inbox()) == 1


async def reconnect(a: Running, b: Running) -> Channel:
    """A fresh session from ``a`` to ``b`` (the last one was closed)."""
    peer = b.daemon.me.peer_id
    await wait_for(lambda: a.daemon.transport.channel(peer) is None, timeout=5)
    link = await a.daemon.dialler.connect(peer.hex)
    await asyncio.sleep(0)
    assert isinstance(link, Channel)
    return link
