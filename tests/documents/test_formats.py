"""HPRIM, IHE XDM and FHIR output of one fixed document, against golden files.

The golden files in tests/data/folders/ were written by these writers and read by
a person; a change in the output shows here as a diff. The XDM METADATA.XML is also
parsed back (by pli's own safe reader and by the standard library) and checked
field by field, and the FHIR bundle is validated by fhir.resources' models.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from p2p.documents import fhir, hprim, xdm, xdm_import
from p2p.errors import BadInput
from tests.documents.sample import FILES, GOLDEN, LETTER, TEXT, read_part


def golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("PLI_WRITE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert data == path.read_bytes(), f"{name} differs from its golden file"


def xdm_zip() -> bytes:
    out = io.BytesIO()
    xdm.write(LETTER, lambda index: io.BytesIO(read_part(index)), out)
    return out.getvalue()


def test_hprim_golden_and_header_lines() -> None:
    data = hprim.render(LETTER, {"courrier.txt": TEXT})
    golden("letter.hpr", data)
    lines = data.decode("cp1252").split("\r\n")
    assert lines[1:3] == ["DUPONT", "Marie Claire"]
    assert lines[3:6] == ["", "", ""]  # the address: no document carries one (docs/folders.md)
    assert lines[6:12] == [
        "14/08/1955",
        "255081416802538",
        LETTER.doc_id,
        "02/12/2025",
        "Dr Claire Martin 10003456789",
        "Dr Paul Durand 10001234567",
    ]
    assert " ****FIN****" in lines  # the letter's own line cannot end the file early
    assert lines[-3:] == ["****FIN****", "****FINFICHIER****", ""]
    assert "- bilan.pdf (1 Ko)" in lines


def test_hprim_reads_back_what_it_writes() -> None:
    parsed = hprim.parse(hprim.render(LETTER, {"courrier.txt": TEXT}))
    assert (parsed.family_name, parsed.given_names) == ("DUPONT", "Marie Claire")
    assert (parsed.birthdate, parsed.ins) == ("1955-08-14", "255081416802538")
    assert (parsed.recipient, parsed.recipient_rpps) == ("Dr Paul Durand", "10001234567")
    assert parsed.text.startswith("Cher confrère,\nJe vous adresse Mme DUPONT")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"DUPONT\nMarie\n", "n'a pas d'en-tête HPRIM"),
        (b"T\nDUPONT\nMarie\n\n\n\n1955-08-14\n\n\n\n\nDr X\ntexte\n****FIN****\n", "JJ/MM/AAAA"),
        (b"T\nDUPONT\nMarie\n\n\n\n31/02/1955\n\n\n\n\nDr X\ntexte\n****FIN****\n", "n'existe pas"),
    ],
)
def test_hprim_refuses_in_words(data: bytes, words: str) -> None:
    with pytest.raises(BadInput, match=words):
        hprim.parse(data)


def test_xdm_members_and_golden_metadata() -> None:
    archive = zipfile.ZipFile(io.BytesIO(xdm_zip()))
    assert archive.namelist() == [
        "INDEX.HTM",
        "README.TXT",
        "IHE_XDM/SUBSET01/METADATA.XML",
        "IHE_XDM/SUBSET01/DOC0001.TXT",
        "IHE_XDM/SUBSET01/DOC0002.PDF",
    ]
    golden("METADATA.XML", archive.read("IHE_XDM/SUBSET01/METADATA.XML"))
    golden("INDEX.HTM", archive.read("INDEX.HTM"))
    golden("README.TXT", archive.read("README.TXT"))
    assert archive.read("IHE_XDM/SUBSET01/DOC0002.PDF") == FILES["bilan.pdf"]


def test_xdm_metadata_parsed_back_field_by_field() -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xdm.metadata_xml(LETTER))
    rim = f"{{{xdm.RIM}}}"
    entries = root.findall(f".//{rim}ExtrinsicObject")
    assert [e.get("mimeType") for e in entries] == ["text/plain", "application/pdf"]
    slots = {
        s.get("name"): [v.text for v in s.iter(f"{rim}Value")]
        for s in entries[1].findall(f"{rim}Slot")
    }
    assert slots["hash"] == [hashlib.sha1(FILES["bilan.pdf"], usedforsecurity=False).hexdigest()]
    assert slots["size"] == [str(len(FILES["bilan.pdf"]))]
    assert slots["sourcePatientId"] == ["255081416802538^^^&1.2.250.1.213.1.4.8&ISO"]
    assert "PID-5|DUPONT^Marie^Claire^^^^L" in slots["sourcePatientInfo"]
    schemes = {c.get("classificationScheme"): c for c in entries[1].findall(f"{rim}Classification")}
    assert schemes[xdm.SCHEME["classCode"]].get("nodeRepresentation") == "11488-4"
    settings = {
        scheme: (
            node.get("nodeRepresentation"),
            [v.text for v in node.iter(f"{rim}Value")],
            [s.get("value") for s in node.iter(f"{rim}LocalizedString")],
        )
        for scheme in ("healthcareFacilityTypeCode", "practiceSettingCode")
        for node in [schemes[xdm.SCHEME[scheme]]]
    }
    assert settings == {  # CI-SIS: TRE_R02-SecteurActivite, TRE_A01-CadreExercice
        "healthcareFacilityTypeCode": ("SA07", ["1.2.250.1.71.4.2.4"], ["Cabinet individuel"]),
        "practiceSettingCode": ("AMBULATOIRE", ["1.2.250.1.213.1.1.4.9"], ["Ambulatoire"]),
    }
    for entry in entries:  # on every DocumentEntry, classifying that entry
        classified = {
            c.get("classificationScheme"): c.get("classifiedObject")
            for c in entry.findall(f"{rim}Classification")
        }
        assert classified[xdm.SCHEME["healthcareFacilityTypeCode"]] == entry.get("id")
        assert classified[xdm.SCHEME["practiceSettingCode"]] == entry.get("id")
    author = schemes[xdm.SCHEME["author"]].find(f".//{rim}Value")
    assert author is not None
    assert author.text == "810003456789^Dr Claire Martin^^^^^^^&1.2.250.1.71.4.2.1&ISO"
    ids = {
        i.get("identificationScheme"): i.get("value")
        for i in entries[1].findall(f"{rim}ExternalIdentifier")
    }
    assert ids[xdm.SCHEME["patientId"]] == "255081416802538^^^&1.2.250.1.213.1.4.8&ISO"
    associations = root.findall(f".//{rim}Association")
    assert [a.get("targetObject") for a in associations] == ["Document01", "Document02"]


def test_xdm_imports_back_to_the_same_document() -> None:
    archive, document = xdm_import.read(io.BytesIO(xdm_zip()))
    assert document.metadata == {
        "patient_family_name": "DUPONT",
        "patient_given_names": "Marie Claire",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
        "subject": "Adressage en cardiologie",
        "author_rpps": "10003456789",
    }
    assert document.recipient == "10001234567"
    copies = []
    for part in document.parts:
        out = io.BytesIO()
        xdm_import.extract(archive, part, out)
        copies.append(out.getvalue())
    assert copies == [FILES["courrier.txt"], FILES["bilan.pdf"]]


def test_fhir_bundle_golden_and_valid() -> None:
    from fhir.resources.R4B.binary import Binary
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.list import List

    data = fhir.render(LETTER, read_part)
    golden("bundle.fhir.json", data)
    bundle: Any = Bundle.model_validate_json(data)  # its fields are typed loosely
    assert bundle.type == "transaction"
    kinds = [type(entry.resource) for entry in bundle.entry]
    assert kinds == [List, DocumentReference, Binary, DocumentReference, Binary]
    submission, reference, binary = (entry.resource for entry in bundle.entry[:3])
    assert submission.code.coding[0].code == "submissionset"
    assert [e.item.reference for e in submission.entry] == [
        bundle.entry[1].fullUrl,
        bundle.entry[3].fullUrl,
    ]
    attachment = reference.content[0].attachment
    assert attachment.url == bundle.entry[2].fullUrl
    assert attachment.size == len(FILES["courrier.txt"])
    assert attachment.hash.hex() == LETTER.parts[0].sha1  # the model decodes base64
    assert reference.subject.identifier.value == "255081416802538"
    assert binary.data == FILES["courrier.txt"]


def test_fhir_files_past_the_inline_budget_are_referenced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget is for the whole bundle: the first file fits, the second does not."""
    monkeypatch.setattr(fhir, "INLINE_MAX", len(FILES["courrier.txt"]) + 10)
    data = fhir.render(LETTER, read_part)
    bundle = json.loads(data)
    resources = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert resources == ["List", "DocumentReference", "Binary", "DocumentReference"]
    assert base64.b64decode(bundle["entry"][2]["resource"]["data"]) == FILES["courrier.txt"]
    assert bundle["entry"][3]["resource"]["content"][0]["attachment"]["url"] == "bilan.pdf"


def test_fhir_binary_is_streamed_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file read in many chunks gives the same base64 as one read: the bundle is valid."""
    from fhir.resources.R4B.bundle import Bundle

    monkeypatch.setattr(fhir, "CHUNK", 3)
    reads: list[int] = []

    class Counted(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(size if size is not None else -1)
            return super().read(size)

    out = io.BytesIO()
    fhir.write(LETTER, lambda index: Counted(read_part(index)), out)
    assert out.getvalue() == (GOLDEN / "bundle.fhir.json").read_bytes()
    assert set(reads) == {3}
    assert len(reads) > len(FILES["bilan.pdf"]) // 3
    bundle: Any = Bundle.model_validate_json(out.getvalue())
    assert bundle.entry[4].resource.data == FILES["bilan.pdf"]


def test_golden_folder_is_complete() -> None:
    assert sorted(p.name for p in Path(GOLDEN).iterdir()) == [
        "INDEX.HTM",
        "METADATA.XML",
        "README.TXT",
        "bundle.fhir.json",
        "letter.hpr",
    ]
