"""HPRIM-headed text files: the 12-line header French practice software imports.

The layout is the one of the "H.PR.I.M. Médecins" recommendation (version 3.0,
March 1997) as Apicrypt clients and the practice software use it (docs/folders.md
cites the sources): twelve lines, then the text, then ``****FIN****``.

====  =========================================================
line  content
====  =========================================================
1     the document's title (read as its index by the software)
2     patient's family name (capitals)
3     patient's given names
4     address, line 1 (empty: no document carries one, docs/folders.md)
5     address, line 2 (empty)
6     postcode and town (empty)
7     birth date, DD/MM/YYYY
8     social-security number (the INS, NIR + key)
9     the sender's reference: pli's document id
10    the document's date, DD/MM/YYYY
11    the sender (name and RPPS)
12    the recipient (name and RPPS)
====  =========================================================

``render`` writes one (Windows-1252 with CRLF line ends, as the software expects);
``parse`` reads one dropped in the outbox folder, or raises ``BadInput`` in words.
Both are pure: bytes in, bytes or values out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from p2p.documents.letter import Letter, Party, media_base
from p2p.errors import BadInput

HEADER_LINES = 12
END = "****FIN****"
END_OF_FILE = "****FINFICHIER****"
ENCODING = "cp1252"
#: Longest HPRIM file pli reads in the outbox folder (a header and a letter's text).
MAX_HPRIM = 4 * 1024 * 1024
_DATE = re.compile(r"(\d{2})[/.-](\d{2})[/.-](\d{4})")
_RPPS = re.compile(r"(?<!\d)(\d{11})(?!\d)")


def _one_line(text: str) -> str:
    """A header field stays on its line: no line breaks or control characters."""
    return " ".join("".join(ch if ch >= " " else " " for ch in text).split())


def _party(party: Party) -> str:
    return _one_line(f"{party.name} {party.rpps}".strip())


def _date(iso: str) -> str:
    """``1984-05-23`` → ``23/05/1984``; empty stays empty."""
    if not iso:
        return ""
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


def header(letter: Letter) -> list[str]:
    """The twelve header lines of ``letter``."""
    return [
        _one_line(letter.subject),
        _one_line(letter.family_name.upper()),
        _one_line(letter.given_names),
        "",
        "",
        "",
        _date(letter.get("patient_birthdate")),
        letter.get("patient_ins"),
        letter.doc_id,
        letter.local_date.strftime("%d/%m/%Y"),
        _party(letter.author),
        _party(letter.recipient),
    ]


def body_text(letter: Letter, texts: dict[str, str]) -> list[str]:
    """The text part: each text file's own text, then the list of the other files.

    ``texts`` maps a part's name to its decoded text, for the parts that are text;
    the others (a PDF ...) are written next to this file and named here.
    """
    lines: list[str] = []
    for part in letter.parts:
        if part.name in texts:
            lines.extend(texts[part.name].replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    while lines and not lines[-1].strip():
        lines.pop()
    others = [part for part in letter.parts if part.name not in texts]
    if others:
        if lines:
            lines.append("")
        lines.append("Pièces jointes (fichiers à côté de celui-ci) :")
        lines.extend(f"- {_one_line(part.name)} ({_kib(part.size)})" for part in others)
    # A line of the text that reads as the end mark would cut the letter short.
    return [f" {line}" if line.strip() in (END, END_OF_FILE) else line for line in lines]


def _kib(size: int) -> str:
    return f"{max(1, round(size / 1024))} Ko"


def render(letter: Letter, texts: dict[str, str]) -> bytes:
    """The HPRIM file of ``letter``: header, text, end mark (Windows-1252, CRLF)."""
    lines = [*header(letter), *body_text(letter, texts), END, END_OF_FILE]
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING, errors="replace")


def is_text(media_type: str) -> bool:
    return media_base(media_type) == "text/plain"


# --- reading one dropped in the outbox folder ------------------------------------------


@dataclass(frozen=True)
class Hprim:
    """What an HPRIM header says: the patient, the recipient, the title, the text."""

    title: str
    family_name: str
    given_names: str
    birthdate: str  # YYYY-MM-DD, or empty
    ins: str  # as written (checked by clinical.check_ins later), or empty
    sender: str
    recipient: str
    recipient_rpps: str
    text: str


def decode(data: bytes) -> str:
    """UTF-8 when it is, else Windows-1252 (what most practice software writes)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode(ENCODING, errors="replace")


def looks_like_hprim(data: bytes) -> bool:
    """Whether a ``.txt`` is HPRIM-headed: twelve header lines and the end mark."""
    lines = decode(data[:MAX_HPRIM]).splitlines()
    ends = {line.strip() for line in lines[HEADER_LINES:]}
    return len(lines) > HEADER_LINES and bool(ends & {END, END_OF_FILE})


def parse(data: bytes) -> Hprim:
    """Read an HPRIM-headed file; ``BadInput`` (French first) when it is not one."""
    if len(data) > MAX_HPRIM:
        raise BadInput(
            f"Fichier HPRIM trop long (plus de {MAX_HPRIM // (1024 * 1024)} Mo) : "
            "envoyez-le avec une fiche .json à côté. "
            "This HPRIM file is too long: send it with a .json sidecar."
        )
    lines = decode(data).splitlines()
    if len(lines) < HEADER_LINES:
        raise BadInput(
            f"Ce fichier n'a pas d'en-tête HPRIM ({len(lines)} lignes au lieu de 12 au moins). "
            "This file has no HPRIM header (fewer than 12 lines)."
        )
    head = [line.strip() for line in lines[:HEADER_LINES]]
    text_lines = []
    for line in lines[HEADER_LINES:]:
        if line.strip() in (END, END_OF_FILE):
            break
        text_lines.append(line)
    rpps = _RPPS.search(head[11])
    return Hprim(
        title=head[0],
        family_name=head[1],
        given_names=head[2],
        birthdate=_iso_date(head[6]),
        ins=head[7],
        sender=head[10],
        recipient=_RPPS.sub("", head[11]).strip(),
        recipient_rpps=rpps.group(1) if rpps else "",
        text="\n".join(text_lines),
    )


def _iso_date(text: str) -> str:
    """``23/05/1984`` → ``1984-05-23``; ``BadInput`` for another non-empty value."""
    if not text:
        return ""
    found = _DATE.fullmatch(text)
    if found is None:
        raise BadInput(
            f"La date de naissance « {text} » (ligne 7 de l'en-tête HPRIM) n'est pas écrite "
            f"JJ/MM/AAAA. The birth date “{text}” (HPRIM line 7) is not DD/MM/YYYY."
        )
    day, month, year = found.groups()
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        raise BadInput(
            f"La date de naissance « {text} » (ligne 7 de l'en-tête HPRIM) n'existe pas. "
            f"The birth date “{text}” (HPRIM line 7) is not a real date."
        ) from None
