"""Identity keys, peer ids, fingerprints, static certificates and profile cards."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthenticationFailed,
    FingerprintError,
    IdentityKey,
    LocalIdentity,
    MalformedMessage,
    PeerId,
    ProfileCard,
    RemoteProtocolError,
    StaticCert,
    codec,
    normalize_fingerprint,
)
from tests.fuzzing import check_parses_or_refuses

SEED = bytes(range(32))
STATIC = bytes(range(32, 64))
DOC = bytes(range(64, 96))


def local() -> LocalIdentity:
    return LocalIdentity.from_secrets(SEED, STATIC, DOC, not_after=2_000_000_000)


def test_known_answers() -> None:
    """Pinned keys give pinned ids: a change here breaks every paired practice."""
    me = local()
    assert me.public.key.hex() == (
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    )
    assert me.peer_id.hex == ("a0824351d058b9f950f42a4e720d2a764609ab6fef32ab717fc339bea57189d9")
    assert me.peer_id.fingerprint == "UCBE3-GUOQG-LC47V-SUHUI-FJHHK-EDJKH-OZDAB-TK3P7"
    assert me.static_cert.signature.hex().startswith("8fc2")


def test_fingerprint_round_trip_and_forgiving_typing() -> None:
    fingerprint = local().peer_id.fingerprint
    typed = fingerprint.lower().replace("-", " ")
    assert normalize_fingerprint(typed) == fingerprint.replace("-", "")
    assert local().peer_id.matches_fingerprint(typed)


def test_every_single_typo_is_caught() -> None:
    cleaned = local().peer_id.fingerprint.replace("-", "")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    for position, original in enumerate(cleaned):
        for replacement in alphabet:
            if replacement == original:
                continue
            typo = cleaned[:position] + replacement + cleaned[position + 1 :]
            with pytest.raises(FingerprintError, match="typo"):
                normalize_fingerprint(typo)


def test_every_swap_of_neighbours_is_caught() -> None:
    for _ in range(20):
        cleaned = LocalIdentity.generate(now=0).peer_id.fingerprint.replace("-", "")
        for position in range(len(cleaned) - 1):
            a, b = cleaned[position], cleaned[position + 1]
            if a == b:
                continue
            swapped = cleaned[:position] + b + a + cleaned[position + 2 :]
            with pytest.raises(FingerprintError):
                normalize_fingerprint(swapped)


def test_fingerprint_wrong_length_says_so() -> None:
    with pytest.raises(FingerprintError, match="40 letters"):
        normalize_fingerprint("ABCD")


def test_static_cert_checks() -> None:
    me = local()
    cert = StaticCert.from_wire(me.static_cert.to_wire())
    cert.verify(me.public, now=1_000)
    with pytest.raises(AuthenticationFailed):
        cert.verify(me.public, now=2_000_000_001)  # expired
    other = LocalIdentity.generate(now=0)
    with pytest.raises(AuthenticationFailed):
        cert.verify(other.public, now=1_000)  # signed by someone else
    forged = dataclasses.replace(cert, static_public=other.static_public)
    with pytest.raises(AuthenticationFailed):
        forged.verify(me.public, now=1_000)
    with pytest.raises(MalformedMessage):
        StaticCert.from_wire(b"short")


def test_signatures_are_bound_to_their_label() -> None:
    key = IdentityKey(SEED)
    signature = key.sign(b"pli/1/card", b"data")
    key.public.verify(b"pli/1/card", b"data", signature)
    with pytest.raises(AuthenticationFailed):
        key.public.verify(b"pli/1/receipt", b"data", signature)


def test_card_round_trip_and_tamper() -> None:
    me = local()
    card = me.card(3, name="Dr Claire Martin", profession="GP", rpps="10003456789")
    wire = card.sign(me.identity)
    assert ProfileCard.from_wire(wire) == card
    for position in range(len(wire)):
        tampered = bytearray(wire)
        tampered[position] ^= 0x01
        with pytest.raises(RemoteProtocolError):
            ProfileCard.from_wire(bytes(tampered))


def test_card_replacement_rules() -> None:
    me = local()
    old, new = me.card(1, name="A"), me.card(2, name="B")
    assert new.replaces(old)
    assert not old.replaces(new)
    assert not LocalIdentity.generate(now=0).card(9, name="X").replaces(old)


def test_card_refuses_bad_fields() -> None:
    me = local()
    with pytest.raises(MalformedMessage, match="RPPS"):
        me.card(1, name="A", rpps="123")
    with pytest.raises(MalformedMessage):
        me.card(1, name="A\nB")
    unsigned = codec.pack({"body": codec.pack({"v": 1}), "sig": b"\x00" * 64})
    with pytest.raises(RemoteProtocolError):
        ProfileCard.from_wire(unsigned)


def test_secrets_do_not_appear_in_repr() -> None:
    me = local()
    assert SEED.hex() not in repr(me)
    assert SEED.hex() not in repr(me.identity)


@given(st.binary(max_size=400))
def test_card_and_cert_parsers_never_raise_anything_else(data: bytes) -> None:
    for parse in (ProfileCard.from_wire, StaticCert.from_wire, normalize_fingerprint_bytes):
        check_parses_or_refuses(parse, data)


def normalize_fingerprint_bytes(data: bytes) -> object:
    return normalize_fingerprint(data.decode("latin-1"))


@given(st.binary(min_size=32, max_size=32))
def test_any_peer_id_fingerprint_validates(digest: bytes) -> None:
    fingerprint = PeerId(digest).fingerprint
    assert PeerId(digest).matches_fingerprint(fingerprint)
