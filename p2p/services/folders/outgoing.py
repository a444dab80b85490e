"""The outbox folder: find complete documents, claim each durably, move it when done.

Layout, inside the folder the practice software writes to::

    lettre.pdf, lettre.pdf.json     a document and its sidecar (or a .hpr, an XDM .zip)
    sent/                           sent: the files and lettre.pdf.pli.json (its state)
    errors/                         refused: the files and lettre.pdf.error.txt
    .pli/claims/<doc>.json          a claim: this document is being queued as <doc>
    .pli/work/<doc>/                its files meanwhile (and an XDM zip's documents)

Never sent twice: before anything is queued, the claim (the document id chosen,
the peer, the checked metadata) is written durably, then the files move into the
work folder. After a restart or a ``kill -9`` at any point, ``pending_claims``
gives every claim back: if the outbox already holds that document id for that
peer it is only moved to ``sent/``; otherwise it is queued again under the same
id, which the first attempt never committed. Every function here blocks (files,
fsync): the service runs them on a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from p2p.documents.filenames import numbered
from p2p.services.folders.request import HPRIM_SUFFIXES, SIDECAR, XDM_SUFFIX, Refused
from p2p.services.folders.stability import Stability
from p2p.storage.files import fsync_dir, make_private_dir, move, write_atomic

#: A document that needs a sidecar waits this long for it, then goes to errors/.
SIDECAR_WAIT = 30.0
STATE = ".pli.json"
ERROR = ".error.txt"
IGNORED = (".part", ".tmp", ".crdownload", "~")


@dataclass(frozen=True)
class Unit:
    """A complete document in the folder: its file and, if any, its sidecar."""

    path: Path
    sidecar: Path | None

    @property
    def files(self) -> list[Path]:
        return [self.path] + ([self.sidecar] if self.sidecar is not None else [])


@dataclass(frozen=True)
class Claim:
    doc_id: str
    peer_id: str
    colleague: str  # the peer's name, for the state file
    kind: str
    metadata: dict[str, str]
    originals: list[str]  # names of the dropped files (document first)
    attachments: list[tuple[str, str, str]]  # (name, file in the work folder, media type)
    xdm: bool
    claimed_at: int


class OutboxFolder:
    def __init__(self, root: Path, stable_seconds: float) -> None:
        self.root = root
        self.sent = root / "sent"
        self.errors = root / "errors"
        self.claims = root / ".pli" / "claims"
        self.work = root / ".pli" / "work"
        self.stability = Stability(stable_seconds)
        self._waiting: dict[str, float] = {}

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.sent, self.errors, self.claims, self.work):
            make_private_dir(folder)
        for folder in (self.sent, self.errors, self.claims):
            for stale in folder.glob(".*.tmp"):  # left by a kill inside write_atomic
                stale.unlink(missing_ok=True)

    # --- finding complete documents ----------------------------------------------------

    def listing(self) -> dict[str, tuple[int, int]]:
        found = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(IGNORED):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        found[entry.name] = (info.st_size, info.st_mtime_ns)
        return found

    def complete(self, now: float) -> tuple[list[Unit], list[tuple[Unit, Refused]]]:
        """Documents ready to send, and those refused already (no sidecar came)."""
        listing = self.listing()
        done = self.stability.complete(listing, now)
        ready: list[Unit] = []
        refused: list[tuple[Unit, Refused]] = []
        for name in sorted(listing):
            if name.endswith(SIDECAR) and name.removesuffix(SIDECAR) in listing:
                continue  # a sidecar: taken with its document
            unit = self._unit(name, listing)
            if not all(f.name in done for f in unit.files):
                continue
            if unit.sidecar is None and name.endswith(SIDECAR):
                if self.stability.age(name, now) >= SIDECAR_WAIT:
                    refused.append((unit, orphan_sidecar()))
                continue
            if unit.sidecar is None and not self._describes_itself(unit.path):
                if self.stability.age(name, now) >= SIDECAR_WAIT:
                    refused.append((unit, no_sidecar(name)))
                continue
            ready.append(unit)
        return ready, refused

    def _unit(self, name: str, listing: dict[str, tuple[int, int]]) -> Unit:
        sidecar = name + SIDECAR
        return Unit(self.root / name, self.root / sidecar if sidecar in listing else None)

    @staticmethod
    def _describes_itself(path: Path) -> bool:
        from p2p.services.folders.request import self_describing

        suffix = path.suffix.lower()
        if suffix not in (*HPRIM_SUFFIXES, XDM_SUFFIX):
            return False
        try:
            with open(path, "rb") as handle:
                head = handle.read(256 * 1024)
        except OSError:
            return True  # let the attempt say "unreadable"
        return self_describing(path, head)

    # --- claiming, and what follows --------------------------------------------------------

    def claim(self, unit: Unit, claim: Claim) -> Claim:
        """Record the claim durably, then move the dropped files into the work folder."""
        make_private_dir(self.work / claim.doc_id)
        data = json.dumps(asdict(claim), ensure_ascii=False).encode("utf-8")
        write_atomic(self.claims / f"{claim.doc_id}.json", [data])
        self._take(claim)
        return claim

    def _take(self, claim: Claim) -> None:
        """Move what is still in the folder into the work folder (again after a crash)."""
        work = self.work / claim.doc_id
        work.mkdir(parents=True, exist_ok=True)
        for name in claim.originals:
            with contextlib.suppress(FileNotFoundError):
                move(self.root / name, work / name)
            self.stability.forget(name)
        fsync_dir(work)
        fsync_dir(self.root)

    def pending_claims(self) -> list[Claim]:
        """Every claim not finished yet (after a restart), its files in the work folder."""
        claims = []
        for path in sorted(self.claims.glob("*.json")):
            try:
                fields = json.loads(path.read_text(encoding="utf-8"))
                claim = Claim(**fields)
            except (OSError, ValueError, TypeError):
                continue  # a claim is written atomically: only a foreign file reads so
            claim = Claim(**{**fields, "attachments": [tuple(a) for a in claim.attachments]})
            self._take(claim)
            claims.append(claim)
        for work in self.work.iterdir():  # no claim: killed before it was written, or after
            if not (self.claims / f"{work.name}.json").exists():  # it was done with
                shutil.rmtree(work, ignore_errors=True)
        return claims

    def work_path(self, claim: Claim, name: str) -> Path:
        return self.work / claim.doc_id / name

    def finish(self, claim: Claim) -> Path:
        """Queued: the dropped files to ``sent/`` with their state (its path), the claim removed.

        Again after a power cut that lost the claim's removal: the files are in
        ``sent/`` already, and so is their state file, which is kept.
        """
        work = self.work / claim.doc_id
        if not any((work / name).exists() for name in claim.originals):
            written = self._state_file(claim.doc_id)
            if written is not None:
                self._drop_claim(claim)
                return written
        state = {
            "document": claim.doc_id,
            "state": "queued",
            "colleague": claim.colleague,
            "peer_id": claim.peer_id,
            "queued_at": claim.claimed_at,
            "files": [name for name, _path, _type in claim.attachments],
        }
        first = self._move_out(work, claim.originals, self.sent, sync=False)
        data = json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8")
        path = write_atomic(self.sent / f"{first}{STATE}", [data]).path  # syncs sent/ for both
        self._drop_claim(claim)
        return path

    def _state_file(self, doc_id: str) -> Path | None:
        """The state file in ``sent/`` of document ``doc_id``, if there is one."""
        for path in self.sent.glob(f"*{STATE}"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                if json.loads(path.read_text(encoding="utf-8"))["document"] == doc_id:
                    return path
        return None

    def waiting(self) -> dict[str, tuple[str, Path]]:
        """The state files in ``sent/`` still saying "queued": doc id → (peer id, path)."""
        found = {}
        for path in self.sent.glob(f"*{STATE}"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                state = json.loads(path.read_text(encoding="utf-8"))
                if state["state"] == "queued":
                    found[str(state["document"])] = (str(state["peer_id"]), path)
        return found

    @staticmethod
    def settle(path: Path, state: str, receipt_time: int | None, why: str | None) -> None:
        """The document's end in its state file: delivered (with the receipt's time) ..."""
        fields = json.loads(path.read_text(encoding="utf-8"))
        fields.update(state=state, receipt_time=receipt_time, reason=why)
        data = json.dumps(fields, ensure_ascii=False, indent=1).encode("utf-8")
        # The file is whole (fsync'd before its rename); its new name need not survive a
        # power cut: the old one says "queued", and the next start settles it again.
        write_atomic(path, [data], sync_dir=False)

    def fail_claim(self, claim: Claim, refused: Refused) -> None:
        """Not queued after all (the daemon refused it): to ``errors/``, the claim removed."""
        work = self.work / claim.doc_id
        first = self._move_out(work, claim.originals, self.errors)
        write_atomic(self.errors / f"{first}{ERROR}", [refused.text(claim.originals[0]).encode()])
        self._drop_claim(claim, sync=True)

    def fail(self, unit: Unit, refused: Refused) -> None:
        """Refused before any claim: the files to ``errors/`` with the reason beside them."""
        first = self._move_out(self.root, [f.name for f in unit.files], self.errors)
        write_atomic(self.errors / f"{first}{ERROR}", [refused.text(unit.path.name).encode()])
        for path in unit.files:
            self.stability.forget(path.name)

    def _move_out(self, source: Path, names: list[str], target: Path, *, sync: bool = True) -> str:
        """Move ``names`` from ``source`` to ``target`` under free names; the first's name.

        ``sync``: fsync ``target`` (else the caller's next write there does).
        """
        first = names[0]
        for index, name in enumerate(names):
            with contextlib.suppress(FileNotFoundError):
                final = _free_name(target, name)
                move(source / name, final)
                if index == 0:
                    first = final.name
        if sync:
            fsync_dir(target)
        return first

    def _drop_claim(self, claim: Claim, *, sync: bool = False) -> None:
        """The claim goes. A queued one's removal is not fsync'd: a claim that a power
        cut brings back is finished again (``finish`` finds the files and their state in
        ``sent/``), queued once. A refused one's is (``sync``): tried again, it would
        find its files gone and write another reason over the first."""
        shutil.rmtree(self.work / claim.doc_id, ignore_errors=True)
        (self.claims / f"{claim.doc_id}.json").unlink(missing_ok=True)
        if sync:
            fsync_dir(self.claims)


def _free_name(folder: Path, name: str) -> Path:
    for n in range(10_000):
        candidate = folder / numbered(name, n)
        if not candidate.exists():
            return candidate
    return folder / f"{time.time_ns()}-{name}"


def no_sidecar(name: str) -> Refused:
    return Refused(
        "aucune fiche .json à côté du document",
        f"déposez « {name}.json » avec le confrère et le patient (docs/folders.md), "
        "ou un fichier HPRIM (.hpr) dont l'en-tête les donne, puis déposez à nouveau le document.",
        f"no sidecar {name}.json came within {int(SIDECAR_WAIT)} seconds.",
    )


def orphan_sidecar() -> Refused:
    return Refused(
        "fiche .json sans son document",
        "la fiche « lettre.pdf.json » accompagne « lettre.pdf » : déposez le document avec elle.",
        "a sidecar without the document it describes.",
    )
