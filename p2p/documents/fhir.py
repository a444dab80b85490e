"""A FHIR R4 MHD "Provide Document Bundle" for the practice software that reads FHIR.

One transaction ``Bundle`` (IHE ITI-65, MHD Minimal profile) per document: a
``List`` that is the submission set, one ``DocumentReference`` per file (its
media type, size, SHA-1, title, author, patient identifier and class code) and
one ``Binary`` per file with its bytes. It is built and checked with
``fhir.resources``' R4B models, whose DocumentReference, List, Binary and Bundle
have the same fields as R4's; what is written is plain FHIR R4 JSON.

``write`` streams: the bundle is built and validated with a short mark in place
of each Binary's data, and each file's base64 is written where its mark is, read
from the file 768 KiB at a time, so pli's memory does not grow with the files.
The software that reads the bundle holds it whole, though (a FHIR JSON resource is
one JSON object, a Binary's data one string): the files are inlined up to
``INLINE_MAX`` in all, and a file past it is not copied into the bundle, its
DocumentReference pointing at the file written next to the bundle
(``attachment.url``, a relative name) instead.
"""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import Callable
from typing import IO, Any

from p2p.documents.letter import Letter, Party, media_base
from p2p.documents.xdm import CLASS_CODES, INS_OID, RPPS_OID, oid

#: The most file bytes one bundle carries inline (their base64 is a third more).
INLINE_MAX = 16 * 1024 * 1024
#: Bytes of a file read and base64-encoded at once (a multiple of 3: no padding inside).
CHUNK = 3 * 256 * 1024
MINIMAL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.ProvideBundle"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
LOINC = "http://loinc.org"
INS_SYSTEM = f"urn:oid:{INS_OID}"
RPPS_SYSTEM = f"urn:oid:{RPPS_OID}"


def _urn(doc_id: str, what: str) -> str:
    """A stable ``urn:uuid:`` for one resource of a document (same document, same ids)."""
    return uuid.uuid5(uuid.UUID(hex=doc_id), what).urn


def _person(party: Party) -> dict[str, Any]:
    reference: dict[str, Any] = {"display": party.name or "?"}
    if party.rpps:
        reference["identifier"] = {"system": RPPS_SYSTEM, "value": f"8{party.rpps}"}
    return reference


def _subject(letter: Letter) -> dict[str, Any] | None:
    ins = letter.get("patient_ins")
    if not ins:
        return None
    name = f"{letter.family_name.upper()} {letter.given_names}".strip()
    return {"identifier": {"system": INS_SYSTEM, "value": ins}, "display": name or None}


def _code(letter: Letter) -> dict[str, Any]:
    code, display = CLASS_CODES.get(letter.kind, CLASS_CODES["file"])
    return {"coding": [{"system": LOINC, "code": code, "display": display}]}


def _reference(letter: Letter, index: int, inline: bool) -> dict[str, Any]:
    part = letter.parts[index]
    url = _urn(letter.doc_id, f"binary-{index}") if inline else part.name
    sha1 = base64.b64encode(bytes.fromhex(part.sha1)).decode()
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": f"urn:oid:{oid(letter.doc_id)}.{index + 1}",
        },
        "status": "current",
        "type": _code(letter),
        "category": [_code(letter)],
        "date": letter.created.isoformat(),
        "author": [_person(letter.author)],
        "description": letter.subject,
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "N",
                    }
                ]
            }
        ],
        "content": [
            {
                "attachment": {
                    "contentType": media_base(part.media_type),
                    "language": "fr-FR",
                    "url": url,
                    "size": part.size,
                    "hash": sha1,
                    "title": part.name,
                    "creation": letter.created.isoformat(),
                },
                "format": {
                    "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                },
            }
        ],
    }
    subject = _subject(letter)
    if subject is not None:
        resource["subject"] = subject
    return resource


def _submission_set(letter: Letter) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "List",
        "extension": [
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                "valueIdentifier": {"value": "urn:oid:2.25"},
            },
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-intendedRecipient",
                "valueReference": _person(letter.recipient),
            },
        ],
        "identifier": [
            {
                "use": "official",
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:oid:{oid(letter.doc_id)}",
            }
        ],
        "status": "current",
        "mode": "working",
        "title": letter.subject,
        "code": {"coding": [{"system": LIST_TYPES, "code": "submissionset"}]},
        "date": letter.created.isoformat(),
        "source": _person(letter.author),
        "entry": [
            {"item": {"reference": _urn(letter.doc_id, f"reference-{index}")}}
            for index in range(len(letter.parts))
        ],
    }
    subject = _subject(letter)
    if subject is not None:
        resource["subject"] = subject
    return resource


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def bundle_dict(letter: Letter, data: Callable[[int], str]) -> dict[str, Any]:
    """The bundle as JSON-ready data; ``data(i)``: file ``i``'s base64 (or its mark), inlined."""
    entries = [_entry(_urn(letter.doc_id, "submission-set"), _submission_set(letter))]
    budget = INLINE_MAX
    for index, part in enumerate(letter.parts):
        inline = part.size <= budget
        budget -= part.size if inline else 0
        entries.append(
            _entry(_urn(letter.doc_id, f"reference-{index}"), _reference(letter, index, inline))
        )
        if inline:
            binary = {
                "resourceType": "Binary",
                "contentType": media_base(part.media_type),
                "data": data(index),
            }
            entries.append(_entry(_urn(letter.doc_id, f"binary-{index}"), binary))
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [MINIMAL]},
        "type": "transaction",
        "timestamp": letter.created.isoformat(),
        "entry": entries,
    }


def _mark(index: int) -> str:
    """What stands for file ``index``'s data until it is streamed: valid base64, and
    unlike any other text of the bundle (its bytes start with a NUL)."""
    return base64.b64encode(f"\0pli-binary-{index:06d}\0".encode()).decode()


Opener = Callable[[int], IO[bytes]]


def write(letter: Letter, open_part: Opener, out: IO[bytes]) -> None:
    """Write the bundle of ``letter`` (FHIR JSON, validated by the library's models) to
    ``out``; ``open_part(i)`` gives file ``i``'s bytes, streamed as base64."""
    from fhir.resources.R4B.bundle import Bundle  # ~0.2 s: only when a bundle is written

    marks = {_mark(index): index for index in range(len(letter.parts))}
    model = Bundle.model_validate(bundle_dict(letter, _mark))
    text = model.model_dump_json(exclude_none=True, indent=1)
    position = 0
    for found in re.finditer("|".join(map(re.escape, marks)), text):
        out.write(text[position : found.start()].encode("utf-8"))
        with open_part(marks[found.group()]) as source:
            while chunk := source.read(CHUNK):
                out.write(base64.b64encode(chunk))
        position = found.end()
    out.write(text[position:].encode("utf-8") + b"\n")


def render(letter: Letter, read_part: Callable[[int], bytes]) -> bytes:
    """The bundle of ``letter`` in memory (for small documents and the tests)."""
    out = io.BytesIO()
    write(letter, lambda index: io.BytesIO(read_part(index)), out)
    return out.getvalue()
