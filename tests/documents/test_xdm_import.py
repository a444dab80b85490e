"""XDM zips from outside: any bytes import or are refused in words, each attack by name.

zip-slip (a name climbing out), absolute names, links, encrypted entries, zip bombs
(a huge expansion ratio), a missing METADATA.XML, a METADATA.XML with a DTD or
entities (billion laughs, external entity), a document that does not match its
hash or size: each is an ``XdmRefused`` (a ``BadInput``), never a traceback.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2p.documents import xdm, xdm_import
from p2p.errors import BadInput
from tests.documents.sample import LETTER, read_part


def good_zip() -> bytes:
    out = io.BytesIO()
    xdm.write(LETTER, lambda index: io.BytesIO(read_part(index)), out)
    return out.getvalue()


def zip_of(members: dict[str, bytes], *, compress: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def import_all(data: bytes) -> list[bytes]:
    archive, document = xdm_import.read(io.BytesIO(data))
    with archive:
        copies = []
        for part in document.parts:
            out = io.BytesIO()
            xdm_import.extract(archive, part, out)
            copies.append(out.getvalue())
    return copies


def with_metadata(metadata: bytes, **others: bytes) -> bytes:
    return zip_of({xdm.METADATA: metadata, **{f"{xdm.SUBSET}/{k}": v for k, v in others.items()}})


def test_good_zip_imports() -> None:
    assert import_all(good_zip()) == [read_part(0), read_part(1)]


@pytest.mark.parametrize(
    ("members", "words"),
    [
        ({"../../etc/passwd": b"x"}, "outside its folder"),
        ({"/etc/passwd": b"x"}, "outside its folder"),
        ({"C:/boot.ini": b"x"}, "outside its folder"),
        ({"a\\..\\b": b"x"}, "outside its folder"),
        ({"README.TXT": b"x"}, "METADATA.XML is missing"),
    ],
)
def test_names_refused(members: dict[str, bytes], words: str) -> None:
    with pytest.raises(xdm_import.XdmRefused, match=words):
        import_all(zip_of(members))


def test_link_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        link = zipfile.ZipInfo("IHE_XDM/SUBSET01/DOC0001.PDF")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/shadow")
    with pytest.raises(xdm_import.XdmRefused, match="is a link"):
        import_all(out.getvalue())


def test_zip_bomb_refused() -> None:
    bomb = zip_of(
        {xdm.METADATA: b"<a/>", "big.bin": bytes(50 * 1024 * 1024)}, compress=zipfile.ZIP_DEFLATED
    )
    assert len(bomb) < 200 * 1024
    with pytest.raises(xdm_import.XdmRefused, match="zip bomb"):
        import_all(bomb)


def test_oversized_entry_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xdm_import, "MAX_PART", 10)
    with pytest.raises(xdm_import.XdmRefused, match="larger than pli takes"):
        import_all(good_zip())


def test_too_many_entries_refused() -> None:
    members = {f"f{n}": b"" for n in range(xdm_import.MAX_ENTRIES + 1)}
    with pytest.raises(xdm_import.XdmRefused, match="entries"):
        import_all(zip_of(members))


def test_encrypted_entry_refused() -> None:
    data = bytearray(zip_of({xdm.METADATA: b"<a/>"}))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 6] |= 1  # the "encrypted" flag in both headers
    data[central + 8] |= 1
    with pytest.raises(xdm_import.XdmRefused, match="encrypted"):
        import_all(bytes(data))


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("metadata", [LAUGHS, EXTERNAL, b"<not closed", b""])
def test_dangerous_or_broken_metadata_refused(metadata: bytes) -> None:
    with pytest.raises(xdm_import.XdmRefused, match=r"METADATA\.XML is refused"):
        import_all(with_metadata(metadata))


def test_altered_document_refused() -> None:
    archive = zipfile.ZipFile(io.BytesIO(good_zip()))
    members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[f"{xdm.SUBSET}/DOC0002.PDF"] = b"%PDF-1.4 something else\n"
    with pytest.raises(xdm_import.XdmRefused, match=r"not the size announced|does not match"):
        import_all(zip_of(members))


def test_metadata_naming_a_missing_or_climbing_document_refused() -> None:
    metadata = xdm.metadata_xml(LETTER)
    with pytest.raises(xdm_import.XdmRefused, match="is missing"):
        import_all(with_metadata(metadata))
    climbing = metadata.replace(b"DOC0001.TXT", b"../x.txt")
    with pytest.raises(xdm_import.XdmRefused, match="no valid file name"):
        import_all(with_metadata(climbing))


def refusal_of(data: bytes) -> str | None:
    """None when ``data`` imports (each part extracted), else the refusal's words;
    any other exception fails the test."""
    try:
        copies = import_all(data)
    except BadInput as refused:
        return str(refused)
    assert all(isinstance(copy, bytes) for copy in copies)
    return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_import_or_are_refused(data: bytes) -> None:
    refusal = refusal_of(data)
    assert refusal is None or refusal.strip(), "a refusal says why"


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_any_damage_to_a_good_zip_imports_or_is_refused(data: st.DataObject) -> None:
    zipped = bytearray(good_zip())
    for _ in range(data.draw(st.integers(1, 8))):
        zipped[data.draw(st.integers(0, len(zipped) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(zipped)))
    refusal = refusal_of(bytes(zipped[:cut] if data.draw(st.booleans()) else zipped))
    assert refusal is None or refusal.strip(), "a refusal says why"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_any_metadata_bytes_import_or_are_refused(metadata: bytes) -> None:
    refusal = refusal_of(with_metadata(metadata, **{"DOC0001.TXT": b"x"}))
    assert refusal is None or refusal.strip(), "a refusal says why"
