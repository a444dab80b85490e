"""Reading an IHE XDM zip handed to ``pli send`` or dropped in the outbox folder.

``read`` opens the zip (a file object), refuses what could hurt (a name that
climbs out of the folder or is absolute, a link, an encrypted entry, too many
entries, an entry whose declared size or compression ratio says "zip bomb") and
reads ``IHE_XDM/SUBSET01/METADATA.XML`` with ``safexml`` (no DTD, no entities):
the patient (INS, names, birth date, sex), the title, the author's RPPS and the
documents with their media type, size and SHA-1. ``extract`` copies one document
out, counting the bytes as they come (never trusting the header) and checking
the size and hash METADATA.XML gave. Every failure is ``XdmRefused``, a
``BadInput`` whose sentence is French first: any bytes import or raise it
(tests/p2p/test_xdm_import.py proves it).
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO
from xml.etree.ElementTree import Element

from p2p.documents import safexml
from p2p.documents.xdm import INS_OID, METADATA, RIM, RPPS_OID, SCHEME, SUBSET
from p2p.errors import BadInput

MAX_ENTRIES = 256
MAX_RATIO = 200  # uncompressed / compressed, above a megabyte: a bomb, not a letter
RATIO_FROM = 1024 * 1024
#: The largest document pli takes out of an XDM zip (the envelope's own limit is larger).
MAX_PART = 2 * 1024**3
MAX_TOTAL = 4 * 1024**3


#: What the standard library raises for a damaged zip (zlib's own error included).
_UNREADABLE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
)


class XdmRefused(BadInput):
    """An XDM zip pli will not read, in words."""

    code = "bad-xdm"


def _refused(french: str, english: str) -> XdmRefused:
    return XdmRefused(f"Archive IHE XDM refusée : {french}. The IHE XDM zip is refused: {english}.")


@dataclass(frozen=True)
class XdmPart:
    member: str  # its name inside the zip
    name: str  # the name it is sent under
    media_type: str
    size: int | None
    sha1: str  # hex, lower case, or empty when METADATA.XML gives none


@dataclass(frozen=True)
class XdmDocument:
    parts: tuple[XdmPart, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    recipient: str = ""  # intendedRecipient, as written (a name or an RPPS)


def read(source: IO[bytes]) -> tuple[zipfile.ZipFile, XdmDocument]:
    """The open zip and what its METADATA.XML says; ``XdmRefused`` otherwise."""
    try:
        archive = zipfile.ZipFile(source)
        infos = archive.infolist()
    except _UNREADABLE as exc:
        raise _refused(
            "ce n'est pas un fichier zip lisible", f"it is not a readable zip ({exc})"
        ) from None
    try:
        _check_entries(infos)
        if METADATA not in archive.NameToInfo:
            raise _refused(
                f"{METADATA} est absent", f"{METADATA} is missing: it is not an IHE XDM zip"
            )
        document = _metadata(_read_member(archive, METADATA, safexml.MAX_XML))
        for part in document.parts:
            if part.member not in archive.NameToInfo:
                raise _refused(
                    f"le document {part.member} annoncé est absent",
                    f"the document {part.member} named in METADATA.XML is missing",
                )
    except BaseException:
        archive.close()
        raise
    return archive, document


def _check_entries(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise _refused(f"plus de {MAX_ENTRIES} fichiers", f"over {MAX_ENTRIES} entries")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if _climbs(name):
            raise _refused(
                f"le nom « {name[:80]} » sort du dossier",
                f"the entry name “{name[:80]}” would be written outside its folder",
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refused(f"« {name[:80]} » est un lien", f"“{name[:80]}” is a link")
        if info.flag_bits & 0x1:
            raise _refused(f"« {name[:80]} » est chiffré", f"“{name[:80]}” is encrypted")
        if name in seen:
            raise _refused(f"« {name[:80]} » est en double", f"“{name[:80]}” appears twice")
        seen.add(name)
        total += info.file_size
        _check_size(info, total)


def _check_size(info: zipfile.ZipInfo, total: int) -> None:
    if info.file_size > MAX_PART or total > MAX_TOTAL:
        raise _refused(
            "un document dépasse la taille admise", "an entry is larger than pli takes from a zip"
        )
    if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise _refused(
            "un fichier se décompresse démesurément (bombe zip)",
            f"“{info.filename[:80]}” expands {info.file_size // max(1, info.compress_size)} "
            "times (a zip bomb)",
        )


def _climbs(name: str) -> bool:
    """A name that is absolute, has a drive, backslashes, NULs or ``..``: zip-slip."""
    if not name or "\\" in name or "\0" in name or name.startswith("/") or ":" in name:
        return True
    return any(piece == ".." for piece in name.split("/"))


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A small entry's bytes, read up to ``limit`` whatever its header says."""
    try:
        with archive.open(name) as member:
            data = member.read(limit + 1)
    except _UNREADABLE as exc:
        raise _refused(f"{name} est illisible", f"{name} cannot be read ({exc})") from None
    if len(data) > limit:
        raise _refused(f"{name} est trop long", f"{name} is over {limit} bytes")
    return data


def extract(archive: zipfile.ZipFile, part: XdmPart, out: IO[bytes]) -> int:
    """Copy ``part`` to ``out``, checking its size and SHA-1 against METADATA.XML."""
    digest = hashlib.sha1(usedforsecurity=False)
    size = 0
    try:
        with archive.open(part.member) as member:
            while chunk := member.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_PART:
                    raise _refused("un document est trop grand", f"{part.member} is too large")
                digest.update(chunk)
                out.write(chunk)
    except _UNREADABLE as exc:
        raise _refused(
            f"{part.member} est illisible", f"{part.member} cannot be read ({exc})"
        ) from None
    if part.size is not None and part.size != size:
        raise _refused(
            f"{part.member} n'a pas la taille annoncée", f"{part.member} is not the size announced"
        )
    if part.sha1 and part.sha1 != digest.hexdigest():
        raise _refused(
            f"{part.member} ne correspond pas à son empreinte (modifié ?)",
            f"{part.member} does not match the hash METADATA.XML gives (altered?)",
        )
    return size


# --- METADATA.XML -------------------------------------------------------------------------


def _tag(local: str) -> str:
    return f"{{{RIM}}}{local}"


def _slots(node: Element) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    for slot in node.findall(_tag("Slot")):
        values = [value.text or "" for value in slot.iter(_tag("Value"))]
        slots.setdefault(slot.get("name", ""), []).extend(values)
    return slots


def _name_of(node: Element) -> str:
    found = node.find(f"{_tag('Name')}/{_tag('LocalizedString')}")
    return (found.get("value", "") if found is not None else "").strip()


def _metadata(data: bytes) -> XdmDocument:
    try:
        root = safexml.parse(data)
    except safexml.UnsafeXml as exc:
        raise _refused("METADATA.XML est refusé", f"METADATA.XML is refused: {exc}") from None
    entries = list(root.iter(_tag("ExtrinsicObject")))
    if not entries:
        raise _refused("METADATA.XML ne décrit aucun document", "METADATA.XML names no document")
    if len(entries) > MAX_ENTRIES:
        raise _refused("trop de documents", "too many documents")
    parts = tuple(_part(entry, index) for index, entry in enumerate(entries))
    metadata = _patient(entries[0])
    packages = list(root.iter(_tag("RegistryPackage")))
    title = next((_name_of(p) for p in packages if _name_of(p)), "") or _name_of(entries[0])
    if title:
        metadata["subject"] = title
    rpps = _author_rpps(entries[0])
    if rpps:
        metadata["author_rpps"] = rpps
    recipient = ""
    for package in packages:
        for value in _slots(package).get("intendedRecipient", []):
            recipient = recipient or _recipient_text(value)
    return XdmDocument(parts=parts, metadata=metadata, recipient=recipient)


def _part(entry: Element, index: int) -> XdmPart:
    slots = _slots(entry)
    uri = (slots.get("URI") or [""])[0].strip()
    if not uri or _climbs(uri) or "/" in uri:
        raise _refused(
            f"le document n°{index + 1} n'a pas de nom de fichier valable (URI)",
            f"document {index + 1} has no valid file name (URI slot)",
        )
    size_text = (slots.get("size") or [""])[0].strip()
    sha1 = (slots.get("hash") or [""])[0].strip().lower()
    if sha1 and (len(sha1) != 40 or any(ch not in "0123456789abcdef" for ch in sha1)):
        raise _refused(f"l'empreinte de {uri} est invalide", f"the hash of {uri} is not SHA-1")
    media_type = entry.get("mimeType", "").strip() or "application/octet-stream"
    return XdmPart(
        member=f"{SUBSET}/{uri}",
        name=uri,
        media_type=media_type if _plain_media_type(media_type) else "application/octet-stream",
        size=int(size_text) if size_text.isdigit() and len(size_text) < 19 else None,
        sha1=sha1,
    )


def _plain_media_type(text: str) -> bool:
    main, slash, sub = text.partition("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&^_.+-")
    return bool(slash and main and sub and len(text) < 100 and set(main + sub) <= allowed)


def _patient(entry: Element) -> dict[str, str]:
    """Patient fields from ``sourcePatientInfo`` and the INS from the patient id."""
    slots = _slots(entry)
    metadata: dict[str, str] = {}
    ins_values = [*slots.get("sourcePatientId", [])]
    for identifier in entry.findall(_tag("ExternalIdentifier")):
        if identifier.get("identificationScheme") == SCHEME["patientId"]:
            ins_values.append(identifier.get("value", ""))
    for line in slots.get("sourcePatientInfo", []):
        field_name, _, value = line.partition("|")
        if field_name == "PID-3":
            ins_values.append(value)
        elif field_name == "PID-5":
            family, _, rest = value.partition("^")
            given = " ".join(piece for piece in rest.split("^")[:2] if piece.strip())
            metadata["patient_family_name"] = family.strip()
            metadata["patient_given_names"] = given.strip()
        elif field_name == "PID-7" and len(value) >= 8 and value[:8].isdigit():
            metadata["patient_birthdate"] = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
        elif field_name == "PID-8":
            metadata["patient_sex"] = value.strip()[:1]
    for value in ins_values:
        number, _, authority = value.partition("^^^")
        if INS_OID in authority and number.strip():
            metadata["patient_ins"] = number.strip()
            break
    return {key: value for key, value in metadata.items() if value}


def _author_rpps(entry: Element) -> str:
    for node in entry.findall(_tag("Classification")):
        if node.get("classificationScheme") != SCHEME["author"]:
            continue
        for value in _slots(node).get("authorPerson", []):
            number, _, rest = value.partition("^")
            if RPPS_OID in rest and len(number) == 12 and number.startswith("8"):
                return number[1:]
    return ""


def _recipient_text(value: str) -> str:
    """``|8<RPPS>^<name>^...`` → the RPPS when given, else the name."""
    person = value.rpartition("|")[2]
    number, _, rest = person.partition("^")
    if len(number) == 12 and number.startswith("8") and number[1:].isdigit():
        return number[1:]
    return rest.split("^")[0].strip()
