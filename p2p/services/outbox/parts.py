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
from p2p.storage.quota import DISK_FULL, QUOTA_FULL, RATE_LIMITED, STORAGE_FAILED
from protocol import ProfileCard

#: What pli says when a recipient's daemon refuses a document, by refusal code.
#: The peer's own ``reason`` text is never shown: a peer could write anything there.
REFUSALS = {
    DISK_FULL: "Their computer's disk is nearly full; pli will offer the document again later.",
    QUOTA_FULL: "Their computer already holds as much from this practice as it accepts; "
    "pli will offer the document again once they free space.",
    RATE_LIMITED: "Their computer received its hourly limit of documents from this "
    "practice; pli will offer the document again later.",
    STORAGE_FAILED: "Their computer could not store the document; pli will try again later.",
    "too-large": "The document is over the size their computer accepts.",
    "authentication": "Their computer refused the document: it failed verification (it may "
    "have been altered on the way); pli will send it again.",
}
REFUSED_OTHERWISE = "Their computer refused the document; pli will try again later."


def refusal_sentence(code: str) -> str:
    """pli's own words for a refusal code (the code is the peer's; the words are ours)."""
    return REFUSALS.get(code, REFUSED_OTHERWISE)


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
