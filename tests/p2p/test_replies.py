"""A paired receiver that floods its sender with answers is closed; memory stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from p2p.events import Link
from p2p.net.transport import ChannelClosed
from protocol import PublicIdentity, limits, messages

from .conftest import Running, wait_for
from .test_exchange import delivered, send_file


async def _largest_reply_queue(sender: Running, stop: asyncio.Event) -> int:
    largest = 0
    while not stop.is_set():
        sizes = [queue.qsize() for queue in sender.daemon.outbox._replies.values()]
        largest = max([largest, *sizes])
        await asyncio.sleep(0.002)
    return largest


async def test_a_flood_of_answers_about_one_document_closes_the_connection(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    flooded = asyncio.Event()

    async def flood(channel: Link, sender: PublicIdentity, offer: messages.Offer) -> None:
        # Accept, then keep answering while the sender streams (and cannot read them).
        with contextlib.suppress(ChannelClosed, ConnectionError):
            await channel.send(messages.Accept(offer.document_id, 0))
            for _ in range(3000):
                await channel.send(messages.Refuse(offer.document_id, "busy", "x" * 400))
        flooded.set()

    b.daemon.inbox.on_offer = flood  # type: ignore[method-assign]
    scan = tmp_path / "scan.bin"
    scan.write_bytes(os.urandom(48 * 1024 * 1024))
    stop = asyncio.Event()
    watcher = asyncio.create_task(_largest_reply_queue(a, stop))
    await send_file(a, b, scan)
    await asyncio.wait_for(flooded.wait(), 20)
    await wait_for(lambda: a.daemon.transport.channel(b.daemon.me.peer_id) is None, timeout=5)
    stop.set()
    assert await watcher <= limits.MAX_REPLIES_PER_OFFER


async def test_answers_about_documents_never_offered_close_the_connection(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    letter = tmp_path / "lettre.txt"
    letter.write_text("Cher confrère,\n")
    doc_id = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, doc_id))
    channel = b.daemon.transport.channel(a.daemon.me.peer_id)
    assert channel is not None

    async def answers(count: int) -> None:
        with contextlib.suppress(ChannelClosed, ConnectionError):
            for _ in range(count):
                await channel.send(messages.Delivered(os.urandom(16), b"\x00" * 64))

    await answers(limits.UNSOLICITED_REPLY_BURST // 2)  # late answers: tolerated
    await asyncio.sleep(0.3)
    assert a.daemon.transport.channel(b.daemon.me.peer_id) is not None
    await answers(limits.UNSOLICITED_REPLY_BURST * 4)
    await wait_for(lambda: channel.closed, timeout=5)
    # The sender reconnects for its next letter: only the abusive connection went.
    second = await send_file(a, b, letter, kind="letter")
    await wait_for(lambda: delivered(a, second))
