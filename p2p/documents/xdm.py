"""IHE XDM zips (the way MSSanté delivers): a document as ``IHE_XDM.zip`` for the software.

The zip holds ``INDEX.HTM`` and ``README.TXT`` at its root and one submission set,
``IHE_XDM/SUBSET01/``, with ``METADATA.XML`` (an ebRIM ``SubmitObjectsRequest``,
IHE ITI TF-3 §4.2: one DocumentEntry per file with its SHA-1 hash, size, author,
patient id and class code; the SubmissionSet; their HasMember associations) and
the files themselves as ``DOC0001.PDF`` ... ``metadata_xml`` is a pure function of
the ``Letter``; ``write`` streams the zip to a file object, the files' bytes read
from the openers it is handed (memory does not grow with their size).

Codes used: class and type codes from LOINC by kind, confidentiality ``N``
(HL7 v3 Confidentiality), format ``urn:ihe:iti:xds:2017:mimeTypeSufficient``,
facility type ``SA07`` and practice setting ``AMBULATOIRE`` (CI-SIS value sets, see
``FACILITY_TYPE``); the
patient id is the INS (NIR, OID 1.2.250.1.213.1.4.8), the author's id ``8`` + RPPS
(OID 1.2.250.1.71.4.2.1), as the French CI-SIS writes them. ``xdm_import.py`` reads
such a zip back.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from typing import IO

from p2p.documents.letter import Letter, Party, media_base

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
SUBSET = "IHE_XDM/SUBSET01"
METADATA = f"{SUBSET}/METADATA.XML"

DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SCHEME = {
    "author": "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d",
    "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    "healthcareFacilityTypeCode": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practiceSettingCode": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "patientId": "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "uniqueId": "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
    "set.author": "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d",
    "set.contentTypeCode": "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500",
    "set.uniqueId": "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
    "set.sourceId": "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832",
    "set.patientId": "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
}
INS_OID = "1.2.250.1.213.1.4.8"
RPPS_OID = "1.2.250.1.71.4.2.1"
LOINC = "2.16.840.1.113883.6.1"
#: pli's own OID arc for its source id: the UUID arc (ITU-T X.667), as any software may.
UUID_ARC = "2.25"
#: The LOINC code and French name of each kind of document.
CLASS_CODES = {
    "letter": ("11488-4", "Note de consultation"),
    "prescription": ("57833-6", "Prescription de médicaments"),
    "report": ("11506-3", "Compte rendu"),
    "file": ("55107-7", "Document"),
}
#: Where the document was written, both required on a DocumentEntry (IHE ITI TF-3
#: Table 4.2.3.2-1), from the French CI-SIS value sets ("Volet Partage de Documents de
#: Santé"): the facility type from JDV_J02-HealthcareFacilityTypeCode-CISIS, code system
#: TRE_R02-SecteurActivite (OID 1.2.250.1.71.4.2.4), ``SA07`` "Cabinet individuel"; the
#: practice setting from JDV_J04-XdsPracticeSettingCode-CISIS, code system
#: TRE_A01-CadreExercice (OID 1.2.250.1.213.1.1.4.9), ``AMBULATOIRE``. pli runs in a
#: "cabinet de ville" and its profile does not say whether the practice is a group
#: (``SA08``): the individual practice is the common case.
FACILITY_TYPE = ("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel")
PRACTICE_SETTING = ("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire")
#: File name extensions by media type inside the zip (others keep their own).
EXTENSIONS = {"application/pdf": ".PDF", "text/plain": ".TXT", "application/json": ".JSON"}


def oid(doc_id: str) -> str:
    """A document id (32 hex) as an OID under the UUID arc: ``2.25.<integer>``."""
    return f"{UUID_ARC}.{uuid.UUID(hex=doc_id).int}"


def member_names(letter: Letter) -> list[str]:
    """The name of each file inside the zip: ``DOC0001.PDF`` ..."""
    names = []
    for number, part in enumerate(letter.parts, start=1):
        extension = EXTENSIONS.get(media_base(part.media_type))
        if extension is None:
            dot = part.name.rfind(".")
            tail = part.name[dot:].upper() if dot > 0 else ""
            extension = tail if tail[1:].isalnum() and len(tail) <= 6 else ".BIN"
        names.append(f"DOC{number:04d}{extension}")
    return names


def _slot(parent: ET.Element, name: str, *values: str) -> None:
    slot = ET.SubElement(parent, f"{{{RIM}}}Slot", name=name)
    listing = ET.SubElement(slot, f"{{{RIM}}}ValueList")
    for value in values:
        ET.SubElement(listing, f"{{{RIM}}}Value").text = value


def _name(parent: ET.Element, text: str) -> None:
    name = ET.SubElement(parent, f"{{{RIM}}}Name")
    ET.SubElement(name, f"{{{RIM}}}LocalizedString", value=text)


def _classify(
    parent: ET.Element, scheme: str, owner: str, code: str, *, system: str = "", display: str = ""
) -> ET.Element:
    node = ET.SubElement(
        parent,
        f"{{{RIM}}}Classification",
        id=f"{owner}-{scheme.rsplit('.', 1)[-1]}",
        classificationScheme=SCHEME[scheme],
        classifiedObject=owner,
        nodeRepresentation=code,
    )
    if system:
        _slot(node, "codingScheme", system)
    if display:
        _name(node, display)
    return node


def _identify(parent: ET.Element, scheme: str, owner: str, value: str, label: str) -> None:
    node = ET.SubElement(
        parent,
        f"{{{RIM}}}ExternalIdentifier",
        id=f"{owner}-{scheme.rsplit('.', 1)[-1]}",
        identificationScheme=SCHEME[scheme],
        registryObject=owner,
        value=value,
    )
    _name(node, label)


def person(party: Party) -> str:
    """An author or recipient as an HL7 XCN: ``8<RPPS>^<name>^^^^^^^&<OID>&ISO``."""
    name = party.name.replace("^", " ").replace("&", " ")
    if party.rpps:
        return f"8{party.rpps}^{name}^^^^^^^&{RPPS_OID}&ISO"
    return f"^{name}"


def patient_id(letter: Letter) -> str:
    """The patient's INS as an HL7 CX, or empty when the document names none."""
    ins = letter.get("patient_ins")
    return f"{ins}^^^&{INS_OID}&ISO" if ins else ""


def patient_info(letter: Letter) -> list[str]:
    """``sourcePatientInfo``: PID-3 (INS), PID-5 (names), PID-7 (birth), PID-8 (sex)."""
    info = []
    if letter.get("patient_ins"):
        info.append(f"PID-3|{patient_id(letter)}")
    names = f"{letter.family_name.upper()}^{letter.given_names.replace(' ', '^', 1)}"
    info.append(f"PID-5|{names.replace('|', ' ')}^^^^L")
    if letter.get("patient_birthdate"):
        info.append(f"PID-7|{letter.get('patient_birthdate').replace('-', '')}")
    if letter.get("patient_sex"):
        info.append(f"PID-8|{letter.get('patient_sex')}")
    return info


def _document_entry(
    objects: ET.Element, letter: Letter, index: int, member: str, created: str
) -> str:
    part = letter.parts[index]
    entry_id = f"Document{index + 1:02d}"
    entry = ET.SubElement(
        objects,
        f"{{{RIM}}}ExtrinsicObject",
        id=entry_id,
        mimeType=media_base(part.media_type),
        objectType=DOCUMENT_ENTRY,
        status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
    )
    _slot(entry, "creationTime", created)
    _slot(entry, "hash", part.sha1)
    _slot(entry, "size", str(part.size))
    _slot(entry, "languageCode", "fr-FR")
    if patient_id(letter):
        _slot(entry, "sourcePatientId", patient_id(letter))
    _slot(entry, "sourcePatientInfo", *patient_info(letter))
    _slot(entry, "URI", member)
    _name(entry, letter.subject if len(letter.parts) == 1 else f"{letter.subject} – {part.name}")
    author = _classify(entry, "author", entry_id, "")
    _slot(author, "authorPerson", person(letter.author))
    code, display = CLASS_CODES.get(letter.kind, CLASS_CODES["file"])
    _classify(entry, "classCode", entry_id, code, system=LOINC, display=display)
    _classify(entry, "typeCode", entry_id, code, system=LOINC, display=display)
    _classify(
        entry,
        "confidentialityCode",
        entry_id,
        "N",
        system="2.16.840.1.113883.5.25",
        display="Normal",
    )
    for scheme, (setting, system, words) in (
        ("healthcareFacilityTypeCode", FACILITY_TYPE),
        ("practiceSettingCode", PRACTICE_SETTING),
    ):
        _classify(entry, scheme, entry_id, setting, system=system, display=words)
    _classify(
        entry,
        "formatCode",
        entry_id,
        "urn:ihe:iti:xds:2017:mimeTypeSufficient",
        system="1.3.6.1.4.1.19376.1.2.3",
        display="Type MIME suffisant",
    )
    if patient_id(letter):
        _identify(entry, "patientId", entry_id, patient_id(letter), "XDSDocumentEntry.patientId")
    unique = f"{oid(letter.doc_id)}.{index + 1}"
    _identify(entry, "uniqueId", entry_id, unique, "XDSDocumentEntry.uniqueId")
    return entry_id


def _submission_set(objects: ET.Element, letter: Letter, created: str) -> str:
    set_id = "SubmissionSet01"
    package = ET.SubElement(objects, f"{{{RIM}}}RegistryPackage", id=set_id)
    _slot(package, "submissionTime", created)
    _slot(package, "intendedRecipient", f"|{person(letter.recipient)}")
    _name(package, letter.subject)
    author = _classify(package, "set.author", set_id, "")
    _slot(author, "authorPerson", person(letter.author))
    code, display = CLASS_CODES.get(letter.kind, CLASS_CODES["file"])
    _classify(package, "set.contentTypeCode", set_id, code, system=LOINC, display=display)
    ET.SubElement(
        objects,
        f"{{{RIM}}}Classification",
        id=f"{set_id}-kind",
        classifiedObject=set_id,
        classificationNode=SUBMISSION_SET,
    )
    _identify(package, "set.uniqueId", set_id, oid(letter.doc_id), "XDSSubmissionSet.uniqueId")
    _identify(package, "set.sourceId", set_id, UUID_ARC, "XDSSubmissionSet.sourceId")
    if patient_id(letter):
        _identify(
            package, "set.patientId", set_id, patient_id(letter), "XDSSubmissionSet.patientId"
        )
    return set_id


def metadata_xml(letter: Letter) -> bytes:
    """``METADATA.XML`` for ``letter``: the ebRIM SubmitObjectsRequest (UTF-8)."""
    ET.register_namespace("rim", RIM)
    ET.register_namespace("lcm", LCM)
    root = ET.Element(f"{{{LCM}}}SubmitObjectsRequest")
    objects = ET.SubElement(root, f"{{{RIM}}}RegistryObjectList")
    created = letter.created.strftime("%Y%m%d%H%M%S")
    members = member_names(letter)
    entries = [
        _document_entry(objects, letter, index, member, created)
        for index, member in enumerate(members)
    ]
    set_id = _submission_set(objects, letter, created)
    for number, entry_id in enumerate(entries, start=1):
        association = ET.SubElement(
            objects,
            f"{{{RIM}}}Association",
            id=f"Association{number:02d}",
            associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            sourceObject=set_id,
            targetObject=entry_id,
        )
        _slot(association, "SubmissionSetStatus", "Original")
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def readme(letter: Letter) -> bytes:
    """``README.TXT``: who made the zip and what it holds, as IHE XDM asks."""
    lines = [
        "Support d'échange IHE XDM produit par pli (messagerie sécurisée entre praticiens).",
        "IHE XDM interchange media written by pli (secure messaging between practices).",
        "",
        f"Document : {letter.subject}",
        f"Identifiant : {letter.doc_id}",
        f"Auteur : {letter.author.name}",
        f"Destinataire : {letter.recipient.name}",
        "Métadonnées : IHE_XDM/SUBSET01/METADATA.XML",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def index_htm(letter: Letter) -> bytes:
    """``INDEX.HTM``: a page listing the files, for a person opening the zip."""
    from html import escape

    rows = "\n".join(
        f'<li><a href="{SUBSET}/{member}">{escape(part.name)}</a> ({part.size} octets)</li>'
        for part, member in zip(letter.parts, member_names(letter), strict=True)
    )
    page = (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>{escape(letter.subject)}</title></head><body>\n"
        f"<h1>{escape(letter.subject)}</h1>\n"
        f"<p>De {escape(letter.author.name)} pour {escape(letter.recipient.name)}.</p>\n"
        f"<ul>\n{rows}\n</ul>\n"
        '<p><a href="README.TXT">README.TXT</a></p>\n</body></html>\n'
    )
    return page.encode("utf-8")


Opener = Callable[[int], IO[bytes]]


def write(letter: Letter, open_part: Opener, out: IO[bytes]) -> None:
    """Write the XDM zip of ``letter`` to ``out``; ``open_part(i)`` gives file ``i``'s bytes."""
    stamp = max(letter.created.timetuple()[:6], (1980, 1, 1, 0, 0, 0))  # zip's first year

    def info(name: str) -> zipfile.ZipInfo:
        member = zipfile.ZipInfo(name, date_time=stamp)
        member.compress_type = zipfile.ZIP_DEFLATED
        member.external_attr = 0o644 << 16
        return member

    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(info("INDEX.HTM"), index_htm(letter))
        archive.writestr(info("README.TXT"), readme(letter))
        archive.writestr(info(METADATA), metadata_xml(letter))
        for index, member in enumerate(member_names(letter)):
            large = letter.parts[index].size >= zipfile.ZIP64_LIMIT
            entry = info(f"{SUBSET}/{member}")
            with open_part(index) as source, archive.open(entry, "w", force_zip64=large) as sink:
                while chunk := source.read(1024 * 1024):
                    sink.write(chunk)
