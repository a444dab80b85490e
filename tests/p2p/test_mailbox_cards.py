"""A card a peer left in our mailbox: stored only if it verifies and names that peer.

The routing seam hands it to the same path as a ``card`` message of a session
(``PeerDirectory.card_updated``, which keeps it only with a higher ``seq``); a
tampered card, or one signed by another practice, is refused (its message is
terminated) and never reaches it.
"""

from __future__ import annotations

from typing import Any, cast

from p2p.daemon.mailbox import MailboxRouting
from p2p.storage.rows import PeerRow, PeerState
from protocol import LocalIdentity, ProfileCard

A = LocalIdentity.generate(now=0)
OTHER = LocalIdentity.generate(now=0)


def row_of(me: LocalIdentity) -> PeerRow:
    return PeerRow(
        peer_id=me.peer_id.hex,
        identity=me.public.key,
        card=me.card(1, name="Dr A").sign(me.identity),
        name="Dr A",
        fingerprint=me.peer_id.fingerprint,
        discovery_secret=None,
        addresses=(),
        state=PeerState.PAIRED,
        paired_at=0,
    )


def routing(stored: list[tuple[str, ProfileCard, bytes]]) -> MailboxRouting:
    unused = cast(Any, None)  # the card path touches neither store, inbox nor outbox
    return MailboxRouting(
        unused,
        unused,
        unused,
        unused,
        mailboxes=lambda: unused,
        peer=lambda _hex: None,
        card_arrived=lambda *arrived: stored.append(arrived),
    )


def test_only_the_peers_own_verified_card_is_taken() -> None:
    stored: list[tuple[str, ProfileCard, bytes]] = []
    seam = routing(stored)
    newer = A.card(2, name="Dr A", mailboxes=("nats://h:4222",)).sign(A.identity)
    tampered = bytearray(newer)
    tampered[-1] ^= 1
    assert not seam._card(row_of(A), bytes(tampered))
    assert not seam._card(row_of(A), OTHER.card(9, name="Dr A").sign(OTHER.identity))
    assert not seam._card(row_of(A), b"not a card")
    assert stored == []
    assert seam._card(row_of(A), newer)
    ((peer_hex, card, wire),) = stored
    assert (peer_hex, card.mailboxes, wire) == (A.peer_id.hex, ("nats://h:4222",), newer)
