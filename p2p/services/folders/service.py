"""The watched folders at work: look every ``poll_seconds``, on worker threads.

``FolderService`` takes the checked ``[folders]`` settings, the store and the
daemon's callbacks (send a document under a chosen id, find a colleague, read a
received document, tell that a document was integrated); it imports no other
service. Its loop never blocks: every look at a folder, every claim, move and
written format runs in ``asyncio.to_thread``. A folder that cannot be read (a
share gone away) is logged, counted and tried again at the next look; nothing
about a patient is logged, only counts and document ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from p2p.documents import hprim, xdm_import
from p2p.errors import BadInput, PliError
from p2p.services.folders import request as requests
from p2p.services.folders.incoming import InboxFolder, Source
from p2p.services.folders.outgoing import Claim, OutboxFolder, Unit
from p2p.services.folders.request import Refused
from p2p.storage.config import Folders
from p2p.storage.rows import InboxRow, OutboxState, PeerRow
from p2p.storage.store import Store
from protocol import RemoteProtocolError, new_document_id

log = logging.getLogger("pli.folders")

#: (name, path, media type) of each file, as the daemon's send takes them.
Files = list[tuple[str, str, str]]
Send = Callable[[str, str, dict[str, str], Files, str], Awaitable[object]]
Integrated = Callable[[str, str], Awaitable[None]]


@dataclass
class Counts:
    queued: int = 0
    refused: int = 0
    written: int = 0
    integrated: int = 0
    failures: int = 0


class FolderService:
    def __init__(
        self,
        folders: Folders,
        records: Path,
        store: Store,
        *,
        send: Send,
        find_peer: Callable[[str], PeerRow],
        source: Callable[[InboxRow], Source],
        own_rpps: Callable[[], str],
        on_integrated: Integrated | None = None,
    ) -> None:
        self.settings = folders
        self._store = store
        self._send = send
        self._find_peer = find_peer
        self._source = source
        self._own_rpps = own_rpps
        self._on_integrated = on_integrated
        self.outbox = (
            OutboxFolder(folders.outbox, folders.stable_seconds) if folders.outbox else None
        )
        self.inbox = (
            InboxFolder(folders.inbox, records / "inbox", folders.inbox_formats)
            if folders.inbox
            else None
        )
        self.counts = Counts()
        self._taken: set[str] = set()  # integrated before this start: not written again
        self._waiting: dict[str, tuple[str, Path]] = {}  # sent/ states to settle

    async def run(self) -> None:
        """Recover unfinished claims and staged documents, then look at the folders forever."""
        await self._start()
        while True:
            await self.look()
            await asyncio.sleep(self.settings.poll_seconds)

    async def _start(self) -> None:
        if self.inbox is not None:
            await asyncio.to_thread(self.inbox.create)
            self._taken = await asyncio.to_thread(self._store.integrated_documents)
        if self.outbox is not None:
            await asyncio.to_thread(self.outbox.create)
            self._waiting = await asyncio.to_thread(self.outbox.waiting)
            for claim in await asyncio.to_thread(self.outbox.pending_claims):
                await self._queue(claim)

    async def look(self) -> None:
        """One look at each folder; a failure is logged and the next look tries again."""
        for step in (self._outbox_step, self._inbox_step):
            try:
                await step()
            except (OSError, PliError) as exc:  # a share gone away, a full disk ...
                self.counts.failures += 1
                log.warning("the watched folder could not be handled: %s", type(exc).__name__)
            except Exception:  # a bug here must not stop the daemon's other work
                self.counts.failures += 1
                log.exception("the watched folder could not be handled")

    # --- the outbox folder -------------------------------------------------------------

    async def _outbox_step(self) -> None:
        if self.outbox is None:
            return
        ready, refused = await asyncio.to_thread(self.outbox.complete, time.monotonic())
        for unit, why in refused:
            await asyncio.to_thread(self.outbox.fail, unit, why)
            self.counts.refused += 1
        for unit in ready:
            try:
                claim = await asyncio.to_thread(self._claim, unit)
            except Refused as why:
                await asyncio.to_thread(self.outbox.fail, unit, why)
                self.counts.refused += 1
                log.info("a document of the outbox folder was refused (errors/)")
                continue
            await self._queue(claim)
        if self._waiting:
            await asyncio.to_thread(self._settle)

    def _settle(self) -> None:
        """Each document of ``sent/`` whose outbox row ended: its state file says how."""
        assert self.outbox is not None
        for doc_id, (peer_id, path) in list(self._waiting.items()):
            row = self._store.outbox_entry(doc_id, peer_id)
            if row is None or row.state == OutboxState.QUEUED:
                continue
            self.outbox.settle(path, row.state, row.receipt_time, row.last_error)
            del self._waiting[doc_id]

    def _claim(self, unit: Unit) -> Claim:
        """Read and check what was dropped, then claim it durably (worker thread)."""
        assert self.outbox is not None
        sidecar = requests.read_sidecar(unit.sidecar) if unit.sidecar else None
        described, parts = self._describe(unit.path)
        request = requests.build(described, sidecar, default_author_rpps=self._own_rpps())
        try:
            peer = self._find_peer(request.colleague)
        except PliError as exc:
            raise requests.unknown_colleague(request.colleague, exc) from None
        doc_id = new_document_id().hex()
        work = self.outbox.work / doc_id
        if parts is None:
            files = [(unit.path.name, str(work / unit.path.name), _media_type(unit.path))]
        else:
            files = [(p.name, str(work / "xdm" / p.name), p.media_type) for p in parts]
        claim = Claim(
            doc_id=doc_id,
            peer_id=peer.peer_id,
            colleague=peer.name,
            kind=request.kind,
            metadata=request.metadata,
            originals=[path.name for path in unit.files],
            attachments=files,
            xdm=parts is not None,
            claimed_at=int(time.time()),
        )
        return self.outbox.claim(unit, claim)

    def _describe(self, path: Path) -> tuple[requests.Described, list[xdm_import.XdmPart] | None]:
        suffix = path.suffix.lower()
        try:
            if suffix == requests.XDM_SUFFIX:
                with open(path, "rb") as handle:
                    archive, document = xdm_import.read(handle)
                    archive.close()
                return _from_xdm(document), list(document.parts)
            if suffix in requests.HPRIM_SUFFIXES:
                with open(path, "rb") as handle:
                    head = handle.read(hprim.MAX_HPRIM + 1)
                if requests.self_describing(path, head):
                    return requests.from_hprim(head), None
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise requests.unreadable(exc) from None
        except xdm_import.XdmRefused as exc:
            raise Refused(
                "archive IHE XDM refusée",
                "demandez au logiciel qui l'a produite une archive conforme, ou envoyez le "
                "document lui-même avec une fiche .json.",
                exc.message,
            ) from None
        return requests.Described(), None

    async def _queue(self, claim: Claim) -> None:
        """Queue a claimed document once: not again if the outbox holds it already."""
        assert self.outbox is not None
        if await asyncio.to_thread(self._queued, claim):
            state = await asyncio.to_thread(self.outbox.finish, claim)
            self._waiting[claim.doc_id] = (claim.peer_id, state)
            return
        try:
            if claim.xdm:
                await asyncio.to_thread(self._extract, claim)
            await self._send(
                claim.peer_id, claim.kind, claim.metadata, claim.attachments, claim.doc_id
            )
        except Refused as why:
            await asyncio.to_thread(self.outbox.fail_claim, claim, why)
            self.counts.refused += 1
            return
        except BadInput as exc:  # the daemon's own checks (size, names ...)
            await asyncio.to_thread(self.outbox.fail_claim, claim, requests.not_sent(exc))
            self.counts.refused += 1
            return
        state = await asyncio.to_thread(self.outbox.finish, claim)
        self._waiting[claim.doc_id] = (claim.peer_id, state)
        self.counts.queued += 1
        log.info("queued document %s from the outbox folder", claim.doc_id[:12])

    def _queued(self, claim: Claim) -> bool:
        return self._store.outbox_entry(claim.doc_id, claim.peer_id) is not None

    def _extract(self, claim: Claim) -> None:
        """An XDM zip's documents, out of the claimed zip into the work folder."""
        assert self.outbox is not None
        zipped = self.outbox.work_path(claim, claim.originals[0])
        target = zipped.parent / "xdm"
        target.mkdir(exist_ok=True)
        try:
            with open(zipped, "rb") as handle:
                archive, document = xdm_import.read(handle)
                with archive:
                    for part in document.parts:
                        with open(target / part.name, "wb") as out:
                            xdm_import.extract(archive, part, out)
        except OSError as exc:
            raise requests.unreadable(exc) from None
        except xdm_import.XdmRefused as exc:
            raise Refused(
                "archive IHE XDM refusée", "envoyez une archive conforme.", exc.message
            ) from None

    # --- the inbox folder ---------------------------------------------------------------

    async def _inbox_step(self) -> None:
        if self.inbox is None:
            return
        rows = await asyncio.to_thread(self._store.inbox)
        for row in self.inbox.wanted(rows, self._taken):
            try:
                await asyncio.to_thread(self._write, row)
            except (OSError, PliError, RemoteProtocolError) as exc:  # the others go on
                self.counts.failures += 1
                log.warning(
                    "document %s not written to the inbox folder (%s); tried again later",
                    row.doc_id[:12],
                    type(exc).__name__,
                )
        for record in await asyncio.to_thread(self.inbox.integrated):
            self.counts.integrated += 1
            if self._on_integrated is not None:
                with contextlib.suppress(PliError):
                    await self._on_integrated(record.doc_id, record.sender)

    def _write(self, row: InboxRow) -> None:
        assert self.inbox is not None
        self.inbox.write(row, self._source(row))
        self.counts.written += 1
        log.info("wrote document %s to the inbox folder", row.doc_id[:12])


def _from_xdm(document: xdm_import.XdmDocument) -> requests.Described:
    meta = document.metadata
    return requests.Described(
        colleague=document.recipient,
        patient=requests.PatientFields(
            family_name=meta.get("patient_family_name"),
            given_names=meta.get("patient_given_names"),
            birthdate=meta.get("patient_birthdate"),
            sex=meta.get("patient_sex"),
            ins=meta.get("patient_ins"),
        ),
        subject=meta.get("subject", ""),
        author_rpps=meta.get("author_rpps", ""),
        xdm=True,
    )


def _media_type(path: Path) -> str:
    """The media type a dropped file is sent with (from its name; HPRIM is text)."""
    import mimetypes

    if path.suffix.lower() in (".hpr", ".hprim", ".txt"):
        return "text/plain"
    guessed, encoding = mimetypes.guess_type(path.name, strict=False)
    return guessed if guessed and encoding is None else "application/octet-stream"
