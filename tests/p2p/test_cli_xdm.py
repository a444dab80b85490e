"""``pli send`` given an IHE XDM zip: its documents go, with its patient and title.

Against the fake API: the body posted names the zip's documents (not the zip) and
carries METADATA.XML's patient, subject and author, the typed options winning; a
hostile zip is refused in words (exit 1) and nothing is posted; a zip that is not
XDM is sent as it is.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from p2p.documents import xdm
from tests.documents.sample import FILES, LETTER, read_part

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .fake_api import FakeApi

Api = tuple[Path, FakeApi]


def answers(server: FakeApi) -> None:
    server.answers["POST", "/v1/documents"] = (202, {"id": "ef" * 16, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = (200, [])


def posted(server: FakeApi) -> list[Any]:
    return [
        body
        for method, path, body in server.requests
        if (method, path) == ("POST", "/v1/documents")
    ]


def xdm_zip(path: Path) -> Path:
    out = io.BytesIO()
    xdm.write(LETTER, lambda index: io.BytesIO(read_part(index)), out)
    path.write_bytes(out.getvalue())
    return path


def test_an_xdm_zip_sends_its_documents_with_its_patient(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    answers(server)
    result = run("--home", home, "send", "Dr Bob", xdm_zip(tmp_path / "IHE_XDM.zip"))
    assert result.exit_code == 0, result.output
    (body,) = posted(server)
    assert [(f["name"], f["type"]) for f in body["files"]] == [
        ("DOC0001.TXT", "text/plain"),
        ("DOC0002.PDF", "application/pdf"),
    ]
    assert sorted(server.files.values()) == sorted(FILES.values())  # read while they existed
    assert body["metadata"] == {
        "subject": "Adressage en cardiologie",
        "patient_name": "DUPONT Marie Claire",
        "patient_family_name": "DUPONT",
        "patient_given_names": "Marie Claire",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
        "author_rpps": "10003456789",
    }
    assert "IHE XDM" in result.stdout
    assert not any(Path(f["path"]).exists() for f in body["files"])  # the copies are gone


def test_typed_options_win_over_the_zip(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    answers(server)
    result = run(
        "--home",
        home,
        "send",
        "Dr Bob",
        xdm_zip(tmp_path / "IHE_XDM.zip"),
        "--subject",
        "Autre objet",
        "--patient-name",
        "MARTIN, Paul",
        "--patient-sex",
        "M",
        "--patient-ins",
        "1 84 12 76 451 089 46",
        "--patient-birthdate",
        "1984-12-01",
    )
    assert result.exit_code == 0, result.output
    (body,) = posted(server)
    metadata = body["metadata"]
    assert (metadata["subject"], metadata["patient_family_name"]) == ("Autre objet", "MARTIN")
    assert metadata["patient_ins"] == "184127645108946"


def test_a_hostile_xdm_zip_is_refused_in_words(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    answers(server)
    evil = tmp_path / "IHE_XDM.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr(xdm.METADATA, b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    result = run("--home", home, "send", "Dr Bob", evil)
    assert result.exit_code == 1
    assert "Archive IHE XDM refusée" in result.stderr
    assert "Traceback" not in result.output
    assert posted(server) == []


def test_a_zip_that_is_not_xdm_goes_as_it_is(fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    answers(server)
    plain = tmp_path / "dossier.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("a.txt", b"a")
    result = run("--home", home, "send", "Dr Bob", plain)
    assert result.exit_code == 0, result.output
    (body,) = posted(server)
    assert [f["name"] for f in body["files"]] == ["dossier.zip"]
