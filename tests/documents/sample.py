"""One fixed document, the input of the format golden files (tests/data/folders/)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from p2p.documents.letter import Letter, Part, Party

GOLDEN = Path(__file__).parent.parent / "data" / "folders"
TEXT = "Cher confrère,\nJe vous adresse Mme DUPONT pour avis.\n****FIN****\nBien à vous.\n"
PDF = b"%PDF-1.4\n% pli test page\n%%EOF\n"
FILES = {"courrier.txt": TEXT.encode("utf-8"), "bilan.pdf": PDF}


def _part(name: str, media_type: str) -> Part:
    data = FILES[name]
    return Part(
        name,
        media_type,
        len(data),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


LETTER = Letter(
    doc_id="0123456789abcdef0123456789abcdef",
    created_at=1764670000,  # 2025-12-02 10:06:40 UTC
    kind="letter",
    author=Party("Dr Claire Martin", "10003456789"),
    recipient=Party("Dr Paul Durand", "10001234567"),
    parts=(
        _part("courrier.txt", "text/plain; charset=utf-8"),
        _part("bilan.pdf", "application/pdf"),
    ),
    metadata={
        "subject": "Adressage en cardiologie",
        "patient_family_name": "Dupont",
        "patient_given_names": "Marie Claire",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
    },
)


def read_part(index: int) -> bytes:
    return FILES[LETTER.parts[index].name]
