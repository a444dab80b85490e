"""The daemon's event stream: what ``GET /v1/events`` sends to the page and to scripts.

Services report through the daemon's callbacks, some from worker threads (the
inbox's commit thread); ``EventBus.publish`` may be called from any thread and
hands the event to the event loop, which copies it to every subscriber's queue.
An event is a small dict with no patient data and no document content: its type,
a document or peer id, a status, a time. A subscriber that stops reading loses
its oldest events (``QUEUE``) rather than making the daemon's memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

QUEUE = 256  # events kept for one slow subscriber


class EventBus:
    """Fan-out of the daemon's events to any number of subscribers."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop that owns the subscribers (the daemon's)."""
        self._loop = loop
        self._thread = threading.get_ident()

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` to every subscriber; safe from any thread."""
        if self._loop is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._deliver(event)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody listens
                self._loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()  # the oldest goes: a stalled reader costs bounded memory
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue that receives every event published while the block runs."""
        if self._loop is None:
            self.bind(asyncio.get_running_loop())
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)
