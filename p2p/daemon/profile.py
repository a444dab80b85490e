"""The practice's profile and key passphrase as the local API changes them.

``update_profile`` checks the fields (``documents/profile.py``), writes
``profile.json`` with a higher ``seq`` on a worker thread (``Daemon.save_profile``,
which keeps the profile the card is built from in memory), and has the new signed
card taken to every paired peer (``cards.py``). ``change_passphrase`` writes the
key file again under a new passphrase (``storage/keystore.py``); the running
daemon keeps its keys in memory, so only its next start needs the new one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from p2p.documents.profile import checked
from p2p.errors import BadInput
from p2p.storage import keystore

if TYPE_CHECKING:
    from p2p.daemon.core import Daemon


async def update_profile(daemon: Daemon, changes: dict[str, str | None]) -> dict[str, Any]:
    """Change the fields given; the new card goes to every paired peer. The new identity."""
    fields = checked(**changes, rpps_option="“rpps”")
    if not fields:
        raise BadInput("Say what to change: “name”, “profession”, “rpps” or “practice”.")
    await daemon.save_profile(**fields)
    peers = daemon.cards.changed()
    daemon.events.publish({"type": "profile-changed"})
    return {**daemon.identity(), "seq": daemon.card().seq, "sent_to": peers}


async def change_passphrase(daemon: Daemon, current: str | None, new: str | None) -> bool:
    """Protect the key file with ``new`` (or with none); whether it is now protected."""
    home = daemon.config.home
    return await asyncio.to_thread(keystore.change_passphrase, home, current, new)
