"""Revocations received on the peer port, applied, and passed on (gossip).

A revocation statement (``protocol.Revocation``) is self-authenticating, so
anyone may hand one to the daemon, without a Noise session: the transport
gives this service the request body and the source IP (``receive``). The
service then:

1. rate-limits by source IP (token bucket, bounded table of IPs) and overall;
2. parses and verifies the statement (exactly 105 bytes; the transport reads no more);
3. stores it (``Store.revoke``: in one commit the statement, the peer row
   marked ``revoked``, its queued letters ``cancelled``); a statement already
   known stops here, which is what de-duplicates gossip;
4. lets the daemon act on it (``apply``: cut a live session with that identity);
5. if the identity was one of our peers (any state), pushes the statement to
   each of our other paired peers (``push``), at most ``MAX_PARALLEL_PUSHES``
   at a time. A peer that could not be reached stays pending and is tried again
   when it is seen again (``peer_back``), at most ``MAX_PENDING`` pairs; that
   list lives in memory, so at start the statements learned in the last
   ``RESUME_WITHIN`` are passed on again (``resume``).

Statements about identities we never knew are stored (so a later pairing with
that key is refused) but not passed on: otherwise anybody could make us
broadcast as many self-made revocations as the rate limit lets through. At
most ``MAX_UNKNOWN`` of those are kept.

What must not: import the transport or another service (the daemon wires them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from p2p.ratelimit import KeyedBuckets, TokenBucket
from p2p.storage.store import RevocationRow, Store
from protocol import LocalIdentity, RemoteProtocolError, Revocation, limits

log = logging.getLogger("pli.revocation")

MAX_PARALLEL_PUSHES = 8
MAX_PENDING = 4096
MAX_TRACKED_IPS = 1024
#: At start, statements learned this recently are passed on again (seconds).
RESUME_WITHIN = 30 * 24 * 3600

#: (HTTP status, short code) answered on the peer port.
Answer = tuple[int, str]
Push = Callable[[str, bytes], Awaitable[int]]


@dataclass(frozen=True)
class Pushed:
    """What one push of a statement gave."""

    address: str
    peer_id: str | None
    result: str  # stored | known | refused | unreachable


class RevocationService:
    def __init__(
        self,
        store: Store,
        me: LocalIdentity,
        *,
        apply: Callable[[Revocation], Awaitable[None]],
        addresses: Callable[[str], list[str]],
        push: Push,
    ) -> None:
        self._store = store
        self._me = me
        self._apply = apply
        self._addresses = addresses  # peer hex -> where to reach it, best first
        self._push = push
        self._ips = KeyedBuckets(
            limits.REVOCATION_BURST_PER_IP, limits.REVOCATIONS_PER_SECOND_PER_IP, MAX_TRACKED_IPS
        )
        self._overall = TokenBucket(limits.REVOCATION_BURST, limits.REVOCATIONS_PER_SECOND)
        self._pending: OrderedDict[tuple[str, str], None] = OrderedDict()  # (to peer, revoked)
        self._slots = asyncio.Semaphore(MAX_PARALLEL_PUSHES)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- receiving ----------------------------------------------------------------

    def _allowed(self, ip: str) -> bool:
        return self._ips.take(ip) and self._overall.take()

    async def receive(self, data: bytes, ip: str) -> Answer:
        """A statement that came to the peer port from ``ip``."""
        if not self._allowed(ip):
            log.warning("refused a revocation from %s: too many", ip)
            return 429, "too-many"
        try:
            revocation = Revocation.from_wire(data)
        except RemoteProtocolError as exc:
            log.warning("refused a revocation from %s: %s", ip, exc.code)
            return (413 if exc.code == "too-large" else 400), exc.code
        new = await self.learn(revocation, source=ip)
        return (201, "stored") if new else (200, "known")

    async def learn(self, revocation: Revocation, *, source: str, gossip: bool = True) -> bool:
        """Store and act on a verified statement; pass it on if it is new and about a peer."""
        peer_hex = revocation.peer_id.hex
        own = revocation.identity == self._me.public
        known_peer = own or self._store.peer(peer_hex) is not None
        row = RevocationRow(
            peer_hex,
            revocation.identity.key,
            revocation.to_wire(),
            revocation.revoked_at,
            int(time.time()),
            source,
            known_peer,
        )
        new = await asyncio.to_thread(self._store.revoke, row)  # a commit: off the loop
        if not new:
            return False
        who = "this practice" if own else peer_hex[:8]
        log.warning("the identity %s is revoked (statement from %s)", who, source)
        await self._apply(revocation)
        if known_peer and gossip:
            self.spread(revocation)
        return True

    # --- passing on ----------------------------------------------------------------

    def spread(self, revocation: Revocation) -> None:
        """Push to every paired peer except the revoked one (in the background)."""
        revoked = revocation.peer_id.hex
        for row in self._store.peers():
            if row.peer_id != revoked:
                self._remember(row.peer_id, revoked)
                self._start(row.peer_id, revoked)

    def peer_back(self, peer_hex: str) -> None:
        """A peer is reachable again: push what it has not acknowledged yet."""
        for to, revoked in list(self._pending):
            if to == peer_hex:
                self._start(to, revoked)

    def _remember(self, to: str, revoked: str) -> None:
        self._pending[(to, revoked)] = None
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    def _start(self, to: str, revoked: str) -> None:
        task = asyncio.create_task(self._push_pending(to, revoked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_pending(self, to: str, revoked: str) -> None:
        row = self._store.revocation(revoked)
        if row is None:
            return
        for address in self._addresses(to):
            result = await self.push_to(address, row.statement)
            if result in ("stored", "known", "refused"):
                self._pending.pop((to, revoked), None)
                log.info("revocation of %s passed on to %s: %s", revoked[:8], to[:8], result)
                return

    async def push_to(self, address: str, statement: bytes) -> str:
        async with self._slots:
            try:
                status = await self._push(address, statement)
            except (OSError, TimeoutError, ConnectionError):
                return "unreachable"
        if status == 201:
            return "stored"
        if status == 200:
            return "known"
        return "unreachable" if status in (429, 503) or status >= 500 else "refused"

    async def publish(self, revocation: Revocation, addresses: list[str]) -> list[Pushed]:
        """``pli revoke`` through this daemon: learn it, then push to peers and ``addresses``.

        Paired peers are pushed to here (not in the background) so the person sees
        who was told; the LAN and given addresses come in ``addresses``.
        """
        await self.learn(revocation, source="local", gossip=False)
        revoked, wire = revocation.peer_id.hex, revocation.to_wire()
        peers = [row.peer_id for row in self._store.peers() if row.peer_id != revoked]
        known = {a for peer in peers for a in self._addresses(peer)}
        others = [a for a in dict.fromkeys(addresses) if a not in known]
        told = await asyncio.gather(
            *(self._tell_peer(peer, wire) for peer in peers),
            *(self._tell_address(address, wire) for address in others),
        )
        for item in told:
            if item.peer_id is not None and item.result == "unreachable":
                self._remember(item.peer_id, revoked)  # told when it is seen again
        return list(told)

    async def _tell_peer(self, peer_hex: str, wire: bytes) -> Pushed:
        """Push to a paired peer at each of its addresses in turn, until one answers."""
        result, tried = "unreachable", ""
        for address in self._addresses(peer_hex):
            tried = tried or address
            result = await self.push_to(address, wire)
            if result != "unreachable":
                return Pushed(address, peer_hex, result)
        return Pushed(tried or "-", peer_hex, result)

    async def _tell_address(self, address: str, wire: bytes) -> Pushed:
        return Pushed(address, None, await self.push_to(address, wire))

    def resume(self, *, now: int, within: int = RESUME_WITHIN) -> None:
        """At start: pass on again what was learned lately (the waiting list was in memory).

        Peers that already hold a statement answer ``known`` and stop there.
        """
        for row in self._store.revocations():
            if row.known_peer and row.learned_at >= now - within:
                self.spread(Revocation.from_wire(row.statement))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
