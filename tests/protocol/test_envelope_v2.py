"""What pli/2 added to the envelope: key commitment and Padmé padding.

Key commitment: the signed header carries ``labelled_hash(LABEL_COMMITMENT, file_key)``;
a wrapped key that opens to any other key is refused before any record is read,
even when the records were sealed so that they authenticate under that other key.
Padding: every envelope is ``padded_size(unpadded)`` bytes, the tail all zeros.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl import bindings

from protocol import AuthenticationFailed, EnvelopeReader, Verified, codec, open_envelope
from protocol._hashing import labelled_hash
from protocol.envelope import (
    LABEL_COMMITMENT,
    LABEL_HEADER,
    TAG_FINAL,
    TAG_MESSAGE,
    key_commitment,
    record_nonce,
)
from protocol.padding import MIN_ENVELOPE_SIZE, padded_size, padme
from tests.protocol.test_envelope import (
    ALICE,
    BOB,
    CAROL,
    forge_signed,
    meta_for,
    payload,
    refused,
    seal_bytes,
    split,
    unpadded_size,
)

FORGED_KEY = bytes([9]) * 32  # what forge_signed's writer draws as the file key
COMMITTED_KEY = bytes([5]) * 32


def test_the_header_commits_to_the_file_key() -> None:
    envelope = forge_signed(
        ALICE, meta_for(ALICE, [BOB], [3]), [BOB.doc_public, ALICE.doc_public], [b"abc"]
    )
    header = codec.unpack(split(envelope)[0][12:])
    assert header["commit"] == key_commitment(FORGED_KEY)
    assert LABEL_COMMITMENT == b"pli/2/envelope-key-commitment"
    assert open_envelope([envelope], BOB).meta.files[0].size == 3


def test_a_key_that_passes_the_aead_with_other_content_is_refused() -> None:
    """Bob's wrapped key opens records that authenticate, but it is not the committed key.

    Without the commitment this envelope would open for Bob with content the
    committed key (the one Carol would be given) never produced: one envelope,
    two readings. The reader refuses it at the header.
    """
    meta = meta_for(ALICE, [BOB, CAROL], [10])
    keys = [BOB.doc_public, CAROL.doc_public, ALICE.doc_public]
    envelope = forge_signed(ALICE, meta, keys, [b"0123456789"], commit_to=COMMITTED_KEY)
    head, records = split(envelope)
    # The records really are valid under the key Bob unwraps (the AEAD passes) ...
    header_hash = labelled_hash(LABEL_HEADER, head[12:])
    for index, record in enumerate(records):
        final = TAG_FINAL if index == len(records) - 1 else TAG_MESSAGE
        bindings.crypto_aead_aegis256_decrypt(
            record[4:], header_hash, record_nonce(index, final), FORGED_KEY
        )
    # ... and the reader still refuses, before any event, for every reader.
    for me in (BOB, CAROL, ALICE):
        reader = EnvelopeReader(me)
        with pytest.raises(AuthenticationFailed):
            reader.feed(head)
        assert isinstance(refused(envelope, me), AuthenticationFailed)


def test_a_changed_commitment_is_refused() -> None:
    envelope = bytearray(seal_bytes([b"hello"])[0])
    position = bytes(envelope).index(b"commit") + len(b"commit") + 2  # after bin8's 2 bytes
    envelope[position] ^= 1
    assert isinstance(refused(bytes(envelope)), AuthenticationFailed)


# --- padding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "padded"),
    [
        (0, 0),
        (1, 1),
        (2, 2),
        (9, 10),
        (100, 104),
        (1000, 1024),
        (16385, 17408),
        (1_000_000, 1_015_808),
        (2**30 + 5, 1_107_296_256),
    ],
)
def test_padme_known_values(size: int, padded: int) -> None:
    assert padme(size) == padded


@given(st.integers(min_value=2, max_value=2**40))
def test_padme_overhead_and_shape(size: int) -> None:
    padded = padme(size)
    assert size <= padded <= size * 1.12
    assert padme(padded) == padded  # padded sizes are fixed points
    assert padme(size + 1) >= padded  # monotonic


def test_short_letters_all_have_the_minimum_size() -> None:
    sizes = {len(seal_bytes([payload(n)])[0]) for n in (0, 1, 500, 5000, 12_000)}
    assert sizes == {MIN_ENVELOPE_SIZE}
    assert padded_size(0) == padded_size(MIN_ENVELOPE_SIZE) == MIN_ENVELOPE_SIZE


@pytest.mark.parametrize("size", [20_000, 100_000, 1_000_000, 3_000_000])
def test_larger_envelopes_are_padded_within_the_bound(size: int) -> None:
    envelope = seal_bytes([payload(size)])[0]
    body = unpadded_size(envelope)
    assert len(envelope) == padme(body) <= body * 1.07  # Padmé above 16 KiB: ≤ 6.3 %
    assert envelope[body:] == bytes(len(envelope) - body)


def test_changed_missing_or_extra_padding_is_refused() -> None:
    envelope = seal_bytes([b"Ordonnance"])[0]
    body = unpadded_size(envelope)
    for position in (body, len(envelope) - 1):
        changed = bytearray(envelope)
        changed[position] = 1
        assert isinstance(refused(bytes(changed)), AuthenticationFailed)
    assert isinstance(refused(envelope[:body]), AuthenticationFailed)
    assert isinstance(refused(envelope[:-1]), AuthenticationFailed)
    assert isinstance(refused(envelope + b"\x00"), AuthenticationFailed)


def test_verified_comes_only_after_the_last_padding_byte() -> None:
    envelope = seal_bytes([b"Ordonnance"])[0]
    reader = EnvelopeReader(BOB)
    assert not any(isinstance(e, Verified) for e in reader.feed(envelope[:-1]))
    (verified,) = [e for e in reader.feed(envelope[-1:]) if isinstance(e, Verified)]
    assert verified.envelope.size == len(envelope)
    reader.close()
