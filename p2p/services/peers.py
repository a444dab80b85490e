"""The peer directory: the practices this one is paired with, found and described.

``find`` turns what a person typed (a name, a peer id, a fingerprint or a unique
start of one) into a stored peer; ``describe`` is a peer as the local API shows it
(``GET /v1/peers``). Pairing, trusting and forgetting a peer are the daemon's (they
also reach the transport, the outbox and discovery); this only reads the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2p.documents import peer_names as naming
from p2p.storage.store import PeerRow, PeerState, Store
from protocol import ProfileCard


class PeerDirectory:
    def __init__(self, store: Store, online: Callable[[], set[str]]) -> None:
        self.store = store
        self.online = online  # the peer ids (hex) with a session open now

    def find(self, text: str, *, states: tuple[PeerState, ...] = (PeerState.PAIRED,)) -> PeerRow:
        """A peer by fingerprint, peer id or a unique start of one, else by its name."""
        return naming.resolve(self.store.peers(states=states), text)

    def describe(self, row: PeerRow) -> dict[str, Any]:
        card = ProfileCard.from_wire(row.card)
        return {
            "peer_id": row.peer_id,
            "name": row.name,
            "profession": card.profession,
            "rpps": card.rpps,
            "practice": card.practice,
            "fingerprint": row.fingerprint,
            "state": row.state,
            "online": row.peer_id in self.online(),
            "addresses": list(row.addresses),
            "last_seen": row.last_seen,
            "paired_at": row.paired_at,
            **self.revocation(row.peer_id),
        }

    def revocation(self, peer_hex: str) -> dict[str, Any]:
        """Whether ``peer_hex`` is revoked: since when here, and when it was signed."""
        row = self.store.revocation(peer_hex)
        return {
            "revoked_since": row.learned_at if row is not None else None,
            "revocation_made_at": row.revoked_at if row is not None else None,
        }

    def listing(self) -> list[dict[str, Any]]:
        """The paired and the revoked peers, described (``GET /v1/peers``)."""
        return [
            self.describe(row)
            for row in self.store.peers(states=(PeerState.PAIRED, PeerState.REVOKED))
        ]
