"""The inbox folder: each received document written there once, as files and formats.

Each received document gets, once, ``<date>-<FAMILY>-<id8>-<file>`` for each of its
files, and, as ``inbox_formats`` says, ``<date>-<FAMILY>-<id8>.hpr`` (HPRIM),
``.xdm.zip`` (IHE XDM) and ``.fhir.json`` (FHIR R4 bundle). The practice software
sees each file whole or not at all: everything is first written (fsync'd) into
``.pli/<doc>/`` inside the folder, then a manifest, then each file is renamed into
place, then the home's record ``folders/inbox/<doc>.json`` says it was delivered.
After a crash, a staged document with its manifest is finished (each file renamed
once: it is either still staged or already in place), one without is written
again, and the staged copy of one already recorded is removed.

The documents received before the folder was configured are written too, when
the daemon starts with it (the records say which are written). The records are
about one folder (``folders/inbox/folder`` names it): when ``inbox`` names another
one, the documents not integrated yet are written again there, since the practice
software now looks there; a document it already took (integrated) is not.

When every file of a document has left the folder (moved or deleted by the
practice software), the document is "integrated": ``integrated()`` returns it
once, and the record says so. Every function here blocks: the service runs them
on a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from p2p.documents import fhir, hprim, xdm
from p2p.documents.filenames import safe_filename
from p2p.documents.letter import Letter, Part, Party
from p2p.storage.files import fsync_dir, make_private_dir, move, write_atomic, write_atomic_file
from p2p.storage.rows import InboxRow
from protocol import DocumentMeta

MANIFEST = "manifest.json"
#: In the records: the folder they are about (its absolute path, UTF-8).
FOLDER_FILE = "folder"
#: The practice software reads what pli writes: owner and group (the folder's, when the
#: folder is setgid to the software's group), nobody else (docs/folders.md).
SHARED_MODE = 0o640
MAX_HPRIM_TEXT = 1024 * 1024  # a text file larger than this is listed, not copied in


@dataclass(frozen=True)
class Source:
    """What the daemon gives for one received document (all blocking, any thread)."""

    meta: DocumentMeta
    sender: Party
    recipient: Party
    decrypt: Callable[[int], Path]  # file i, decrypted into a private temporary file


@dataclass(frozen=True)
class Written:
    doc_id: str
    sender: str
    names: list[str]
    integrated: bool = False


class InboxFolder:
    def __init__(self, root: Path, records: Path, formats: tuple[str, ...]) -> None:
        self.root = root
        self.staging = root / ".pli"
        self.records = records
        self.formats = formats
        self.done: dict[str, Written] = {}

    def create(self) -> None:
        """Make the folders, read the records, and follow a change of folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        make_private_dir(self.staging)
        make_private_dir(self.records)
        for stale in self.records.glob(".*.tmp"):  # left by a kill inside write_atomic
            stale.unlink(missing_ok=True)
        (self.records / "since").unlink(missing_ok=True)  # older homes: not used any more
        for path in self.records.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, TypeError):
                record = Written(**json.loads(path.read_text(encoding="utf-8")))
                self.done[record.doc_id] = record
        for staged in self.staging.iterdir():  # recorded, then killed before its removal
            if staged.name in self.done:
                shutil.rmtree(staged, ignore_errors=True)
        self._follow_folder()

    def _follow_folder(self) -> None:
        """Records of another folder: forget those not integrated, so they are written here.

        The records go first and the folder's name last, so that a kill in between
        forgets the rest at the next start. A home without the name (before it was
        kept) has records of this folder.
        """
        here = str(self.root.absolute())
        named = self.records / FOLDER_FILE
        try:
            recorded: str | None = named.read_text(encoding="utf-8")
        except FileNotFoundError:
            recorded = None
        if recorded == here:
            return
        if recorded is not None:
            for record in [r for r in self.done.values() if not r.integrated]:
                (self.records / f"{record.doc_id}.json").unlink(missing_ok=True)
                del self.done[record.doc_id]
            fsync_dir(self.records)
        write_atomic(named, [here.encode("utf-8")])

    def wanted(self, rows: list[InboxRow], taken: set[str]) -> list[InboxRow]:
        """The received documents not written here yet, but those ``taken`` otherwise
        (integrated through the API before the folder was configured)."""
        return [r for r in rows if r.doc_id not in self.done and r.doc_id not in taken]

    # --- writing one document -----------------------------------------------------------

    def write(self, row: InboxRow, source: Source) -> Written:
        """Stage every file and format, then rename each into place, then record it."""
        staged = self.staging / row.doc_id
        if not (staged / MANIFEST).exists():
            shutil.rmtree(staged, ignore_errors=True)
            self._stage(staged, source)
        names = json.loads((staged / MANIFEST).read_text(encoding="utf-8"))
        for name in names:
            with contextlib.suppress(FileNotFoundError):  # renamed already, before a crash
                move(staged / name, self.root / name)
        fsync_dir(self.root)
        record = Written(row.doc_id, row.sender, names)
        self._record(record)
        shutil.rmtree(staged, ignore_errors=True)
        return record

    def _stage(self, staged: Path, source: Source) -> None:
        make_private_dir(staged)
        meta = source.meta
        letter_metadata = dict(meta.metadata)
        base = base_name(meta, letter_metadata)
        parts: list[Part] = []
        texts: dict[str, str] = {}
        names: list[str] = []
        for index, entry in enumerate(meta.files):
            name = f"{base}-{safe_filename(entry.name, index + 1)}"
            part, text = _stage_file(source.decrypt(index), staged / name, entry.media_type)
            (staged / name).chmod(SHARED_MODE)
            parts.append(Part(name, entry.media_type, *part))
            if text is not None:
                texts[name] = text
            names.append(name)
        letter = Letter(
            doc_id=meta.document_id.hex(),
            created_at=meta.created_at,
            kind=meta.kind,
            author=source.sender,
            recipient=source.recipient,
            parts=tuple(parts),
            metadata=letter_metadata,
        )
        for name in self._formats(staged, base, letter, texts):
            (staged / name).chmod(SHARED_MODE)
            names.append(name)
        fsync_dir(staged)
        write_atomic(staged / MANIFEST, [json.dumps(names, ensure_ascii=False).encode()])

    def _formats(self, staged: Path, base: str, letter: Letter, texts: dict[str, str]) -> list[str]:
        names = []
        if "hprim" in self.formats:
            write_atomic(staged / f"{base}.hpr", [hprim.render(letter, texts)], sync_dir=False)
            names.append(f"{base}.hpr")
        if "xdm" in self.formats:
            target = staged / f"{base}.xdm.zip"

            def fill(out: BinaryIO) -> int:
                xdm.write(letter, lambda i: open(staged / letter.parts[i].name, "rb"), out)  # noqa: SIM115 - xdm.write closes each
                return out.tell()

            write_atomic_file(target, fill, sync_dir=False)
            names.append(target.name)
        if "fhir" in self.formats:

            def bundle(out: BinaryIO) -> int:
                fhir.write(letter, lambda i: open(staged / letter.parts[i].name, "rb"), out)  # noqa: SIM115 - fhir.write closes each
                return out.tell()

            write_atomic_file(staged / f"{base}.fhir.json", bundle, sync_dir=False)
            names.append(f"{base}.fhir.json")
        return names

    def _record(self, record: Written, *, sync: bool = True) -> None:
        data = json.dumps(record.__dict__, ensure_ascii=False).encode("utf-8")
        write_atomic(self.records / f"{record.doc_id}.json", [data], sync_dir=sync)
        self.done[record.doc_id] = record

    # --- the practice software took it --------------------------------------------------

    def integrated(self) -> list[Written]:
        """Documents whose files have all left the folder since the last look (once each)."""
        with os.scandir(self.root) as entries:
            present = {entry.name for entry in entries}
        taken = []
        for record in list(self.done.values()):
            if not record.integrated and not any(name in present for name in record.names):
                taken.append(record)
                # Whole (fsync'd) but its new name not synced: a power cut brings back
                # "not integrated", seen again at the next look (its receipt is signed once).
                self._record(Written(record.doc_id, record.sender, record.names, True), sync=False)
        return taken


def base_name(meta: DocumentMeta, metadata: dict[str, str]) -> str:
    """``20251202-DUPONT-01234567``: sorts by date, says whose, unique by the id."""
    family = metadata.get("patient_family_name") or metadata.get("patient_name", "").split(" ")[0]
    family = re.sub(r"[^A-Za-z0-9]+", "_", _ascii(family).upper()).strip("_")[:40] or "PATIENT"
    day = time.strftime("%Y%m%d", time.gmtime(meta.created_at))
    return f"{day}-{family}-{meta.document_id.hex()[:8]}"


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _stage_file(
    decrypted: Path, target: Path, media_type: str
) -> tuple[tuple[int, str, str], str | None]:
    """Copy a decrypted file into staging (durably); its (size, sha1, sha256) and its text."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    head = bytearray()

    def chunks() -> Iterator[bytes]:
        with open(decrypted, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                sha1.update(chunk)
                sha256.update(chunk)
                if len(head) <= MAX_HPRIM_TEXT:
                    head.extend(chunk[: MAX_HPRIM_TEXT + 1 - len(head)])
                yield chunk

    try:
        size = write_atomic(target, chunks(), sync_dir=False).size
    finally:
        decrypted.unlink(missing_ok=True)
    text = None
    if hprim.is_text(media_type) and len(head) <= MAX_HPRIM_TEXT:
        text = hprim.decode(bytes(head))
    return (size, sha1.hexdigest(), sha256.hexdigest()), text
