"""Revocation statements: pinned bytes, strict decoding, domain separation, fuzzing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthenticationFailed,
    FrameTooLarge,
    IdentityKey,
    MalformedMessage,
    RemoteProtocolError,
    Revocation,
    limits,
)
from protocol.identity import LABEL_CARD, LABEL_STATIC_CERT
from protocol.revocation import LABEL_REVOCATION, TEXT_PREFIX, WIRE_SIZE
from tests.fuzzing import check_parses_or_refuses

SEED = bytes(range(32))
WHEN = 1_800_000_000
KNOWN_WIRE = (
    "0103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8000000006b49d200"
    "06b69d470ed512883c21b7303b4527579ca0c3a16c9c1fa8b4d4e41e8c1d700373253ec28b4e34d989"
    "8cd05b199809fa06aa5789ba9e87f6f3f2630a7099850a"
)
KNOWN_TEXT = (
    "PLI1-REVOKE:AEB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3QAAAAAAGWSOSAADLNHKHB3KRFC"
    "B4EG3TAO2FE5LZZIGDUFWJYH5IWTKOIHUMDVYAG4ZFH3BIWTRU3GEYZUC3DGMAT6QGVJLYTOU6Q73PH4TDBJYJTBIK"
)


def statement() -> Revocation:
    return Revocation.issue(IdentityKey(SEED), now=WHEN)


def test_known_answer() -> None:
    """Pinned key and time give pinned bytes: a change here breaks every printed certificate."""
    revocation = statement()
    assert revocation.to_wire().hex() == KNOWN_WIRE
    assert revocation.to_text() == KNOWN_TEXT
    assert len(revocation.to_wire()) == WIRE_SIZE == limits.REVOCATION_SIZE == 105
    parsed = Revocation.from_wire(bytes.fromhex(KNOWN_WIRE))
    assert parsed == revocation
    assert parsed.identity == IdentityKey(SEED).public
    assert parsed.revoked_at == WHEN


def test_text_form_is_found_in_a_whole_file_and_uses_qr_alphanumerics() -> None:
    text = statement().to_text()
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    page = f"<p>Keep this page.</p>\n<code>{text}</code>\n<svg>{text}</svg>\n"
    assert Revocation.from_text(page) == statement()


def test_every_altered_byte_is_refused() -> None:
    wire = statement().to_wire()
    for index in range(len(wire)):
        altered = bytearray(wire)
        altered[index] ^= 0x01
        with pytest.raises(RemoteProtocolError):
            Revocation.from_wire(bytes(altered))


def test_a_signature_made_for_another_purpose_does_not_revoke() -> None:
    """Domain separation: the same bytes signed under another pli label are refused."""
    key = IdentityKey(SEED)
    signed = statement().to_wire()[:41]
    for label in (LABEL_CARD, LABEL_STATIC_CERT, b"pli/1/revocation2"):
        forged = signed + key.sign(label, signed)
        with pytest.raises(AuthenticationFailed):
            Revocation.from_wire(forged)
    assert Revocation.from_wire(signed + key.sign(LABEL_REVOCATION, signed)) == statement()


def test_someone_else_cannot_revoke_an_identity() -> None:
    victim = IdentityKey(SEED).public
    attacker = IdentityKey(bytes(range(1, 33)))
    own = Revocation.issue(attacker, now=WHEN).to_wire()
    forged = own[:1] + victim.key + own[33:]
    with pytest.raises(AuthenticationFailed):
        Revocation.from_wire(forged)


def test_wrong_sizes_and_versions_are_refused() -> None:
    wire = statement().to_wire()
    with pytest.raises(FrameTooLarge):
        Revocation.from_wire(wire + b"\x00")
    with pytest.raises(MalformedMessage):
        Revocation.from_wire(wire[:-1])
    with pytest.raises(MalformedMessage):
        Revocation.from_wire(b"\x02" + wire[1:])
    with pytest.raises(MalformedMessage):
        Revocation.from_wire(b"")


def test_texts_that_are_not_one_statement_are_refused() -> None:
    text = statement().to_text()
    other = Revocation.issue(IdentityKey(SEED), now=WHEN + 1).to_text()
    for bad in (
        "",
        "hello",
        text[:-1],
        text + "A",
        f"{text}\n{other}",
        text.lower(),
        TEXT_PREFIX + "A" * 168,
        "x" * 300_000,
    ):
        with pytest.raises(RemoteProtocolError):
            Revocation.from_text(bad)


@given(st.binary(max_size=2 * WIRE_SIZE))
def test_fuzz_wire_parses_or_refuses(data: bytes) -> None:
    check_parses_or_refuses(Revocation.from_wire, data)


@given(st.binary(min_size=WIRE_SIZE, max_size=WIRE_SIZE))
def test_fuzz_wire_of_the_right_size_parses_or_refuses(data: bytes) -> None:
    check_parses_or_refuses(Revocation.from_wire, b"\x01" + data[1:])


@given(st.text(max_size=400))
def test_fuzz_text_parses_or_refuses(text: str) -> None:
    check_parses_or_refuses(Revocation.from_text, text)


@given(st.binary(min_size=WIRE_SIZE, max_size=WIRE_SIZE))
def test_fuzz_text_with_a_well_formed_token_parses_or_refuses(data: bytes) -> None:
    check_parses_or_refuses(Revocation.from_text, TEXT_PREFIX + base64.b32encode(data).decode())
