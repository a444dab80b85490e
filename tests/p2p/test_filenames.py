"""Names chosen by a sender, made harmless before ``pli export`` writes them.

The examples below were each reproduced as a problem on Windows, an SMB share or
in a file manager (issue 8 §1.6); ``test_safe_filename_is_always_a_plain_name``
holds every rule for any text hypothesis can make.
"""

from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.documents.filenames import MAX_NAME_BYTES, SIDECAR_SUFFIX, numbered, safe_filename

# --- received file names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("compte-rendu.pdf", "compte-rendu.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.exe", "evil.exe"),
        ("/absolute/path.txt", "path.txt"),
        ("dir/", "document-4"),
        ("", "document-4"),
        (".", "document-4"),
        ("..", "document-4"),
        (" .. ", "document-4"),
        (".bashrc", "bashrc"),
        ("\u202egpj.exe", "gpj.exe"),
        ("a\x00b\x1b[31m.txt", "ab[31m.txt"),
        ("Lettre Mme Dupont.odt", "Lettre Mme Dupont.odt"),
    ],
)
def test_safe_filename_examples(received: str, expected: str) -> None:
    assert safe_filename(received, 4) == expected


def test_safe_filename_keeps_the_extension_of_a_long_name() -> None:
    name = safe_filename("é" * 1000 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES


@given(st.text(alphabet=st.characters(codec=None), max_size=400), st.integers(1, 99))
def test_safe_filename_is_always_a_plain_name(received: str, number: int) -> None:
    name = safe_filename(received, number)
    assert name not in ("", ".", "..")
    assert not name.startswith(".")
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name == name.strip()
    assert os.path.basename(name) == name


def test_numbered_names() -> None:
    assert numbered("a.pdf", 0) == "a.pdf"
    assert numbered("a.pdf", 1) == "a (1).pdf"
    assert numbered("notes", 2) == "notes (2)"
    assert numbered("a.pdf.pli.json", 3) == "a.pdf (3).pli.json"
    assert numbered("scan.tar.gz", 1) == "scan (1).tar.gz"


# --- names unsafe on Windows, SMB shares and file managers (issue 8 §1.6) -------------------

WINDOWS_UNSAFE = [
    ("CON", "_CON"),
    ("nul.pdf", "_nul.pdf"),
    ("NUL.tar.gz", "_NUL.tar.gz"),
    ("Com1.txt", "_Com1.txt"),
    ("LPT9", "_LPT9"),
    ("CON .txt", "_CON .txt"),
    ("COM\u00b9.txt", "_COM1.txt"),  # a superscript one is COM1 to Windows
    ("conin$", "_conin$"),
    ("a:b", "a_b"),  # an NTFS alternate data stream of "a"
    ("compte-rendu:Zone.Identifier", "compte-rendu_Zone.Identifier"),
    ('q?u*e<l>l|e"s.pdf', "q_u_e_l_l_e_s.pdf"),
    ("lettre.pdf.", "lettre.pdf"),  # Windows drops trailing dots ...
    ("lettre.exe. . .", "lettre.exe"),
    ("lettre.pdf   ", "lettre.pdf"),  # ... and trailing spaces
    ("facture.pdf.pli.json", "facture.pdf.pli_json"),  # would pose as pli's signature proof
    ("FACTURE.PDF.PLI.JSON", "FACTURE.PDF.pli_json"),
    ("facture.pdf.pli.json.", "facture.pdf.pli_json"),
    ("facture.pdf.pli.\u200bjson", "facture.pdf.pli_json"),
    ("..\u2215..\u2215etc\u2215passwd", "_.._etc_passwd"),  # division slash
    ("a\u2044b\u29f8c\u29f9d", "a_b_c_d"),  # fraction slash, big solidus and reverse
    ("a\uff0fb\uff3cc", "a_b_c"),  # fullwidth solidus and reverse solidus
    ("\u2024\u2024\u2215secret", "_secret"),  # one-dot leaders look like ".."
    ("\u2025", "document-4"),  # a two-dot leader is ".."
    ("rapport\u2028.exe\u2029.pdf", "rapport.exe.pdf"),  # line and paragraph separators
    ("\u202ecod.exe", "cod.exe"),  # right-to-left override
    ("a\u2066b\u2069c\u200fd\u061ce.pdf", "abcde.pdf"),  # isolates and marks
    ("priv\ue000\U000f0000e.pdf", "prive.pdf"),  # private use
    ("\uff23\uff2f\uff2e", "_CON"),  # fullwidth letters
    ("\u3000lettre\u00a0.pdf\u3000", "lettre .pdf"),
]


@pytest.mark.parametrize(("received", "expected"), WINDOWS_UNSAFE)
def test_names_unsafe_on_windows_are_neutralised(received: str, expected: str) -> None:
    assert safe_filename(received, 4) == expected


WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in range(10)}
)
LOOKALIKE_SLASHES = "\u2215\u2044\u29f8\u29f9\u2216\ufe68\uff0f\uff3c"


@given(st.text(alphabet=st.characters(codec=None), max_size=400), st.integers(1, 99))
def test_safe_filename_is_safe_on_windows(received: str, number: int) -> None:
    name = safe_filename(received, number)
    assert not set(name) & set('<>:"|?*' + LOOKALIKE_SLASHES)
    assert not any(unicodedata.category(ch) in ("Zl", "Zp", "Co", "Cn") for ch in name)
    assert not name.endswith((".", " "))
    assert name.split(".", 1)[0].rstrip(" ").upper() not in WINDOWS_RESERVED
    assert not name.casefold().endswith(SIDECAR_SUFFIX)
    assert unicodedata.normalize("NFKC", name).strip(".") not in ("", ".")


@pytest.mark.parametrize("name", ["CON", "nul.pdf", "a:b.pdf", "x.pli.json", "a\u2215b"])
def test_a_neutralised_name_is_stable(name: str) -> None:
    once = safe_filename(name)
    assert safe_filename(once) == once
