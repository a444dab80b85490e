"""Our stream on a mailbox server, and what the server answers a publication.

``stream_config`` is the mailbox each daemon keeps on every server it joined (its
limits are in docs/mailbox.md §4), ``create_or_update`` gives it those settings;
``stored_in_time`` and ``full`` read the server's acknowledgement of a message
sent with ``Connection.publish_async``. With ``connection.py``, the only modules
that import ``nats-py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from p2p.services.mailbox import RETENTION
from p2p.services.mailbox.server_config import subject
from protocol import mailbox as frames

STREAM = "PLI"
#: What one sender may leave waiting in our mailbox; beyond, the server refuses its
#: messages (they share one subject, ``server_config.subject``, so this is per sender).
PER_SENDER_BYTES = 4 * 1024**3
PER_SENDER_MESSAGES = PER_SENDER_BYTES // frames.CHUNK_SIZE
#: The server drops a second copy of a message id seen within this window.
DEDUP_WINDOW = 24 * 3600.0
#: How long the server may take to store a message, or to answer a request.
PUBLISH_TIMEOUT = 10.0


def stream_config(
    box: str, replicas: int, *, per_sender: int = PER_SENDER_MESSAGES, max_age: float = RETENTION
) -> api.StreamConfig:
    """Our mailbox: every sender's messages, each sender capped, deleted once acknowledged."""
    return api.StreamConfig(
        name=STREAM,
        subjects=[subject(box)],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.WORK_QUEUE,
        max_age=max_age,
        max_msg_size=frames.MAX_FRAME,
        duplicate_window=min(DEDUP_WINDOW, max_age),
        discard=api.DiscardPolicy.NEW,
        max_msgs_per_subject=per_sender,
        discard_new_per_subject=True,
        num_replicas=replicas,
    )


#: JetStream's code for "no suitable peers for placement" (a cluster short of nodes
#: for the copies asked).
NO_PLACEMENT = 10005


async def create_or_update(js: Any, config: api.StreamConfig) -> None:
    """Create the stream, or give the existing one these settings: ours win.

    (Asked first: the server config allows one stream a member, so creating one that
    exists is refused as "maximum number of streams reached", whatever its settings.)
    """
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


def full(exc: Exception) -> bool:
    """Whether the server refused a message because a mailbox (or our share of it) is full."""
    return isinstance(exc, nats.js.errors.APIError) and exc.err_code in _FULL


#: JetStream's codes for "maximum messages per subject exceeded" (our share), "resource
#: limits exceeded for account" (the member's quota) and "insufficient resources" (the disk).
_FULL = frozenset({10077, 10002, 10047})


async def stored_in_time(stored: asyncio.Future[Msg]) -> bool:
    """Whether the server stored a message sent with ``publish_async``: True, False when
    that member is not on this server; raises what the server said (``APIError``: full,
    limits) or ``TimeoutError`` after ``PUBLISH_TIMEOUT`` (the future is then cancelled)."""
    answer = await asyncio.wait_for(stored, PUBLISH_TIMEOUT)
    if answer.headers and answer.headers.get(api.Header.STATUS) == "503":
        return False  # no responders: the member has no mailbox on this server
    try:
        said = json.loads(answer.data)
    except ValueError:
        raise nats.js.errors.APIError(description="an answer that is not JSON") from None
    if isinstance(said, dict) and "error" in said:
        nats.js.errors.APIError.from_error(said["error"])  # raises the error's class
    return True
