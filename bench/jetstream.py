"""The mailbox server alone: what ``nats-server`` moves on this machine, without pli.

``bench/mailbox.py`` prints it under the daemons' figures, from the same run and
server, as the ceiling the mailbox path can reach here: member A's nkey publishes
the file's size in ``CHUNK_SIZE`` messages to member B's subject (each with its
``Nats-Msg-Id``, ``WINDOW`` acknowledgements awaited at once, as the daemon
posts) while member B's nkey reads its stream with the daemon's consumer and
acknowledges each message, concurrently. No sealing, no files, no fsync on the
client side: only the server's storing, replicating nothing (one node) and
handing over. The daemons must be stopped (B's consumer is the daemon's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import api

from p2p.services.mailbox.connection import ACK_WAIT, CONSUMER
from p2p.services.mailbox.server_config import subject
from p2p.services.mailbox.stream import STREAM
from p2p.storage import mailboxes
from protocol import mailbox as frames

#: Publications awaiting the server's acknowledgement at once (the daemon's window).
WINDOW = 8
FETCH = 8


def seconds_alone(url: str, sender: Path, recipient: Path, size: int) -> float:
    """Seconds to store and read back ``size`` bytes, from A's home to B's mailbox."""
    return asyncio.run(_alone(url, sender, recipient, size))


async def _alone(url: str, sender: Path, recipient: Path, size: int) -> float:
    count = frames.chunk_count(size)
    a = await nats.connect(url, nkeys_seed_str=mailboxes.nkey_seed(sender))
    b = await nats.connect(url, nkeys_seed_str=mailboxes.nkey_seed(recipient))
    try:
        box_a, box_b = await _box(a), await _box(b)
        js_b = b.jetstream()
        await js_b.purge_stream(STREAM)
        sub = await _consumer(js_b, box_b)
        start = time.perf_counter()
        await asyncio.gather(_publish(a, box_a, box_b, count), _read(sub, count))
        return time.perf_counter() - start
    finally:
        await a.close()
        await b.close()


async def _box(client: NATS) -> str:
    """A member's box, from its stream's subject ``pli.box.<box>.*`` (the daemon made it)."""
    info = await client.jetstream().stream_info(STREAM)
    assert info.config.subjects
    box: str = info.config.subjects[0].split(".")[2]
    return box


async def _consumer(
    js: nats.js.JetStreamContext, box: str
) -> nats.js.JetStreamContext.PullSubscription:
    """The daemon's pull consumer on B's stream, made again (as at each session)."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_consumer(STREAM, CONSUMER)
    config = api.ConsumerConfig(
        durable_name=CONSUMER, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=ACK_WAIT
    )
    return await js.pull_subscribe(subject(box), durable=CONSUMER, stream=STREAM, config=config)


async def _publish(client: NATS, box_a: str, box_b: str, count: int) -> None:
    """A's side: ``count`` messages of ``CHUNK_SIZE`` random bytes, ``WINDOW`` in flight."""
    payload = os.urandom(frames.CHUNK_SIZE)
    js = client.jetstream()
    pending: deque[asyncio.Future[api.PubAck]] = deque()
    for index in range(count):
        headers = {"Nats-Msg-Id": f"bench-{index}"}
        pending.append(await js.publish_async(subject(box_b, box_a), payload, headers=headers))
        if len(pending) >= WINDOW:
            await pending.popleft()
    while pending:
        await pending.popleft()


async def _read(sub: nats.js.JetStreamContext.PullSubscription, count: int) -> None:
    """B's side: fetch and acknowledge until ``count`` messages came."""
    read = 0
    while read < count:
        try:
            batch = await sub.fetch(FETCH, timeout=5.0)
        except nats.errors.TimeoutError:
            continue
        for msg in batch:
            await msg.ack()
        read += len(batch)
