"""Small frozen values that services hand to the daemon, and the daemon to them.

Services of one level never import each other; what one learns and another
needs travels as one of these, through ``daemon.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from protocol import messages


@dataclass(frozen=True)
class PeerSeen:
    """Discovery saw a paired peer's hint at ``address`` (only a hint: dial to know)."""

    peer_id: str
    address: str


@dataclass(frozen=True)
class PeerGone:
    peer_id: str


@dataclass(frozen=True)
class InvitationSeen:
    """An open pairing invitation announced on the LAN."""

    nameplate: str
    address: str


class Link(Protocol):
    """What the inbox and outbox need of a live peer connection (built in transport.py)."""

    @property
    def closed(self) -> bool: ...

    async def send(self, message: messages.Message) -> None: ...

    async def send_bulk(self, frame: bytearray | bytes) -> None: ...
