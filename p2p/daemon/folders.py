"""The seam between the watched folders and the rest of the daemon.

``build`` makes the ``FolderService`` when ``[folders]`` names a folder, and gives
it what it needs of the others: sending under a chosen document id (the outbox,
through ``Daemon.send``), finding a colleague by name, fingerprint, peer id or
RPPS (the peers), reading a received document (the archive), this practice's
RPPS. A document taken out of the inbox folder is marked integrated, which sends
its sender the signed "integrated" receipt of issue 13 §2.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Protocol

from p2p.documents.letter import Party
from p2p.errors import PeerUnknown, PliError
from p2p.services.archive import Archive
from p2p.services.folders.incoming import Source
from p2p.services.folders.service import FolderService
from p2p.services.outbox import Attachment
from p2p.services.peers import PeerDirectory
from p2p.storage.config import Config, load_profile
from p2p.storage.files import Layout
from p2p.storage.rows import InboxRow, PeerRow
from p2p.storage.store import Store
from protocol import ProfileCard


class Daemon(Protocol):
    """What the seam uses of ``core.Daemon`` (named here: core imports this module)."""

    config: Config
    store: Store
    layout: Layout
    archive: Archive
    peers: PeerDirectory

    def card(self) -> ProfileCard: ...

    async def mark_integrated(self, text: str, error_code: int | None = None) -> dict[str, Any]: ...

    async def send(
        self,
        targets: list[str],
        kind: str,
        metadata: dict[str, str],
        files: list[Attachment],
        *,
        doc_id: str | None = None,
    ) -> tuple[str, list[str]]: ...


log = logging.getLogger("pli.folders")
_RPPS = re.compile(r"\d{11}")


def build(daemon: Daemon) -> FolderService | None:
    folders = daemon.config.folders
    if folders.outbox is None and folders.inbox is None:
        return None
    seam = FolderSeam(daemon)
    return FolderService(
        folders,
        daemon.config.home / "folders",
        daemon.store,
        send=seam.send,
        find_peer=seam.find_peer,
        source=seam.source,
        own_rpps=seam.own_rpps,
        on_integrated=seam.integrated,
    )


class FolderSeam:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def send(
        self,
        peer_id: str,
        kind: str,
        metadata: dict[str, str],
        files: list[tuple[str, str, str]],
        doc_id: str,
    ) -> object:
        attachments = [Attachment(name, Path(path), media) for name, path, media in files]
        return await self.daemon.send([peer_id], kind, metadata, attachments, doc_id=doc_id)

    def find_peer(self, text: str) -> PeerRow:
        """A paired colleague by what ``pli send`` takes, or by the RPPS on their card."""
        try:
            return self.daemon.peers.find(text)
        except PeerUnknown:
            if not _RPPS.fullmatch(text.strip()):
                raise
        rows = [
            row
            for row in self.daemon.store.peers()
            if ProfileCard.from_wire(row.card).rpps == text.strip()
        ]
        if len(rows) != 1:
            raise PeerUnknown(f"No paired colleague has the RPPS {text.strip()}.")
        return rows[0]

    def own_rpps(self) -> str:
        try:
            return str(load_profile(self.daemon.config.home).get("rpps") or "")
        except PliError:
            return ""

    def source(self, row: InboxRow) -> Source:
        """A received document for the inbox folder (blocking: it reads the envelope)."""
        archive = self.daemon.archive
        path = self.daemon.layout.received_envelope(row.sender, row.doc_id)
        meta = archive.describe(path)
        sender = self.daemon.store.peer(row.sender)
        card = ProfileCard.from_wire(sender.card) if sender is not None else None
        me = self.daemon.card()
        return Source(
            meta=meta,
            sender=Party(
                sender.name if sender is not None else row.sender[:16],
                card.rpps if card is not None and card.rpps != "-" else "",
                sender.fingerprint if sender is not None else "",
            ),
            recipient=Party(me.name, me.rpps if me.rpps != "-" else ""),
            decrypt=lambda index: archive.decrypt_file(path, index),
        )

    async def integrated(self, doc_id: str, sender: str) -> None:
        """The practice software took the document out of the inbox folder: its sender
        gets a signed "integrated" receipt (``Daemon.mark_integrated``, issue 13 §2),
        if this practice sends them (``receipts_integrated``)."""
        answer = await self.daemon.mark_integrated(doc_id)
        log.info(
            "document %s integrated from the inbox folder (%s)", doc_id[:12], answer.get("receipt")
        )
