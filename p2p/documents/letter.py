"""A received or outgoing document as the practice software's formats describe it.

``Letter`` gathers what HPRIM (``hprim.py``), IHE XDM (``xdm.py``) and FHIR
(``fhir.py``) write about one document: its id and date, its kind, the patient
(from the envelope's clinical metadata, ``clinical.METADATA_KEYS``), who wrote it
and who it is for, and its files with their sizes and hashes. The writers are pure
functions of a ``Letter`` (and the files' bytes where a format carries them), so
their output is the same byte for byte for the same document: tests compare it
with golden files in ``tests/data/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field


def paris() -> dt.tzinfo:
    """Paris time: the date a French practice reads on a letter (HPRIM has no time zone)."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Europe/Paris")
    except (
        ImportError,
        OSError,
        ValueError,
        KeyError,
    ):  # no time-zone database: UTC is close enough
        return dt.UTC


@dataclass(frozen=True)
class Party:
    """The author or the recipient: a name as on their card, an RPPS when known."""

    name: str
    rpps: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class Part:
    """One file of the document, as written next to the formats."""

    name: str  # the file's name in the output folder (already made safe)
    media_type: str
    size: int
    sha1: str  # hex: the hash IHE XDS metadata carries
    sha256: str  # hex


@dataclass(frozen=True)
class Letter:
    doc_id: str  # 32 hex characters
    created_at: int  # Unix time, signed by the author
    kind: str  # protocol.KINDS
    author: Party
    recipient: Party
    parts: tuple[Part, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return str(self.metadata.get(key, ""))

    @property
    def subject(self) -> str:
        return self.get("subject") or TITLES.get(self.kind, "Document")

    @property
    def family_name(self) -> str:
        return self.get("patient_family_name") or _family_from(self.get("patient_name"))

    @property
    def given_names(self) -> str:
        return self.get("patient_given_names")

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_at, tz=dt.UTC)

    @property
    def local_date(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.created_at, tz=paris()).date()


#: The title a document gets when it has no subject, by kind (French first).
TITLES = {
    "letter": "Courrier",
    "prescription": "Ordonnance",
    "report": "Compte rendu",
    "file": "Document",
}


def _family_from(name: str) -> str:
    """The family name of a free-text patient name: written first, in capitals by custom."""
    return name.split(maxsplit=1)[0] if name.split() else ""


def media_base(media_type: str) -> str:
    """``text/plain; charset=utf-8`` → ``text/plain``."""
    return media_type.split(";", 1)[0].strip().lower()
