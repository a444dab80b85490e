"""Offline evidence: a verified envelope's signature checked without the envelope."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    AuthenticationFailed,
    DocumentMeta,
    Evidence,
    FileEntry,
    LocalIdentity,
    RemoteProtocolError,
    new_document_id,
    open_envelope,
    seal,
)

LETTER = "Cher confrère, je vous adresse Mme D. pour avis.\n".encode()
PDF = b"%PDF-1.7 fake attachment\n" * 100


def evidence() -> tuple[Evidence, LocalIdentity]:
    gp, cardiologist = LocalIdentity.generate(now=0), LocalIdentity.generate(now=0)
    meta = DocumentMeta(
        document_id=new_document_id(),
        created_at=1_700_000_000,
        kind="letter",
        sender=gp.public,
        recipients=(cardiologist.public,),
        files=(FileEntry("lettre.txt", len(LETTER)), FileEntry("ecg.pdf", len(PDF))),
        metadata={"subject": "Avis cardiologique", "patient_name": "DUPONT Marie"},
    )
    envelope = b"".join(seal(gp, [cardiologist.card(1, name="Dr B")], meta, [LETTER, PDF]))
    verified = open_envelope([envelope], cardiologist)
    return Evidence.of(verified), gp


def test_round_trip_and_verify() -> None:
    proof, gp = evidence()
    again = Evidence.from_wire(proof.to_wire())
    meta = again.verify()
    assert meta.sender == gp.public
    assert meta.metadata["subject"] == "Avis cardiologique"
    again.check_file(0, hashlib.sha256(LETTER).digest())
    again.check_file(1, hashlib.sha256(PDF).digest())


def test_a_changed_file_is_caught() -> None:
    proof, _ = evidence()
    with pytest.raises(AuthenticationFailed):
        proof.check_file(0, hashlib.sha256(LETTER + b" ").digest())
    with pytest.raises(AuthenticationFailed):
        proof.check_file(2, hashlib.sha256(LETTER).digest())


@pytest.mark.parametrize("field", ["header_hash", "inner_header", "file_hashes", "signature"])
def test_any_changed_part_fails(field: str) -> None:
    proof, _ = evidence()
    value = getattr(proof, field)
    if field == "file_hashes":
        changed: object = (bytes(32), *value[1:])
    else:
        flipped = bytearray(value)
        flipped[-1] ^= 1
        changed = bytes(flipped)
    changes: dict[str, Any] = {field: changed}
    with pytest.raises(RemoteProtocolError):
        dataclasses.replace(proof, **changes).verify()


def test_signature_by_another_key_fails() -> None:
    proof, _ = evidence()
    other, _ = evidence()
    with pytest.raises(RemoteProtocolError):
        dataclasses.replace(proof, signature=other.signature).verify()


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        Evidence.from_wire(data).verify()


def test_digest_is_what_receipts_refer_to() -> None:
    from protocol import Receipt

    proof, gp = evidence()
    meta = proof.verify()
    cardiologist = LocalIdentity.generate(now=0)
    receipt = Receipt.create(
        cardiologist.identity,
        document_id=meta.document_id,
        envelope_digest=proof.digest(),
        sender=gp.public,
        now=1_700_000_100,
    )
    receipt.verify(
        recipient=cardiologist.public,
        sender=gp.public,
        document_id=meta.document_id,
        envelope_digest=proof.digest(),
        now=1_700_000_100,
    )
    with pytest.raises(AuthenticationFailed):
        receipt.verify(
            recipient=cardiologist.public,
            sender=gp.public,
            document_id=meta.document_id,
            envelope_digest=bytes(32),
            now=1_700_000_100,
        )
