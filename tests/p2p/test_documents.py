"""Validators for what a person types (INS, dates, RPPS).

Received names are tested in test_filenames.py, the writing of files in test_files.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.documents.clinical import (
    check_birthdate,
    check_ins,
    check_rpps,
    ins_key,
)
from p2p.errors import BadInput

# --- INS / NIR -----------------------------------------------------------------------


def test_known_ins() -> None:
    # The example printed in most descriptions of the NIR key.
    assert ins_key("2550814168025") == 38
    assert check_ins("2 55 08 14 168 025 38") == "255081416802538"
    assert check_ins("255081416802538") == "255081416802538"


def test_corsica_counts_as_19_and_18() -> None:
    assert ins_key("284052A004005") == 97 - 2840519004005 % 97
    assert ins_key("169012B030110") == 97 - 1690118030110 % 97
    key = ins_key("284052A004005")
    assert check_ins(f"2 84 05 2a 004 005 {key:02d}") == f"284052A004005{key:02d}"


@given(st.integers(min_value=1_000_000_000_000, max_value=2_999_999_999_999))
def test_a_right_key_passes_and_every_wrong_key_fails(number: int) -> None:
    text = str(number)
    key = ins_key(text)
    assert key in range(1, 98)
    assert check_ins(f"{text}{key:02d}") == f"{text}{key:02d}"
    wrong = (key % 97) + 1
    with pytest.raises(BadInput, match="does not match its key"):
        check_ins(f"{text}{wrong:02d}")


MALFORMED_INS = [
    "",
    "12345",
    "2550814168025",
    "25508141680253800",
    "2550814168O2538",
    "955081416802538",
]


@pytest.mark.parametrize("text", MALFORMED_INS)
def test_malformed_ins(text: str) -> None:
    with pytest.raises(BadInput, match="INS"):
        check_ins(text)


# --- dates and RPPS ----------------------------------------------------------------------

TODAY = dt.date(2026, 3, 15)


@pytest.mark.parametrize("text", ["1950-02-03", "2024-02-29", "2026-03-15", " 1999-12-31 "])
def test_good_birthdates(text: str) -> None:
    assert check_birthdate(text, today=TODAY) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-03-16", "future"),
        ("2023-02-29", "real date"),
        ("1950-13-01", "real date"),
        ("03/02/1950", "YYYY-MM-DD"),
        ("19500203", "YYYY-MM-DD"),
        ("1850-01-01", "too far"),
        ("", "YYYY-MM-DD"),
    ],
)
def test_bad_birthdates(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        check_birthdate(text, today=TODAY)


def test_rpps() -> None:
    assert check_rpps("100 0345 6789") == "10003456789"
    with pytest.raises(BadInput, match="11 digits"):
        check_rpps("1000345678")


@pytest.mark.parametrize(
    "text", ["10003456789", "1000345678", "100034567890", "1000345678a", "", "١٠٠٠٣٤٥٦٧٨٩"]
)
def test_the_rpps_rule_is_the_wire_rule(text: str) -> None:
    """A typed RPPS passes exactly when a card carrying it would (protocol.check_rpps)."""
    from protocol import MalformedMessage
    from protocol import check_rpps as wire_rule

    try:
        wire_rule(text)
        on_the_wire = bool(text)  # the wire allows "no RPPS"; a typed one is never empty
    except MalformedMessage:
        on_the_wire = False
    try:
        check_rpps(text)
        typed = True
    except BadInput:
        typed = False
    assert typed == on_the_wire


@pytest.mark.parametrize(
    "ins", ["2 95 10 99 126 111 93", "253072B07300470", "253072A07300443"]
)  # python-stdnum's own examples of valid NIRs
def test_ins_examples_of_python_stdnum(ins: str) -> None:
    assert check_ins(ins) == ins.replace(" ", "")
