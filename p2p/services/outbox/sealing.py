"""A new envelope streamed to its recipients while it is still being sealed to disk.

Sealing a 1 GiB file (encrypt, hash, write, fsync) takes about as long as
sending it; done one after the other, a person waits for both. Here the seal
runs on a worker thread into a private temporary file next to the envelope's
final name (``write_atomic``) and reports how much of it is written; a sender
connected to a recipient offers the envelope at once (its size is known
before the first byte is sealed: ``SealedEnvelope.size``) and streams what is
written, while the rest is sealed. (A letter, at most
``limits.MAX_PUSHED_ENVELOPE``, is not: it is pushed whole once durable,
``Outbox._push``, which saves it the accept's round trip.)

Nothing lost, nothing twice, exactly as when sealing came first:

- The local API answers "queued" only once the envelope is fsync'd under its
  final name and its outbox rows are committed (``durable``).
- Until then the envelope's last byte is held back. A recipient verifies,
  stores and signs a receipt for whole envelopes only, so it can never hold a
  document its sender could still lose. Killed before that: the sender's
  temporary file is removed at the next start (``Layout.create``), the
  recipient's partial file expires (``Quota.sweep``), and the caller was never
  told "queued". Killed after: the row is there, and the outbox resumes from
  the offset the recipient holds, reading the same bytes from the final file.

A ``Sealing`` is shared by the sealing thread and one sender per recipient
(``Early``); its state lives on the event loop: the thread's reports reach it
through ``call_soon_threadsafe``, in order. ``send_envelope`` streams an
envelope that is durable already (a retry, a resumed transfer) the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2p.events import Link
from p2p.storage.store import OutboxRow
from protocol import messages

#: Bytes of envelope per BULK frame (plus the type byte).
BULK_PAYLOAD = 1024 * 1024

#: With no sender streaming the envelope, the sealed bytes further behind the
#: write than this leave the page cache (``droppable``).
CACHE_BEHIND = 64 * 1024 * 1024

#: How far a sender at a position may stream (it waits until it may send a frame).
Limit = Callable[[int, int], Awaitable[int]]


class SealFailed(Exception):
    """The envelope could not be sealed: nothing was queued; its transfers stop."""


class ShortEnvelope(Exception):
    """The envelope's file holds fewer bytes than it should (changed on disk)."""


class Sealing:
    """One envelope on its way to disk, as the senders streaming it see it."""

    def __init__(self, doc_id: str, peer_ids: Sequence[str], final: Path) -> None:
        self.doc_id = doc_id
        self.peer_ids = tuple(peer_ids)
        self.final = final
        self.size = 0  # announced by the sealing thread before it writes
        self.tmp: Path | None = None
        self.readable = 0  # bytes written to the temporary file, readable there
        self.rows: Mapping[str, OutboxRow] | None = None  # once durable
        self.error: BaseException | None = None
        #: The lowest position of the senders streaming now (None: none is), read by
        #: the sealing thread; ``_readers`` (on the loop) holds each one's position.
        self.read_floor: int | None = None
        self._readers: dict[object, int] = {}
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    # --- reports from the sealing thread (WriteProgress, and more) -------------------

    def announce(self, size: int) -> None:
        self._tell(self._update, "size", size)

    def opened(self, tmp: Path) -> None:
        self._tell(self._update, "tmp", tmp)

    def written(self, size: int) -> None:
        self._tell(self._update, "readable", size)

    def committed(self, rows: Mapping[str, OutboxRow]) -> None:
        self._tell(self._update, "rows", dict(rows))

    def droppable(self, size: int) -> int:
        """Sealing thread: the bytes below this offset may leave the page cache.

        Those behind every sender streaming the envelope now; with none, those
        more than ``CACHE_BEHIND`` behind the write (a sender about to start
        finds the start of the envelope in memory). A sender that falls further
        behind reads from the disk: slower, never wrong.
        """
        floor = self.read_floor
        return max(0, size - CACHE_BEHIND) if floor is None else min(floor, size)

    def _tell(self, update: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the daemon is stopping
            self._loop.call_soon_threadsafe(update, *args)

    # --- on the event loop -----------------------------------------------------------

    def _update(self, name: str, value: object) -> None:
        setattr(self, name, value)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # every waiter, whichever recipient it streams to

    def reading(self, reader: object, position: int | None) -> None:
        """``reader`` streams the envelope and is at ``position`` (None: it stopped)."""
        if position is None:
            self._readers.pop(reader, None)
        else:
            self._readers[reader] = position
        self.read_floor = min(self._readers.values(), default=None)

    def fail(self, error: BaseException) -> None:
        """Sealing stopped (the caller is told why): the transfers under way stop too."""
        self._update("error", error)

    def _check(self) -> None:
        if self.error is not None:
            raise SealFailed("the document could not be sealed") from self.error

    async def started(self) -> int:
        """The envelope's size, once the sealing thread has opened its file (a letter,
        sealed in memory by its group commit: once it is durable)."""
        while True:
            changed = self._changed
            self._check()
            if self.tmp is not None or self.rows is not None:
                return self.size
            await changed.wait()

    async def limit(self, position: int, frame: int) -> int:
        """How far a sender at ``position`` may stream: at least ``frame`` bytes past it,
        or the whole envelope once durable. Waits for the seal to get there."""
        while True:
            changed = self._changed
            self._check()
            if self.rows is not None:
                return self.size
            held_back = min(self.readable, self.size - 1)  # the last byte waits for durable
            if self.tmp is not None and held_back - position >= frame:
                return held_back
            await changed.wait()

    async def durable(self) -> Mapping[str, OutboxRow]:
        """The outbox rows, once the envelope is durable and queued."""
        while True:
            changed = self._changed
            self._check()
            if self.rows is not None:
                return self.rows
            await changed.wait()

    def open(self) -> io.BufferedReader:
        """The envelope's file for reading: the temporary one, or the final one once renamed."""
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                return open(self.tmp, "rb")
        return open(self.final, "rb")


@dataclass(frozen=True)
class Early:
    """A document for ``peer_id`` still being sealed: offered and streamed meanwhile."""

    sealing: Sealing
    peer_id: str

    @property
    def doc_id(self) -> str:
        return self.sealing.doc_id

    async def row(self) -> OutboxRow:
        """Its outbox row, once the envelope is durable (``SealFailed`` if it never is)."""
        return (await self.sealing.durable())[self.peer_id]

    async def send(self, link: Link, offset: int, sent: Callable[[int], None]) -> None:
        """Stream from ``offset`` as the seal goes; the last frame once durable."""
        sealing = self.sealing

        def reached(position: int) -> None:
            sealing.reading(self, position)
            sent(position)

        sealing.reading(self, offset)
        try:
            size = await sealing.started()
            with sealing.open() as handle:
                await _frames(link, handle, offset, size, limit=sealing.limit, sent=reached)
        finally:
            sealing.reading(self, None)


async def send_envelope(
    link: Link, path: Path, offset: int, size: int, sent: Callable[[int], None]
) -> None:
    """Stream a durable envelope from ``offset``; ``sent`` is told each position reached."""

    async def whole(_position: int, _frame: int) -> int:
        return size

    with open(path, "rb") as handle:
        await _frames(link, handle, offset, size, limit=whole, sent=sent)


async def _frames(
    link: Link,
    handle: io.BufferedReader,
    position: int,
    size: int,
    *,
    limit: Limit,
    sent: Callable[[int], None],
) -> None:
    """BULK frames of ``handle`` from ``position`` to ``size``, as far as ``limit``
    allows each time (for a sealing envelope: the full frames of what is written)."""
    handle.seek(position)
    while position < size:
        end = await limit(position, BULK_PAYLOAD)
        while position < end:
            length = min(BULK_PAYLOAD, end - position)
            if length < BULK_PAYLOAD and end < size:
                break  # the rest of this frame is still being sealed
            frame = bytearray(1 + length)
            frame[0] = messages.FrameType.BULK
            if handle.readinto(memoryview(frame)[1:]) != length:
                raise ShortEnvelope
            await link.send_bulk(frame)
            position += length
            sent(position)
