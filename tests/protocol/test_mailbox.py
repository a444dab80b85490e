"""protocol/mailbox.py: pairwise tags and keys, sealed frames, and their parser."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import AuthenticationFailed, FrameTooLarge, LocalIdentity, MalformedMessage, mailbox
from tests.fuzzing import check_parses_or_refuses

A = LocalIdentity.generate(now=0)
B = LocalIdentity.generate(now=0)
C = LocalIdentity.generate(now=0)
AB = mailbox.PairKeys.derive(A, B.card(1, name="B"))
BA = mailbox.PairKeys.derive(B, A.card(1, name="A"))


def test_both_sides_derive_the_same_two_directions() -> None:
    assert AB.outgoing == BA.incoming
    assert AB.incoming == BA.outgoing
    assert AB.outgoing.key != AB.incoming.key


def test_a_third_peer_knows_no_key_of_the_pair() -> None:
    """C is paired with both A and B: it still cannot compute A's key towards B."""
    ca = mailbox.PairKeys.derive(C, A.card(1, name="A"))
    cb = mailbox.PairKeys.derive(C, B.card(1, name="B"))
    ours = {AB.outgoing.key, AB.incoming.key}
    assert ours.isdisjoint({ca.outgoing.key, ca.incoming.key, cb.outgoing.key, cb.incoming.key})


def test_box_name_is_stable_and_opaque() -> None:
    assert mailbox.box_name(A.public) == mailbox.box_name(A.public)
    assert len(mailbox.box_name(A.public)) == 20
    assert mailbox.box_name(A.public) != mailbox.box_name(B.public)
    assert A.public.peer_id.hex[:20] != mailbox.box_name(A.public)


def test_message_ids_name_neither_document_nor_index() -> None:
    doc = os.urandom(16)
    first = AB.outgoing.message_id(mailbox.KIND_CHUNK, doc, 0)
    assert first == BA.incoming.message_id(mailbox.KIND_CHUNK, doc, 0)
    assert first != AB.outgoing.message_id(mailbox.KIND_CHUNK, doc, 1)
    assert doc.hex() not in first


def test_chunk_and_receipt_round_trip() -> None:
    doc = os.urandom(16)
    size = mailbox.CHUNK_SIZE + 10
    last = mailbox.Chunk(doc, 1, size, b"x" * 10)
    wire = mailbox.encode_frame(AB.outgoing, last, nonce=os.urandom(mailbox.NONCE_SIZE))
    assert doc not in wire
    opened = mailbox.decode_frame(BA.incoming, wire)
    assert opened == last
    assert isinstance(opened, mailbox.Chunk)
    assert opened.last
    receipt = mailbox.ReceiptFrame(doc, b"signed receipt")
    assert (
        mailbox.decode_frame(
            BA.incoming,
            mailbox.encode_frame(AB.outgoing, receipt, nonce=os.urandom(mailbox.NONCE_SIZE)),
        )
        == receipt
    )


def test_a_changed_byte_or_the_wrong_direction_is_refused() -> None:
    wire = bytearray(
        mailbox.encode_frame(
            AB.outgoing,
            mailbox.Chunk(bytes(16), 0, 3, b"abc"),
            nonce=os.urandom(mailbox.NONCE_SIZE),
        )
    )
    with pytest.raises(AuthenticationFailed):
        mailbox.decode_frame(AB.incoming, bytes(wire))  # the other direction: another key
    wire[-1] ^= 1
    with pytest.raises(AuthenticationFailed):
        mailbox.decode_frame(BA.incoming, bytes(wire))


def test_a_chunk_of_the_wrong_length_is_refused() -> None:
    plain = b"C" + bytes(16) + (0).to_bytes(8, "big") + (10).to_bytes(8, "big") + b"short"
    with pytest.raises(MalformedMessage):
        mailbox.parse_frame(plain)


@given(st.binary(max_size=300))
def test_any_plaintext_parses_or_is_refused(data: bytes) -> None:
    check_parses_or_refuses(mailbox.parse_frame, data)


@given(st.binary(max_size=300))
def test_any_message_parses_or_is_refused(data: bytes) -> None:
    check_parses_or_refuses(lambda raw: mailbox.decode_frame(BA.incoming, raw), data)


def test_the_largest_chunk_fits_and_one_byte_more_is_refused_unopened() -> None:
    full = mailbox.Chunk(bytes(16), 0, mailbox.CHUNK_SIZE, bytes(mailbox.CHUNK_SIZE))
    wire = mailbox.encode_frame(AB.outgoing, full, nonce=os.urandom(mailbox.NONCE_SIZE))
    assert len(wire) <= mailbox.MAX_FRAME
    assert mailbox.decode_frame(BA.incoming, wire) == full
    with pytest.raises(FrameTooLarge):
        mailbox.decode_frame(BA.incoming, wire + bytes(mailbox.MAX_FRAME - len(wire) + 1))
    with pytest.raises(AuthenticationFailed):  # within the limit, but not sealed by the pair
        mailbox.decode_frame(BA.incoming, bytes(mailbox.MAX_FRAME))


def test_a_card_round_trips_and_is_bounded() -> None:
    card = mailbox.CardFrame(A.card(2, name="A", mailboxes=("nats://h:4222",)).sign(A.identity))
    wire = mailbox.encode_frame(AB.outgoing, card, nonce=os.urandom(mailbox.NONCE_SIZE))
    assert mailbox.decode_frame(BA.incoming, wire) == card
    with pytest.raises(MalformedMessage):
        mailbox.parse_frame(b"K" + bytes(16))  # no card
    with pytest.raises(MalformedMessage):
        mailbox.parse_frame(b"K" + bytes(16) + b"x" * (mailbox.MAX_CARD + 1))
    with pytest.raises(MalformedMessage):
        mailbox.parse_frame(b"K" + b"\x01" * 16 + b"card")  # a card names no document
    assert mailbox.parse_frame(b"K" + bytes(16) + b"card") == mailbox.CardFrame(b"card")


@given(st.binary(max_size=300))
def test_any_card_frame_parses_or_is_refused(data: bytes) -> None:
    check_parses_or_refuses(mailbox.parse_frame, b"K" + bytes(16) + data)


def test_frames_are_the_bytes_pynacl_seals() -> None:
    """The in-place sealing keeps the wire format: ``nonce ‖ AEGIS-256(plaintext)`` as
    PyNaCl's public call makes it, and PyNaCl's call opens it."""
    from nacl import bindings

    doc, nonce = os.urandom(16), os.urandom(mailbox.NONCE_SIZE)
    data = os.urandom(mailbox.CHUNK_SIZE)
    cases: list[tuple[mailbox.Chunk | mailbox.ReceiptFrame | mailbox.CardFrame, bytes]] = [
        (
            mailbox.Chunk(doc, 0, len(data), data),
            b"C" + doc + (0).to_bytes(8, "big") + len(data).to_bytes(8, "big") + data,
        ),
        (mailbox.ReceiptFrame(doc, b"receipt"), b"R" + doc + b"receipt"),
        (mailbox.CardFrame(b"card"), b"K" + bytes(16) + b"card"),
    ]
    for frame, plain in cases:
        expected = nonce + bindings.crypto_aead_aegis256_encrypt(
            plain, None, nonce, AB.outgoing.key
        )
        wire = mailbox.encode_frame(AB.outgoing, frame, nonce=nonce)
        assert bytes(wire) == expected
        assert mailbox.decode_frame(BA.incoming, expected) == frame
