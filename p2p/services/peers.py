"""The peer directory: the practices this one is paired with, found, described and named.

``find`` turns what a person typed (a name, a peer id, a fingerprint or a unique
start of one) into a stored peer; ``describe`` is a peer as the local API shows it
(``GET /v1/peers``). Pairing, trusting and forgetting a peer are the daemon's (they
also reach the transport, the outbox and discovery).

Names (issue 8 §1.2): the name a peer is addressed by (``PeerRow.name``) is the one
on its card when it was paired, or one the person chose (``rename``). A newer signed
card with another name does not change it: the new name waits (``card_updated``),
shown by ``describe`` and counted by ``pending_count``, until the person takes it
(``accept_name``). Every name, proposed, chosen or accepted, passes the same check
(``name_refused``: not another peer's name, this practice's, nor like a key).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from p2p.documents import peer_names as naming
from p2p.errors import BadInput, NameRefused, NotPaired
from p2p.storage.store import PeerRow, PeerState, ProposedName, Store
from protocol import ProfileCard, RemoteProtocolError, limits

log = logging.getLogger("pli.peers")


class PeerDirectory:
    def __init__(
        self,
        store: Store,
        online: Callable[[], set[str]],
        me: Callable[[], naming.Known],
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.online = online  # the peer ids (hex) with a session open now
        self.me = me  # this practice: its peer id, the name on its card, its fingerprint
        self._on_event = on_event  # told of a name waiting or changed (any thread; ids only)
        self._naming = threading.Lock()  # a name is checked and stored as one step

    def find(self, text: str, *, states: tuple[PeerState, ...] = (PeerState.PAIRED,)) -> PeerRow:
        """A peer by fingerprint, peer id or a unique start of one, else by its name.

        A whole peer id (what programs send, once per ``POST /v1/documents``) reads
        that one row, not every peer's.
        """
        peer_id = naming.full_peer_id(text)
        if peer_id is not None:
            row = self.store.peer(peer_id)
            return naming.resolve([row] if row is not None and row.state in states else [], text)
        return naming.resolve(self.store.peers(states=states), text)

    # --- names ---------------------------------------------------------------------

    def name_refused(self, name: str, peer_hex: str) -> str | None:
        """Why ``name`` could be mistaken for another peer, this practice or a key; or None.

        Other peers are compared by the name they are addressed by here and by the
        name on their card, when the person renamed them.
        """
        if len(name.encode()) > limits.MAX_TEXT_FIELD:
            return "the name is too long"
        rows = self.store.peers()
        on_cards = [
            naming.Known(row.peer_id, card_name, row.fingerprint)
            for row in rows
            if (card_name := _card_name(row.card)) and card_name != row.name
        ]
        return naming.check_name(name, peer_hex, [*rows, *on_cards], self.me())

    def card_updated(self, peer_hex: str, card: ProfileCard, wire: bytes) -> None:
        """Store a paired peer's ``card`` if newer (a worker thread); a new name on it waits.

        ``card`` must be signed by that peer's identity. A card whose new name is refused
        is ignored whole, and logged with the peer's short id and the reason only.
        """
        with self._naming:
            row = self.store.peer(peer_hex)
            if row is None or row.state is not PeerState.PAIRED:
                return
            if not card.replaces(ProfileCard.from_wire(row.card)):
                return
            short = row.fingerprint[:5]
            waiting = self.store.proposed_names().get(row.peer_id)
            proposed = False
            if naming.folded(card.name) == naming.folded(row.name):
                waiting = None  # the card now carries the name in use
            elif card.name != _card_name(row.card):
                refused = self.name_refused(card.name, row.peer_id)
                if refused is not None:
                    log.warning("ignored a card update from %s: %s", short, refused)
                    return
                waiting, proposed = ProposedName(card.name, int(time.time())), True
                log.info(
                    "peer %s's new card carries another name; it keeps its current one "
                    "until the person runs `pli peers accept-name`",
                    short,
                )
            self.store.update_card(row.peer_id, wire, waiting)
            if proposed:
                self._tell("peer-name-waiting", row.peer_id)

    async def add(self, row: PeerRow) -> None:
        """Trust a newly paired peer: its card's name is checked against the others and its
        row stored as one step (on a worker thread, under the naming lock)."""
        await asyncio.to_thread(self._add, row)

    def _add(self, row: PeerRow) -> None:
        with self._naming:
            refused = self.name_refused(row.name, row.peer_id)
            if refused is not None:
                raise NotPaired(
                    f"This colleague's card cannot be accepted: {refused}. Ask them to choose "
                    "another name in their profile, then pair again."
                )
            self.store.save_peer(row)

    async def rename(self, text: str, name: str) -> PeerRow:
        """Address the peer ``text`` as ``name`` from now on (``POST /v1/peers/{PEER}/name``)."""
        return await asyncio.to_thread(self._rename, text, name)

    async def accept_name(self, text: str) -> PeerRow:
        """Take the name the peer's newer card carries (``POST /v1/peers/{PEER}/accept-name``)."""
        return await asyncio.to_thread(self._accept_name, text)

    def _rename(self, text: str, name: str) -> PeerRow:
        wanted = " ".join(name.split())
        with self._naming:
            row = self.find(text)
            refused = self.name_refused(wanted, row.peer_id)
            if refused is not None:
                raise NameRefused(
                    f"“{row.name}” cannot be called “{wanted}”: {refused}. Choose another "
                    "name, so that no one can take this colleague for another."
                )
            return self._named(row, wanted, "renamed")

    def _accept_name(self, text: str) -> PeerRow:
        with self._naming:
            row = self.find(text)
            waiting = self.store.proposed_names().get(row.peer_id)
            if waiting is None:
                raise BadInput(
                    f"“{row.name}” has no new name waiting: its card carries the name you "
                    "use. To choose another one: `pli peers rename PEER NAME`."
                )
            refused = self.name_refused(waiting.name, row.peer_id)
            if refused is not None:
                raise NameRefused(
                    f"The new name of “{row.name}” cannot be used: {refused}. It keeps its "
                    "current name; you may choose one with `pli peers rename PEER NAME`."
                )
            return self._named(row, waiting.name, "took the new name of")

    def _named(self, row: PeerRow, name: str, what: str) -> PeerRow:
        self.store.rename_peer(row.peer_id, name)
        log.info("%s peer %s", what, row.fingerprint[:5])
        self._tell("peer-renamed", row.peer_id)
        return dataclasses.replace(row, name=name)

    def _tell(self, kind: str, peer_hex: str) -> None:
        if self._on_event is not None:
            self._on_event({"type": kind, "peer": peer_hex})

    def pending_count(self) -> int:
        """How many paired peers have a new name waiting (``GET /v1/status``)."""
        return len(self.store.proposed_names())

    # --- what the API shows ------------------------------------------------------

    def describe(self, row: PeerRow) -> dict[str, Any]:
        """A peer as the API shows it, with the new name its card proposes, if any."""
        return self._described(row, self.store.proposed_names().get(row.peer_id))

    def _described(self, row: PeerRow, waiting: ProposedName | None) -> dict[str, Any]:
        card = ProfileCard.from_wire(row.card)
        return {
            "peer_id": row.peer_id,
            "name": row.name,
            "card_name": card.name,
            "pending_name": waiting.name if waiting is not None else None,
            "pending_since": waiting.at if waiting is not None else None,
            "profession": card.profession,
            "rpps": card.rpps,
            "practice": card.practice,
            "fingerprint": row.fingerprint,
            "state": row.state,
            "online": row.peer_id in self.online(),
            "addresses": list(row.addresses),
            "mailboxes": list(card.mailboxes) if card.mailboxes is not None else None,
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
        waiting = self.store.proposed_names()
        return [
            self._described(row, waiting.get(row.peer_id))
            for row in self.store.peers(states=(PeerState.PAIRED, PeerState.REVOKED))
        ]


def _card_name(wire: bytes) -> str:
    """The name on a stored signed card ("" if it cannot be read)."""
    try:
        return ProfileCard.from_wire(wire).name
    except RemoteProtocolError:
        return ""
