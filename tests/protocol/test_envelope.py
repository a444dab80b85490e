"""Document envelopes: round trips, a golden vector, tampering, limits, memory.

The golden vector (tests/data/envelope-v2.bin and .json) is regenerated only
when the format changes on purpose::

    .venv/bin/python -m tests.protocol.test_envelope --regenerate
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import random
import sys
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    KINDS,
    AuthenticationFailed,
    Content,
    DocumentMeta,
    EnvelopeReader,
    FileEntry,
    FrameTooLarge,
    LocalIdentity,
    LocalProtocolError,
    MalformedMessage,
    MetaReceived,
    PublicIdentity,
    RemoteProtocolError,
    SealedEnvelope,
    Verified,
    VerifiedEnvelope,
    VersionMismatch,
    codec,
    limits,
    new_document_id,
    open_envelope,
    seal,
)
from protocol.envelope import (
    LABEL_SIGNATURE,
    MAGIC,
    TAG_FINAL,
    TAG_MESSAGE,
    _StreamWriter,
    envelope_digest,
    key_commitment,
    padding,
)
from protocol.padding import MIN_ENVELOPE_SIZE, padded_size
from tests.fuzzing import check_parses_or_refuses

DATA = Path(__file__).resolve().parent.parent / "data"
GOLDEN_BIN = DATA / "envelope-v2.bin"
GOLDEN_JSON = DATA / "envelope-v2.json"
CHUNK = limits.CHUNK_SIZE
NOW = 1_764_000_000


def person(n: int) -> LocalIdentity:
    """A fixed identity: seeds are n, n+1, n+2 repeated (pinned for the golden vector)."""
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=2_000_000_000
    )


ALICE, BOB, CAROL, MALLORY = person(10), person(20), person(30), person(40)


def meta_for(
    sender: LocalIdentity,
    recipients: Sequence[LocalIdentity],
    sizes: Sequence[int],
    *,
    kind: str = "letter",
    metadata: dict[str, str] | None = None,
) -> DocumentMeta:
    return DocumentMeta(
        document_id=new_document_id(),
        created_at=NOW,
        kind=kind,
        sender=sender.public,
        recipients=tuple(r.public for r in recipients),
        files=tuple(FileEntry(f"file-{i}.bin", size) for i, size in enumerate(sizes)),
        metadata=metadata or {"patient": "Dupont, Marie", "subject": "Adressage"},
    )


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def seal_bytes(
    contents: Sequence[bytes],
    sender: LocalIdentity = ALICE,
    recipients: Sequence[LocalIdentity] = (BOB,),
) -> tuple[bytes, DocumentMeta]:
    meta = meta_for(sender, recipients, [len(c) for c in contents])
    cards = [r.card(1, name="Dr") for r in recipients]
    return b"".join(seal(sender, cards, meta, list(contents))), meta


def read_all(
    envelope: bytes, me: LocalIdentity, *, pieces: int = 0, **kwargs: Any
) -> tuple[list[Any], dict[int, bytes]]:
    """Feed the envelope (in ``pieces``-byte slices if given), close, collect events."""
    reader = EnvelopeReader(me, **kwargs)
    events: list[Any] = []
    step = pieces or max(len(envelope), 1)
    for start in range(0, len(envelope), step):
        events += reader.feed(envelope[start : start + step])
    reader.close()
    assert reader.complete
    assert reader.bytes_consumed == len(envelope)
    files: dict[int, bytes] = {}
    for event in events:
        if isinstance(event, Content):
            files[event.file_index] = files.get(event.file_index, b"") + event.data
    return events, files


def refused(envelope: bytes, me: LocalIdentity = BOB, **kwargs: Any) -> RemoteProtocolError:
    """Feed and close; the envelope must be refused and never reported verified."""
    reader = EnvelopeReader(me, **kwargs)
    events: list[Any] = []

    def read() -> None:
        events.extend(reader.feed(envelope))
        reader.close()

    with pytest.raises(RemoteProtocolError) as caught:
        read()
    assert not reader.complete
    assert not any(isinstance(e, Verified) for e in events)
    return caught.value


def split(envelope: bytes) -> tuple[bytes, list[bytes]]:
    """(MAGIC + header, [records with their length prefix]), the padding left out."""
    position = len(MAGIC) + 4 + int.from_bytes(envelope[8:12], "big")
    head, records = envelope[:position], []
    while position < len(envelope):
        size = int.from_bytes(envelope[position : position + 4], "big")
        if size == 0:  # the zero padding after the final record
            break
        records.append(envelope[position : position + 4 + size])
        position += 4 + size
    return head, records


def pad(body: bytes) -> bytes:
    """An unpadded envelope with its padding, as ``seal`` writes it."""
    return body + b"".join(padding(len(body)))


def unpadded_size(envelope: bytes) -> int:
    head, records = split(envelope)
    return len(head) + sum(len(r) for r in records)


# --- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5_000_000])
def test_round_trip_sizes(size: int) -> None:
    content = payload(size, seed=size)
    envelope, meta = seal_bytes([content])
    events, files = read_all(envelope, BOB)
    assert isinstance(events[0], MetaReceived)
    assert events[0].meta == meta
    assert isinstance(events[-1], Verified)
    assert files.get(0, b"") == content
    verified = events[-1].envelope
    assert verified.meta == meta
    assert verified.file_hashes == (hashlib.sha256(content).digest(),)
    assert verified.size == len(envelope) == padded_size(unpadded_size(envelope))
    assert envelope[unpadded_size(envelope) :] == bytes(len(envelope) - unpadded_size(envelope))
    # Every record but the last content one carries a full chunk: overhead is fixed.
    records = split(envelope)[1]
    assert len(records) == 2 + -(-size // CHUNK)


def test_multi_file_letter_with_pdf_attachment() -> None:
    letter = "Cher confrère,\nJe vous adresse Mme Dupont pour avis.\n".encode()
    pdf = b"%PDF-1.7\n" + payload(2 * CHUNK + 123, seed=7)
    meta = DocumentMeta(
        document_id=new_document_id(),
        created_at=NOW,
        kind="letter",
        sender=ALICE.public,
        recipients=(BOB.public, CAROL.public),
        files=(
            FileEntry("lettre.txt", len(letter), "text/plain; charset=utf-8"),
            FileEntry("empty.txt", 0, "text/plain"),
            FileEntry("bilan.pdf", len(pdf), "application/pdf"),
        ),
        metadata={"patient": "Dupont, Marie", "author": "Dr Martin"},
    )
    cards = [BOB.card(1, name="Dr Bob"), CAROL.card(1, name="Dr Carol")]
    envelope = b"".join(seal(ALICE, cards, meta, [letter, io.BytesIO(b""), io.BytesIO(pdf)]))
    digests = set()
    for me in (BOB, CAROL, ALICE):  # each recipient, and the sender's own copy
        events, files = read_all(envelope, me, pieces=10_000)
        assert files == {0: letter, 2: pdf}  # an empty file has no Content event
        verified = events[-1].envelope
        assert verified.meta == meta
        digests.add(verified.digest)
    assert len(digests) == 1
    # The letter and the PDF share the first content record: a boundary mid-record.
    assert len(split(envelope)[1]) == 2 + -(-(len(letter) + len(pdf)) // CHUNK)


@pytest.mark.parametrize(
    "make_source",
    [
        lambda data: data,
        io.BytesIO,
        lambda data: iter([data[i : i + 1000] for i in range(0, len(data), 1000)]),
        lambda data: (data[i : i + 200_000] for i in range(0, len(data), 200_000)),
        lambda data: [bytearray(data[:5]), memoryview(data[5:]), b""],
    ],
    ids=["bytes", "file", "small-pieces", "large-pieces", "mixed-buffers"],
)
def test_sources(make_source: Callable[[bytes], Any]) -> None:
    content = payload(3 * CHUNK + 17, seed=3)
    meta = meta_for(ALICE, [BOB], [len(content)])
    envelope = b"".join(seal(ALICE, [BOB.card(1, name="B")], meta, [make_source(content)]))
    assert read_all(envelope, BOB)[1] == {0: content}


def test_feeding_one_byte_at_a_time_gives_the_same_events() -> None:
    envelope, _ = seal_bytes([b"hello", b"world" * 10])
    whole, _ = read_all(envelope, BOB)
    trickled, _ = read_all(envelope, BOB, pieces=1)
    assert whole == trickled


def test_seal_yields_about_one_record_per_piece() -> None:
    content = payload(4 * CHUNK)
    meta = meta_for(ALICE, [BOB], [len(content)])
    pieces = list(seal(ALICE, [BOB.card(1, name="B")], meta, [content]))
    records = pieces[: 1 + 1 + 4 + 1]  # head, inner, content, trailer; then padding
    assert [len(p) for p in records[2:6]] == [4 + CHUNK + limits.CHUNK_OVERHEAD] * 4
    assert all(not any(p) for p in pieces[7:])
    assert max(len(p) for p in pieces) == 4 + CHUNK + limits.CHUNK_OVERHEAD
    assert sum(map(len, pieces)) == padded_size(sum(map(len, records)))


def test_the_sender_learns_the_digest_once_sealing_is_done() -> None:
    content = payload(3 * 1024 * 1024)  # large enough for the hashing thread
    meta = meta_for(ALICE, [BOB], [len(content)])
    sealed = seal(ALICE, [BOB.card(1, name="B")], meta, [content])
    assert isinstance(sealed, SealedEnvelope)
    first = next(sealed)
    with pytest.raises(LocalProtocolError):
        _ = sealed.digest
    envelope = first + b"".join(sealed)
    assert sealed.digest == open_envelope([envelope], BOB).digest
    abandoned = seal(ALICE, [BOB.card(1, name="B")], meta, [content])
    for _ in range(30):  # past the 1 MiB where hashing moves to its thread
        next(abandoned)
    abandoned.close()
    assert list(abandoned) == []


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [1], [CHUNK - 1], [CHUNK], [CHUNK + 1], [5, CHUNK, 3], [3 * CHUNK + 7] * 3],
)
@pytest.mark.parametrize("recipients", [(BOB,), (BOB, CAROL)])
def test_the_size_is_known_before_sealing(
    sizes: list[int], recipients: tuple[LocalIdentity, ...]
) -> None:
    """What an offer announces while the envelope is still being sealed."""
    meta = meta_for(ALICE, recipients, sizes)
    cards = [r.card(1, name="Dr") for r in recipients]
    sealed = seal(ALICE, cards, meta, [payload(size, i) for i, size in enumerate(sizes)])
    announced = sealed.size
    assert len(b"".join(sealed)) == announced


@given(st.lists(st.integers(0, 3 * CHUNK), max_size=4), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_the_announced_size_matches_for_any_files(sizes: list[int], count: int) -> None:
    recipients = (BOB, CAROL, MALLORY)[:count]
    meta = meta_for(ALICE, recipients, sizes)
    cards = [r.card(1, name="Dr") for r in recipients]
    sealed = seal(ALICE, cards, meta, [bytes(size) for size in sizes])
    assert sum(map(len, sealed)) == sealed.size


def test_open_envelope_from_file_iterable_and_without_sink() -> None:
    content = payload(2 * CHUNK + 5)
    envelope, meta = seal_bytes([content])
    received: list[tuple[int, bytes]] = []
    verified = open_envelope(io.BytesIO(envelope), BOB, lambda i, d: received.append((i, d)))
    assert b"".join(d for _, d in received) == content
    assert verified.meta == meta
    assert isinstance(verified, VerifiedEnvelope)
    assert open_envelope([envelope[:100], envelope[100:]], BOB) == verified


# --- the golden vector ------------------------------------------------------------

GOLDEN_LETTER = (
    "Chère consœur,\nJe vous adresse M. Martin, 58 ans, pour avis cardiologique.\n"
    "Bien confraternellement,\nDr Alice\n"
).encode()


def golden_meta() -> DocumentMeta:
    return DocumentMeta(
        document_id=bytes(range(16)),
        created_at=NOW,
        kind="letter",
        sender=ALICE.public,
        recipients=(BOB.public,),
        files=(
            FileEntry("lettre.txt", len(GOLDEN_LETTER), "text/plain; charset=utf-8"),
            FileEntry("vide.txt", 0, "text/plain"),
        ),
        metadata={"patient": "Martin, Paul", "subject": "Avis cardiologique"},
    )


def regenerate_golden() -> None:
    """Write a new golden envelope. Only for a deliberate format change."""
    envelope = b"".join(
        seal(
            ALICE,
            [BOB.card(1, name="Dr Bob")],
            golden_meta(),
            [GOLDEN_LETTER, b""],
            rng=lambda n: bytes([7]) * n,  # the file key; SealedBox's ephemeral keys stay random
        )
    )
    verified = open_envelope([envelope], BOB)
    DATA.mkdir(exist_ok=True)
    GOLDEN_BIN.write_bytes(envelope)
    expected = {
        "comment": "pli/2 envelope from ALICE=person(10) to BOB=person(20); see test_envelope.py",
        "size": len(envelope),
        "unpadded_size": unpadded_size(envelope),
        "file_key": (bytes([7]) * 32).hex(),
        "key_commitment": key_commitment(bytes([7]) * 32).hex(),
        "inner_header": golden_meta().to_wire().hex(),
        "header_hash": verified.header_hash.hex(),
        "digest": verified.digest.hex(),
        "file_hashes": [h.hex() for h in verified.file_hashes],
        "files": [GOLDEN_LETTER.decode(), ""],
    }
    GOLDEN_JSON.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")


def test_golden_envelope_still_opens_the_same() -> None:
    """A stored v2 envelope: today's reader must give the same meta, digest, plaintext."""
    envelope = GOLDEN_BIN.read_bytes()
    expected = json.loads(GOLDEN_JSON.read_text())
    assert len(envelope) == expected["size"] == MIN_ENVELOPE_SIZE  # a short letter
    assert unpadded_size(envelope) == expected["unpadded_size"]
    header = codec.unpack(split(envelope)[0][12:])
    assert header["commit"].hex() == expected["key_commitment"]
    assert key_commitment(bytes.fromhex(expected["file_key"])) == header["commit"]
    # The inner header encoding is deterministic: pin it exactly.
    assert golden_meta().to_wire().hex() == expected["inner_header"]
    for me in (BOB, ALICE):
        events, files = read_all(envelope, me)
        verified = events[-1].envelope
        assert verified.meta == golden_meta()
        assert verified.inner_header.hex() == expected["inner_header"]
        assert verified.header_hash.hex() == expected["header_hash"]
        assert verified.digest.hex() == expected["digest"]
        assert [h.hex() for h in verified.file_hashes] == expected["file_hashes"]
        assert files.get(0, b"").decode() == expected["files"][0]
        assert set(files) <= {0}  # the empty second file yields no content
    assert isinstance(refused(envelope, CAROL), AuthenticationFailed)


# --- tampering ------------------------------------------------------------------------


def small_envelope() -> bytes:
    return seal_bytes([b"Ordonnance: paracetamol 1 g x 3 / jour"])[0]


def test_every_single_byte_flip_is_refused() -> None:
    envelope = small_envelope()
    head, records = split(envelope)
    body = unpadded_size(envelope)
    padding_sample = {body, body + 1, (body + len(envelope)) // 2, len(envelope) - 1}
    # Offsets of the records' length prefixes: a flip there is a shape error.
    prefixes: set[int] = set()
    position = len(head)
    for record in records:
        prefixes.update(range(position, position + 4))
        position += len(record)
    for position in sorted(set(range(body)) | padding_sample):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(envelope)
            tampered[position] ^= mask
            for want_plaintext in (True, False):
                error = refused(bytes(tampered), want_plaintext=want_plaintext)
                if position >= len(head) and position not in prefixes:
                    assert isinstance(error, AuthenticationFailed), position


def test_truncation_anywhere_is_refused_at_close() -> None:
    envelope = seal_bytes([payload(2 * CHUNK + 10)])[0]
    _, records = split(envelope)
    cuts = set(range(0, 600)) | {len(envelope) - n for n in range(1, 300)}
    position = len(envelope) - sum(len(r) for r in records)
    for record in records:  # around every record boundary
        cuts.update({position - 1, position, position + 1, position + 4, position + 5})
        position += len(record)
    for cut in sorted(c for c in cuts if 0 <= c < len(envelope)):
        reader = EnvelopeReader(BOB)
        events = reader.feed(envelope[:cut])  # a valid prefix is not an error yet
        assert not any(isinstance(e, Verified) for e in events)
        with pytest.raises(AuthenticationFailed):
            reader.close()


def test_trailing_bytes_and_a_second_envelope_are_refused() -> None:
    envelope = small_envelope()
    assert isinstance(refused(envelope + b"\x00"), AuthenticationFailed)
    assert isinstance(refused(envelope + envelope), AuthenticationFailed)
    reader = EnvelopeReader(BOB)
    assert isinstance(reader.feed(envelope)[-1], Verified)
    with pytest.raises(AuthenticationFailed):
        reader.feed(b"x")
    with pytest.raises(LocalProtocolError):
        reader.feed(b"")  # a failed reader stays failed


def multi_record() -> bytes:
    return seal_bytes([payload(3 * CHUNK + 100, seed=9)])[0]


def test_reordered_duplicated_and_dropped_records_are_refused() -> None:
    head, records = split(multi_record())
    inner, c1, c2, c3, c4, final = records
    variants = {
        "swap": [inner, c2, c1, c3, c4, final],
        "duplicate": [inner, c1, c1, c2, c3, c4, final],
        "drop": [inner, c1, c3, c4, final],
        "final-twice": [inner, c1, c2, c3, c4, final, final],
        "final-early": [inner, c1, c2, c3, final],
    }
    for name, order in variants.items():
        assert isinstance(refused(pad(head + b"".join(order))), AuthenticationFailed), name
    # Without its inner header, the first record is a full chunk: over that record's limit.
    assert isinstance(refused(pad(head + b"".join([c1, c2, c3, c4, final]))), FrameTooLarge)
    assert isinstance(refused(pad(head + b"".join([c4, c1, final]))), AuthenticationFailed)


def test_header_swapped_between_two_envelopes_is_refused() -> None:
    fixed = lambda n: bytes([1]) * n  # noqa: E731 - even with the same file key
    meta = meta_for(ALICE, [BOB], [5])
    card = [BOB.card(1, name="B")]
    first = b"".join(seal(ALICE, card, meta, [b"first"], rng=fixed))
    second = b"".join(seal(ALICE, card, meta, [b"other"], rng=fixed))
    head1, records1 = split(first)
    head2, records2 = split(second)
    assert isinstance(refused(pad(head2 + b"".join(records1))), AuthenticationFailed)
    assert isinstance(refused(pad(head1 + b"".join(records2))), AuthenticationFailed)
    mixed = head1 + records1[0] + records2[1] + records1[2]
    assert isinstance(refused(pad(mixed)), AuthenticationFailed)


def forge(
    doc_keys: Sequence[bytes],
    inner: bytes,
    records: Iterable[tuple[bytes, int]],
    *,
    rng: Callable[[int], bytes] | None = None,
) -> tuple[_StreamWriter, bytes]:
    """An envelope with a valid record stream and whatever records a forger wants."""
    writer = _StreamWriter(doc_keys, rng or (lambda n: bytes([9]) * n))
    body = writer.head + writer.record(inner)
    for plaintext, tag in records:
        body += writer.record(plaintext, tag)
    return writer, pad(body)


def signed_trailer(
    signer: LocalIdentity, header_hash: bytes, inner: bytes, contents: Sequence[bytes]
) -> bytes:
    hashes = [hashlib.sha256(c).digest() for c in contents]
    signature = signer.identity.sign(LABEL_SIGNATURE, envelope_digest(header_hash, inner, hashes))
    return codec.pack({"hashes": hashes, "sig": signature})


def forge_signed(
    signer: LocalIdentity,
    meta: DocumentMeta,
    doc_keys: Sequence[bytes],
    contents: Sequence[bytes],
    records: Callable[[bytes], list[tuple[bytes, int]]] | None = None,
    *,
    commit_to: bytes | None = None,
) -> bytes:
    """A correctly signed envelope whose record list ``records(trailer)`` may be wrong."""
    inner = meta.to_wire()
    writer = _StreamWriter(doc_keys, lambda n: bytes([9]) * n, commit_to=commit_to)
    trailer = signed_trailer(signer, writer.header_hash, inner, contents)
    data = b"".join(contents)
    default = [(data[i : i + CHUNK], TAG_MESSAGE) for i in range(0, len(data), CHUNK)]
    default.append((trailer, TAG_FINAL))
    body = writer.head + writer.record(inner)
    for plaintext, tag in records(trailer) if records else default:
        body += writer.record(plaintext, tag)
    return pad(body)


def test_forge_helper_makes_envelopes_the_reader_accepts() -> None:
    meta = meta_for(ALICE, [BOB], [10])
    envelope = forge_signed(ALICE, meta, [BOB.doc_public, ALICE.doc_public], [b"0123456789"])
    events, files = read_all(envelope, BOB)
    assert files == {0: b"0123456789"}
    assert isinstance(events[-1], Verified)


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(lambda t: [(b"01234", TAG_MESSAGE), (t, TAG_FINAL)], id="content-short"),
        pytest.param(
            lambda t: [(b"0123456789", TAG_MESSAGE), (b"x", TAG_MESSAGE), (t, TAG_FINAL)],
            id="content-long",
        ),
        pytest.param(lambda t: [(b"0123456789", TAG_FINAL)], id="final-carrying-content"),
        pytest.param(lambda t: [(t, TAG_FINAL)], id="final-while-content-due"),
        pytest.param(lambda t: [(b"0123456789", TAG_MESSAGE), (t, TAG_MESSAGE)], id="no-final"),
        pytest.param(
            lambda t: [(b"0123456789", TAG_MESSAGE), (t, TAG_FINAL), (t, TAG_FINAL)],
            id="two-finals",
        ),
    ],
)
def test_structural_forgeries_with_a_valid_signature_are_refused(
    records: Callable[[bytes], list[tuple[bytes, int]]],
) -> None:
    meta = meta_for(ALICE, [BOB], [10])
    keys = [BOB.doc_public, ALICE.doc_public]
    envelope = forge_signed(ALICE, meta, keys, [b"0123456789"], records)
    assert isinstance(refused(envelope), AuthenticationFailed)


def test_a_missing_final_record_is_refused() -> None:
    meta = meta_for(ALICE, [BOB], [10])
    keys = [BOB.doc_public, ALICE.doc_public]
    envelope = forge_signed(ALICE, meta, keys, [b"0123456789"], lambda t: [(b"0123456789", 0)])
    # The padding's zeros are read where the trailer's length should be.
    assert isinstance(refused(envelope), MalformedMessage)
    assert isinstance(refused(envelope[: unpadded_size(envelope)]), AuthenticationFailed)


def test_inner_header_as_final_record_is_refused() -> None:
    meta = meta_for(ALICE, [BOB], [])
    writer = _StreamWriter([BOB.doc_public, ALICE.doc_public], bytes)
    envelope = pad(writer.head + writer.record(meta.to_wire(), TAG_FINAL))
    assert isinstance(refused(envelope), AuthenticationFailed)


def test_wrong_hash_in_trailer_is_refused() -> None:
    meta = meta_for(ALICE, [BOB], [10])
    keys = [BOB.doc_public, ALICE.doc_public]

    def wrong_hash(trailer: bytes) -> list[tuple[bytes, int]]:
        fields = codec.unpack(trailer)
        fields["hashes"] = [hashlib.sha256(b"something else").digest()]
        return [(b"0123456789", TAG_MESSAGE), (codec.pack(fields), TAG_FINAL)]

    assert isinstance(
        refused(forge_signed(ALICE, meta, keys, [b"0123456789"], wrong_hash)), AuthenticationFailed
    )


def test_signature_by_another_key_is_refused() -> None:
    meta = meta_for(ALICE, [BOB], [10])  # claims to be from Alice
    envelope = forge_signed(MALLORY, meta, [BOB.doc_public, MALLORY.doc_public], [b"0123456789"])
    assert isinstance(refused(envelope), AuthenticationFailed)


def test_surreptitious_forwarding_is_refused() -> None:
    """Bob re-encrypts Alice's signed letter to Carol, keeping Alice's signature."""
    letter = b"Resultats confidentiels pour Bob"
    envelope, meta = seal_bytes([letter], ALICE, [BOB])
    verified = open_envelope([envelope], BOB)
    original_trailer = codec.pack({"hashes": list(verified.file_hashes), "sig": verified.signature})
    to_carol = [CAROL.doc_public, BOB.doc_public]
    # 1. Inner header unchanged (Bob listed): Carol is not a recipient.
    _, forwarded = forge(
        to_carol, verified.inner_header, [(letter, TAG_MESSAGE), (original_trailer, TAG_FINAL)]
    )
    assert isinstance(refused(forwarded, CAROL), AuthenticationFailed)
    # 2. Inner header rewritten to name Carol: Alice's signature no longer matches.
    as_carol = dataclasses.replace(meta, recipients=(CAROL.public,)).to_wire()
    _, rewritten = forge(to_carol, as_carol, [(letter, TAG_MESSAGE), (original_trailer, TAG_FINAL)])
    assert isinstance(refused(rewritten, CAROL), AuthenticationFailed)
    # 3. Even a validly signed envelope is refused by someone it does not name:
    #    the recipient check does not depend on the signature.
    misaddressed = forge_signed(ALICE, meta, [CAROL.doc_public, ALICE.doc_public], [letter])
    assert isinstance(refused(misaddressed, CAROL), AuthenticationFailed)
    assert isinstance(refused(misaddressed, BOB), AuthenticationFailed)  # no key for Bob
    assert open_envelope([misaddressed], ALICE).meta == meta  # the sender's own copy opens


def test_a_non_recipient_cannot_open() -> None:
    envelope = small_envelope()
    assert isinstance(refused(envelope, CAROL), AuthenticationFailed)
    assert isinstance(refused(envelope, MALLORY), AuthenticationFailed)


def test_check_sender_refusal_is_authentication_failed() -> None:
    envelope = small_envelope()

    def unknown(sender: PublicIdentity) -> None:
        assert sender == ALICE.public
        raise KeyError("not a paired peer")

    error = refused(envelope, check_sender=unknown)
    assert isinstance(error, AuthenticationFailed)
    assert isinstance(error.__cause__, KeyError)
    seen: list[PublicIdentity] = []
    read_all(envelope, BOB, check_sender=seen.append)
    assert seen == [ALICE.public]
    # Our own sent copy does not go through check_sender.
    read_all(envelope, ALICE, check_sender=unknown)


def test_key_count_must_match_recipients() -> None:
    meta = meta_for(ALICE, [BOB], [3])
    keys = [BOB.doc_public, ALICE.doc_public, CAROL.doc_public]
    assert isinstance(refused(forge_signed(ALICE, meta, keys, [b"abc"])), MalformedMessage)


# --- quarantine and verify-only ---------------------------------------------------


def open_to_quarantine(envelope: bytes, me: LocalIdentity) -> dict[int, bytes] | None:
    """What a careful caller does: plaintext goes to quarantine, released only if verified."""
    quarantine: dict[int, list[bytes]] = {}
    try:
        open_envelope([envelope], me, lambda i, d: quarantine.setdefault(i, []).append(d))
    except RemoteProtocolError:
        quarantine.clear()  # discard everything: nothing unverified is released
        return None
    return {i: b"".join(parts) for i, parts in quarantine.items()}


def test_open_envelope_raises_after_plaintext_so_the_caller_must_discard() -> None:
    content = payload(2 * CHUNK, seed=4)
    envelope = seal_bytes([content])[0]
    assert open_to_quarantine(envelope, BOB) == {0: content}
    tampered = bytearray(envelope)
    tampered[-3] ^= 1  # inside the final record's MAC
    pieces = [bytes(tampered[i : i + 10_000]) for i in range(0, len(tampered), 10_000)]
    sink_calls: list[int] = []
    with pytest.raises(AuthenticationFailed):
        open_envelope(pieces, BOB, lambda i, d: sink_calls.append(len(d)))
    assert sum(sink_calls) >= CHUNK  # by design the sink saw unverified data ...
    assert open_to_quarantine(bytes(tampered), BOB) is None  # ... which the caller discards


def test_verify_only_mode_never_emits_content() -> None:
    content = payload(3 * CHUNK + 1)
    envelope = seal_bytes([content])[0]
    events, files = read_all(envelope, BOB, want_plaintext=False)
    assert files == {}
    assert [type(e) for e in events] == [MetaReceived, Verified]
    tampered = bytearray(envelope)
    tampered[len(envelope) // 2] ^= 1
    reader = EnvelopeReader(BOB, want_plaintext=False)
    seen: list[Any] = []

    def read() -> None:
        for start in range(0, len(tampered), 4096):
            seen.extend(reader.feed(tampered[start : start + 4096]))

    with pytest.raises(AuthenticationFailed):
        read()
    assert [type(e) for e in seen] == [MetaReceived]


# --- shape and limits -----------------------------------------------------------------


def test_not_an_envelope_and_other_versions() -> None:
    envelope = small_envelope()
    assert isinstance(refused(b"GIF89a..."), MalformedMessage)
    reader = EnvelopeReader(BOB)
    with pytest.raises(MalformedMessage):
        reader.feed(b"X")  # the first wrong byte is enough
    assert isinstance(refused(b"PLIENV1\n" + envelope[8:]), VersionMismatch)
    head, records = split(envelope)
    header = codec.unpack(head[12:])
    for key, value, error in (
        ("v", 1, VersionMismatch),
        ("chunk", 4096, MalformedMessage),
        ("commit", b"short", MalformedMessage),
        ("keys", [], MalformedMessage),
        ("keys", [b"x" * 80] * (limits.MAX_RECIPIENTS + 2), FrameTooLarge),
        ("extra", 1, MalformedMessage),
    ):
        changed = codec.pack({**header, key: value})
        forged = pad(MAGIC + len(changed).to_bytes(4, "big") + changed + b"".join(records))
        assert isinstance(refused(forged), error), key


def test_lengths_are_checked_before_buffering() -> None:
    reader = EnvelopeReader(BOB)
    with pytest.raises(FrameTooLarge):
        reader.feed(MAGIC + (limits.MAX_ENVELOPE_HEADER + 1).to_bytes(4, "big"))
    head, records = split(small_envelope())
    for position, limit in ((0, limits.MAX_INNER_HEADER), (1, CHUNK)):
        reader = EnvelopeReader(BOB)
        reader.feed(head + b"".join(records[:position]))
        with pytest.raises(FrameTooLarge):
            reader.feed((limit + limits.CHUNK_OVERHEAD + 1).to_bytes(4, "big"))
    reader = EnvelopeReader(BOB)
    reader.feed(head)
    with pytest.raises(MalformedMessage):
        reader.feed((limits.CHUNK_OVERHEAD - 1).to_bytes(4, "big"))
    reader = EnvelopeReader(BOB)
    with pytest.raises(MalformedMessage):
        reader.feed(MAGIC + bytes(4))  # an empty header


def test_buffering_is_bounded_by_one_record() -> None:
    envelope = multi_record()
    reader = EnvelopeReader(BOB)
    for start in range(0, len(envelope), 1000):
        reader.feed(envelope[start : start + 1000])
        assert len(reader._buffer) <= CHUNK + limits.CHUNK_OVERHEAD
    reader.close()


# --- seal argument checks -----------------------------------------------------------


def test_seal_refuses_a_source_of_the_wrong_size() -> None:
    meta = meta_for(ALICE, [BOB], [10, 5])
    card = [BOB.card(1, name="B")]
    with pytest.raises(LocalProtocolError, match="shorter"):
        list(seal(ALICE, card, meta, [b"0123456789", b"1234"]))
    with pytest.raises(LocalProtocolError, match="longer"):
        list(seal(ALICE, card, meta, [b"0123456789X", b"12345"]))
    with pytest.raises(LocalProtocolError, match="longer"):
        list(seal(ALICE, card, meta, [iter([b"01234", b"56789", b"!"]), b"12345"]))
    with pytest.raises(LocalProtocolError):
        list(seal(ALICE, card, meta, [[b"0123456789"], ["text"]]))  # type: ignore[list-item]


def test_seal_refuses_mismatched_sender_recipients_and_sources() -> None:
    meta = meta_for(ALICE, [BOB, CAROL], [1])
    cards = [BOB.card(1, name="B"), CAROL.card(1, name="C")]
    with pytest.raises(LocalProtocolError):
        seal(MALLORY, cards, meta, [b"x"])
    with pytest.raises(LocalProtocolError):
        seal(ALICE, cards[:1], meta, [b"x"])
    with pytest.raises(LocalProtocolError):
        seal(ALICE, [cards[0], MALLORY.card(1, name="M")], meta, [b"x"])
    with pytest.raises(LocalProtocolError):
        seal(ALICE, cards, meta, [b"x", b"y"])
    # Recipient cards may come in any order.
    reversed_cards = list(reversed(cards))
    envelope = b"".join(seal(ALICE, reversed_cards, meta, [b"x"]))
    assert open_envelope([envelope], CAROL).meta == meta


# --- DocumentMeta ------------------------------------------------------------------------


def test_document_meta_round_trip_and_immutability() -> None:
    meta = meta_for(ALICE, [BOB, CAROL], [1, 2], kind="prescription")
    assert DocumentMeta.from_wire(meta.to_wire()) == meta
    assert hash(meta) == hash(DocumentMeta.from_wire(meta.to_wire()))
    with pytest.raises(TypeError):
        meta.metadata["patient"] = "someone else"  # type: ignore[index]
    listed = dataclasses.replace(meta, recipients=[BOB.public], files=[])  # type: ignore[arg-type]
    assert listed.recipients == (BOB.public,)
    assert listed.files == ()
    assert set(KINDS) == {"letter", "prescription", "report", "file"}
    assert len(new_document_id()) == 16


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../etc/passwd", "a/b", "a\\b", "tab\there", "nul\x00", "x" * 600]
)
def test_file_names_must_be_plain(name: str) -> None:
    with pytest.raises(MalformedMessage):
        FileEntry(name, 1)


def test_document_meta_limits() -> None:
    base = meta_for(ALICE, [BOB], [1])
    bad: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"document_id": b"short"}, MalformedMessage),
        ({"created_at": -1}, MalformedMessage),
        ({"kind": "invoice"}, MalformedMessage),
        ({"recipients": ()}, MalformedMessage),
        ({"recipients": (BOB.public, BOB.public)}, MalformedMessage),
        (
            {"recipients": tuple(person(100 + i).public for i in range(limits.MAX_RECIPIENTS + 1))},
            FrameTooLarge,
        ),
        ({"files": (FileEntry("a", 1),) * (limits.MAX_FILES + 1)}, FrameTooLarge),
        ({"files": (FileEntry("a", limits.MAX_DOCUMENT_SIZE), FileEntry("b", 1))}, FrameTooLarge),
        ({"metadata": {str(i): "" for i in range(limits.MAX_MAP_LEN + 1)}}, FrameTooLarge),
        ({"metadata": {"": "x"}}, MalformedMessage),
        ({"metadata": {"note": "x" * (limits.MAX_TEXT_FIELD + 1)}}, MalformedMessage),
        ({"metadata": {"note": "line\nbreak"}}, MalformedMessage),
    ]
    for change, error in bad:
        with pytest.raises(error):
            dataclasses.replace(base, **change)
    with pytest.raises(MalformedMessage):
        FileEntry("a", -1)
    with pytest.raises(MalformedMessage):
        FileEntry("a", 1, "not a media type")
    # 64 files with long names do not fit in the inner header.
    crowded = dataclasses.replace(
        base, files=tuple(FileEntry(f"{i}" + "n" * 500, 1) for i in range(limits.MAX_FILES))
    )
    with pytest.raises(FrameTooLarge):
        crowded.to_wire()


def test_document_meta_from_wire_is_strict() -> None:
    fields = codec.unpack(meta_for(ALICE, [BOB], [1]).to_wire())
    for change in (
        {"v": 1},
        {"extra": 1},
        {"files": [{"name": "a", "size": 1}]},
        {"recipients": [b"short"]},
        {"recipients": ["text"]},
        {"meta": {"k": 1}},
        {"created": True},
    ):
        with pytest.raises(RemoteProtocolError):
            DocumentMeta.from_wire(codec.pack({**fields, **change}))


# --- memory -------------------------------------------------------------------------


def test_memory_stays_flat_for_64_mib() -> None:
    """Seal from a generator straight into a reader: peak traced memory stays small."""
    size = 64 * 1024 * 1024
    block = payload(1024 * 1024, seed=5)
    meta = meta_for(ALICE, [BOB], [size])

    def source() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    received = 0
    tracemalloc.start()
    try:
        reader = EnvelopeReader(BOB)
        for piece in seal(ALICE, [BOB.card(1, name="B")], meta, [source()]):
            for event in reader.feed(piece):
                if isinstance(event, Content):
                    received += len(event.data)
        reader.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 8 * 1024 * 1024, peak  # measured: about 3.6 MiB


# --- property tests -----------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.booleans())
def test_reader_only_raises_remote_protocol_errors(data: bytes, with_magic: bool) -> None:
    reader = EnvelopeReader(BOB)
    try:
        reader.feed(MAGIC + data if with_magic else data)
        reader.close()
    except RemoteProtocolError:
        pass


SMALL = small_envelope()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_envelopes_are_refused(data: st.DataObject) -> None:
    envelope = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(envelope) - 1))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "replace":
            envelope[position] = data.draw(st.integers(0, 255))
        elif action == "insert":
            envelope.insert(position, data.draw(st.integers(0, 255)))
        else:
            del envelope[position]
    reader = EnvelopeReader(BOB)
    try:
        reader.feed(bytes(envelope))
        reader.close()
    except RemoteProtocolError:
        return
    assert bytes(envelope) == SMALL  # only the unchanged envelope may verify


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(st.binary(max_size=500) | msgpack_values.map(codec.pack))
def test_document_meta_from_wire_only_raises_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        DocumentMeta.from_wire(data)


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "chunk", "commit", "keys", "x"]), msgpack_values))
def test_header_like_maps_only_raise_remote_errors(header: dict[str, Any]) -> None:
    packed = codec.pack(header)
    check_parses_or_refuses(
        EnvelopeReader(BOB).feed, MAGIC + len(packed).to_bytes(4, "big") + packed
    )


if __name__ == "__main__" and "--regenerate" in sys.argv:
    regenerate_golden()
    print(f"wrote {GOLDEN_BIN} and {GOLDEN_JSON}")
