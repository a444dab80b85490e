"""``pli send`` given an IHE XDM zip: its documents are sent, with its patient and title.

An XDM zip (the way MSSanté and some practice software export a document) carries
``IHE_XDM/SUBSET01/METADATA.XML``. ``unpacked`` recognises one among the files
``pli send`` was given, reads it as hostile (``documents/xdm_import.py``: zip-slip,
links, bombs, DTDs refused in words), copies its documents into a private
temporary folder, removed once the daemon sealed them, and gives what
METADATA.XML says of the patient, the title and the author; the options typed on
the command line win (``merged_patient``). A zip that is not XDM is sent as it is.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from p2p.cli.sending import Patient

#: METADATA.XML's patient keys → the ``Patient`` keys ``clinical_metadata`` takes.
PATIENT_KEYS = {
    "patient_family_name": "family_name",
    "patient_given_names": "given_names",
    "patient_birthdate": "birthdate",
    "patient_sex": "sex",
    "patient_ins": "ins",
}


@dataclass
class Unpacked:
    files: list[tuple[str, str, str]] = field(default_factory=list)  # (name, path, media type)
    metadata: dict[str, str] = field(default_factory=dict)  # from METADATA.XML
    zips: int = 0
    documents: int = 0

    def summary(self) -> str:
        """What was read, for the terminal (the zip's text cleaned of escapes)."""
        from p2p.cli.render import clean

        names = (self.metadata.get(k, "") for k in ("patient_family_name", "patient_given_names"))
        patient = clean(" ".join(names).strip())
        return f"IHE XDM zip read: {self.documents} document(s)" + (
            f" for {patient}." if patient else "."
        )


def is_xdm(path: str) -> bool:
    """A zip with an IHE XDM submission set (``IHE_XDM/SUBSET01/METADATA.XML``)."""
    from p2p.documents.xdm import METADATA

    if not path.lower().endswith(".zip"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return METADATA in archive.NameToInfo
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False  # not a zip pli can read as XDM: sent as the file it is


@contextlib.contextmanager
def unpacked(
    files: list[str], paths: list[str], media_type: Callable[[str], str]
) -> Iterator[Unpacked]:
    """``files`` as typed and their checked ``paths``; an XDM zip's documents replace it."""
    result = Unpacked()
    folder = Path(tempfile.mkdtemp(prefix="pli-xdm-"))  # mode 0700
    try:
        for typed, path in zip(files, paths, strict=True):
            if is_xdm(path):
                result.zips += 1
                _extract(Path(path), folder / str(result.zips), result)
            else:
                result.files.append((Path(typed).name, path, media_type(path)))
        yield result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extract(path: Path, target: Path, result: Unpacked) -> None:
    from p2p.documents import xdm_import

    target.mkdir()
    with open(path, "rb") as handle:
        archive, document = xdm_import.read(handle)
        with archive:
            for part in document.parts:
                with open(target / part.name, "wb") as out:
                    xdm_import.extract(archive, part, out)
                result.files.append((part.name, str(target / part.name), part.media_type))
                result.documents += 1
    for key, value in document.metadata.items():
        result.metadata.setdefault(key, value)


def merged_patient(typed: Patient, found: dict[str, str]) -> Patient:
    """The patient options typed, completed by the XDM zip's own fields."""
    named = bool(typed["patient_name"] or typed["family_name"] or typed["given_names"])
    return Patient(
        patient_name=typed["patient_name"],
        family_name=typed["family_name"] if named else found.get("patient_family_name"),
        given_names=typed["given_names"] if named else found.get("patient_given_names"),
        birthdate=typed["birthdate"] or found.get("patient_birthdate"),
        sex=typed["sex"] or found.get("patient_sex"),
        ins=typed["ins"] or found.get("patient_ins"),
    )
