"""This practice's signed card, taken to every paired peer after its profile changes.

A changed profile (``pli profile set``, the page's settings) gets a higher ``seq``:
``changed()`` then dials every paired peer in the background and sends it the new
card (protocol.md §7, ``card``). A peer that cannot be reached now gets it on the
first session that opens with it (``channel_up``, from either side), and so does
every peer once after the daemon starts, since what a peer holds is not recorded
here: a card it already has is a no-op on its side (a card replaces the stored one
only with a strictly higher ``seq``). The receiving practice stores the card; a new
name on it waits for that practice's person (``services/peers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from p2p.errors import PliError
from p2p.net.transport import Channel, ChannelClosed
from protocol import ProfileCard, messages

log = logging.getLogger("pli.cards")

DIAL_TIMEOUT = 20.0  # seconds to reach one peer after a change; later, its next session


class CardSender:
    """Which peers have been sent which ``seq`` of our card in this run, and the sending."""

    def __init__(
        self,
        card: Callable[[], ProfileCard],
        sign: Callable[[ProfileCard], bytes],
        paired: Callable[[], list[str]],
        connect: Callable[[str], Awaitable[Channel]],
    ) -> None:
        self._card = card
        self._sign = sign
        self._paired = paired  # the paired peers' ids (hex)
        self._connect = connect
        self._sent: dict[str, int] = {}  # peer id (hex) -> seq of the card it was sent
        self._tasks: set[asyncio.Task[None]] = set()

    def channel_up(self, channel: Channel) -> None:
        """A session with a paired peer opened: send our card if it has not had this one."""
        self._spawn(self._offer(channel))

    def changed(self) -> int:
        """Our profile changed: take the new card to every paired peer; how many there are."""
        peers = self._paired()
        for peer_hex in peers:
            self._spawn(self._reach(peer_hex))
        return len(peers)

    def sent(self, peer_hex: str) -> int | None:
        """The ``seq`` of the card sent to this peer in this run, if any."""
        return self._sent.get(peer_hex)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _reach(self, peer_hex: str) -> None:
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                channel = await self._connect(peer_hex)
        except (PliError, TimeoutError, OSError):
            log.info("peer %s is not reachable now: it gets the new card later", peer_hex[:8])
            return
        await self._offer(channel)

    async def _offer(self, channel: Channel) -> None:
        peer_hex = channel.peer_id.hex
        card = self._card()
        if self._sent.get(peer_hex) == card.seq:
            return
        self._sent[peer_hex] = card.seq  # first, so that two sessions do not both send it
        try:
            await channel.send(messages.CardUpdate(self._sign(card)))
        except (ChannelClosed, ConnectionError):
            self._sent.pop(peer_hex, None)  # the next session tries again
            return
        log.info("sent our card (seq %d) to %s", card.seq, channel.peer_id.short)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
