"""What the outbox is given, and what it says of a refusal.

``Recipient`` and ``Attachment`` are the arguments of ``Outbox.queue`` (built by
the daemon from the API's request); ``REFUSALS`` are pli's own words for the
refusal codes a recipient's daemon may answer with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from p2p.errors import BadInput
from p2p.storage.failures import ENGLISH, Failed, Failure
from p2p.storage.quota import DISK_FULL, QUOTA_FULL, RATE_LIMITED, STORAGE_FAILED
from protocol import ProfileCard

#: A recipient's refusal codes (``messages.Refuse.code``) as the outbox's own, and
#: what pli says of each (``storage/failures.py``; the page has its words for them).
#: The peer's own ``reason`` text is never shown: a peer could write anything there.
REFUSAL_CODES: dict[str, Failure] = {
    DISK_FULL: Failure.REFUSED_DISK_FULL,
    QUOTA_FULL: Failure.REFUSED_QUOTA_FULL,
    RATE_LIMITED: Failure.REFUSED_RATE_LIMITED,
    STORAGE_FAILED: Failure.REFUSED_STORAGE_FAILED,
    "too-large": Failure.REFUSED_TOO_LARGE,
    "authentication": Failure.REFUSED_AUTHENTICATION,
}
REFUSALS = {peer: ENGLISH[ours] for peer, ours in REFUSAL_CODES.items()}
REFUSED_OTHERWISE = ENGLISH[Failure.REFUSED]


def refused(code: str) -> Failed:
    """A recipient's refusal as the outbox records it: our code for the peer's, whatever
    the peer's is, and pli's sentence for it."""
    return Failed.of(REFUSAL_CODES.get(code, Failure.REFUSED))


def refusal_sentence(code: str) -> str:
    """pli's own words for a refusal code (the code is the peer's; the words are ours)."""
    return refused(code).text


@dataclass(frozen=True)
class Recipient:
    peer_id: str
    card: ProfileCard


@dataclass(frozen=True)
class Attachment:
    name: str
    path: Path
    media_type: str = "application/octet-stream"

    def check(self) -> None:
        """Refuse, in words, a file the daemon could not send: a full path, readable."""
        if not self.path.is_absolute():
            raise BadInput(
                f"The daemon needs a full path, not “{self.path}”.",
                french=f"Le démon pli a besoin d'un chemin complet, pas « {self.path} ».",
            )
        if not self.path.is_file():
            raise BadInput(
                f"The file {self.path} does not exist or is not a file.",
                french=f"Le fichier « {self.name} » n'existe plus : joignez-le à nouveau.",
            )
        if not os.access(self.path, os.R_OK):
            raise BadInput(
                f"The daemon cannot read {self.path}: check its permissions.",
                french=f"Le démon pli ne peut pas lire « {self.name} » : vérifiez ses droits.",
            )
