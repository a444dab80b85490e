"""A new document goes to the mailbox while it is still being sealed, as it does directly.

The colleague is off, so the sender cannot dial it; the mailbox is on. The
sender's chunks reach the colleague's mailbox before the envelope is committed,
all but the last: the last one waits until the envelope is durable, so the
colleague can never complete a document its sender could still lose.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from p2p.storage import mailboxes
from protocol import mailbox as frames
from tests.p2p.natsserver import NatsServer, messages_in, server_for

from .conftest import Running, pair, start_daemon, wait_for
from .test_exchange import delivered, fetch, send_file
from .test_sealing import commits_held


async def joined(tmp_path: Path) -> tuple[Running, Running, NatsServer]:
    """Two paired practices, members of one real server and connected to it."""
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    keys = [(await r.api("GET", "/v1/mailboxes/key"))[1]["member"] for r in (a, b)]
    server = await asyncio.to_thread(server_for(tmp_path / "nats", keys).start)
    for running in (a, b):
        status, body = await running.api("POST", "/v1/mailboxes", {"url": server.url})
        assert status == 201, body
    await pair(a, b)  # each card lists the mailbox
    await wait_for(lambda: bool(a.daemon.mailboxes.connected() and b.daemon.mailboxes.connected()))
    return a, b, server


async def waiting_for(server: NatsServer, home: Path) -> int:
    """Messages in the mailbox of the practice at ``home``."""
    seed = await asyncio.to_thread(mailboxes.nkey_seed, home)
    return await asyncio.to_thread(messages_in, server, seed)


async def test_chunks_reach_the_mailbox_before_the_commit_and_the_last_waits_for_it(
    tmp_path: Path,
) -> None:
    a, b, server = await joined(tmp_path)
    try:
        await b.stop()  # off: the sender cannot dial it
        scan = tmp_path / "scanner.bin"
        scan.write_bytes(os.urandom(6 * 1024 * 1024 + 12345))
        sent = a.home / "documents" / "sent"
        with commits_held(a.daemon.store):
            posting = asyncio.create_task(send_file(a, b, scan))
            await wait_for(lambda: any(sent.glob("*.pli")), timeout=20)  # written, renamed
            (envelope,) = sent.glob("*.pli")
            chunks = frames.chunk_count(envelope.stat().st_size)
            async with asyncio.timeout(30):
                while await waiting_for(server, b.home) < chunks - 1:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # whatever else would arrive has had time to
            assert await waiting_for(server, b.home) == chunks - 1  # every chunk but the last
            assert not posting.done()  # "queued" only once durable
        doc_id = await posting
        await wait_for(lambda: _posted(a, doc_id), timeout=30)
        assert await waiting_for(server, b.home) == chunks

        b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
        await wait_for(lambda: delivered(a, doc_id), timeout=60)
        assert await fetch(b, doc_id) == scan.read_bytes()
    finally:
        await a.stop()
        await b.stop()
        await asyncio.to_thread(server.stop)


def _posted(sender: Running, doc_id: str) -> bool:
    """The sender recorded the document as left in a mailbox (every chunk stored)."""
    return any(doc == doc_id for doc, _peer in sender.daemon.store.mailbox_posts())
