"""How the daemon reaches a paired peer: the LAN's hints, the checked plan, the dial.

Discovery's announcements are only hints (``seen``: peer id → the address last
announced on the LAN); the handshake proves who answers. ``plan`` merges the
hint, the stored addresses and those of the peer's signed card into the checked
dial plan of ``net/addresses.py`` (letters and revocation gossip use the same
one); ``connect`` reuses a live session or tries the plan in order, and
``connect_soon`` opens one in the background when a peer appears, so that its
next letter leaves at once. Peers on loopback are dialled only by a daemon that
listens on loopback itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable

from p2p.errors import PeerUnreachable
from p2p.net import addresses
from p2p.net.transport import Channel, Transport
from p2p.storage.config import Config
from p2p.storage.store import PeerRow, Store
from protocol import PeerId, ProfileCard, RemoteProtocolError


class Dialler:
    """Dials paired peers for the outbox, the revocation gossip and discovery."""

    def __init__(
        self,
        config: Config,
        store: Store,
        transport: Transport,
        paired_peer: Callable[[PeerId], PeerRow | None],
    ) -> None:
        self._config = config
        self._store = store
        self._transport = transport
        self._paired_peer = paired_peer
        self.seen: dict[str, str] = {}  # peer id -> address announced on the LAN (a hint)
        self._background: set[asyncio.Task[None]] = set()

    def on_loopback(self) -> bool:
        """Peers on loopback are dialled only by a daemon that listens there itself."""
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(self._config.listen_host).is_loopback
        return False

    async def connect(self, peer_hex: str) -> Channel:
        """The live session with this paired peer, or a new one along its dial plan."""
        peer_id = PeerId(bytes.fromhex(peer_hex))
        existing = self._transport.channel(peer_id)
        if existing is not None:
            return existing
        row = self._paired_peer(peer_id)
        if row is None:
            raise PeerUnreachable("This peer is no longer paired.")
        loopback = self.on_loopback()
        plan = addresses.dial_plan(
            self.seen.get(peer_hex), row.addresses, card_addresses(row.card), loopback=loopback
        )
        if not plan:
            raise PeerUnreachable("No address pli may dial is known for this peer yet.")
        errors = []
        for address in plan:
            target = await addresses.resolve(address, loopback=loopback)
            if target is None:
                errors.append(f"{address} is not an address pli dials.")
                continue
            try:
                return await self._transport.connect(peer_id, target)
            except PeerUnreachable as exc:
                errors.append(exc.message)
        raise PeerUnreachable(" ".join(errors))

    def plan(self, peer_hex: str) -> list[str]:
        """Where gossip may reach a peer: the same checked plan as for its letters."""
        row = self._store.peer(peer_hex)
        if row is None:
            return []
        card = card_addresses(row.card)
        seen = self.seen.get(peer_hex)
        return addresses.dial_plan(seen, row.addresses, card, loopback=self.on_loopback())

    def connect_soon(self, peer_hex: str) -> None:
        """Open the session now, so the next letter to this peer leaves at once."""

        async def connect() -> None:
            with contextlib.suppress(PeerUnreachable, ConnectionError):
                await self.connect(peer_hex)

        task = asyncio.create_task(connect())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def close(self) -> None:
        """Cancel the dials still under way."""
        for task in list(self._background):
            task.cancel()


def card_addresses(wire: bytes) -> tuple[str, ...]:
    """The addresses the peer's stored signed card lists (none if it cannot be read)."""
    try:
        return ProfileCard.from_wire(wire).addresses
    except RemoteProtocolError:
        return ()
