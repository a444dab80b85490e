"""Signed receipts: known answers, round trips, every way verification must fail."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import VerifyKey

from protocol import (
    RECEIPT_STATUSES,
    AuthenticationFailed,
    LocalProtocolError,
    MalformedMessage,
    Receipt,
    RemoteProtocolError,
    VersionMismatch,
    codec,
    is_receipt_status,
    limits,
)
from tests.protocol.people import ALICE, BOB, CAROL, DIGEST, DOC, NOW, receipt


def verify(r: Receipt, **changes: object) -> None:
    expected: dict[str, object] = {
        "recipient": BOB.public,
        "sender": ALICE.public,
        "document_id": DOC,
        "envelope_digest": DIGEST,
        "now": NOW,
    }
    expected.update(changes)
    r.verify(**expected)  # type: ignore[arg-type]


def test_known_answer() -> None:
    """Ed25519 is deterministic: the exact signature and wire bytes are pinned."""
    r = receipt()
    assert r.signature.hex() == (
        "12d9701bdc16835e7682dffda9e65f7d8a89e06812c9051d987ac976a858a6d3"
        "cc47880f9b78fe095551a01c972153b4efbf6cc3e7abe5cd0b71863e2620b705"
    )
    assert r.to_wire().hex() == (
        "88a17601a3646f63c410000102030405060708090a0b0c0d0e0fa6646967657374c420"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3fa673656e"
        "646572c42043a72e714401762df66b68c26dfbdf2682aaec9f2474eca4613e424a0fbafd"
        "3ca9726563697069656e74c42020828bf5c5bdcacb684863336c202fb5599da48be55966"
        "15742170705beca9f7a6737461747573a964656c697665726564a474696d65ce69248100"
        "a3736967c44012d9701bdc16835e7682dffda9e65f7d8a89e06812c9051d987ac976a858"
        "a6d3cc47880f9b78fe095551a01c972153b4efbf6cc3e7abe5cd0b71863e2620b705"
    )
    rejected = receipt("rejected:unknown-patient")
    assert rejected.signature.hex() == (
        "e76b708551ed50557dc45f46107feba8170fd9a606f9f62c388e2a5e6b87488f"
        "08f3cdf2caf52085b4830105bf18b8ae2eeca082dfeebb149550c6d36b122d04"
    )


def test_signed_bytes_follow_the_documented_layout() -> None:
    """Rebuild the signed message from the spec and check it with plain PyNaCl."""
    r = receipt("read")
    label = b"pli/1/receipt"
    message = (
        bytes([len(label)])
        + label
        + DOC
        + DIGEST
        + ALICE.public.key
        + BOB.public.key
        + bytes([4])
        + b"read"
        + NOW.to_bytes(8, "big")
    )
    VerifyKey(BOB.public.key).verify(message, r.signature)


@pytest.mark.parametrize("status", [*RECEIPT_STATUSES, "rejected:unknown-patient", "rejected:x"])
def test_round_trip(status: str) -> None:
    r = receipt(status)
    parsed = Receipt.from_wire(r.to_wire())
    assert parsed == r
    verify(parsed)
    assert parsed.rejected == status.startswith("rejected:")
    assert parsed.reject_code == (status[9:] if parsed.rejected else None)


def test_old_receipts_and_small_skew_are_fine() -> None:
    verify(receipt(now=NOW - 10 * 365 * 86400))  # evidence kept for years
    verify(receipt(now=NOW + limits.MAX_CLOCK_SKEW))


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": CAROL.public},
        {"sender": CAROL.public},
        {"document_id": bytes(16)},
        {"envelope_digest": bytes(32)},
        {"now": NOW - limits.MAX_CLOCK_SKEW - 1},  # the receipt is from the future
        {"max_skew": -1},
    ],
)
def test_verify_refuses_a_receipt_about_something_else(changes: dict[str, object]) -> None:
    with pytest.raises(AuthenticationFailed):
        verify(receipt(), **changes)


def test_verify_refuses_altered_or_foreign_signatures() -> None:
    r = receipt()
    changes: tuple[tuple[str, Any], ...] = (
        ("status", "read"),
        ("time", NOW - 1),
        ("signature", bytes(64)),
        ("signature", bytes([r.signature[0] ^ 1]) + r.signature[1:]),
    )
    for field, value in changes:
        with pytest.raises(AuthenticationFailed):
            verify(dataclasses.replace(r, **{field: value}))
    # Carol signs a receipt that names Bob as recipient: not Bob's signature.
    forged = Receipt.create(
        CAROL.identity, document_id=DOC, envelope_digest=DIGEST, sender=ALICE.public, now=NOW
    )
    with pytest.raises(AuthenticationFailed):
        verify(dataclasses.replace(forged, recipient=BOB.public))
    # A receipt honestly signed by Carol is not Bob's receipt.
    with pytest.raises(AuthenticationFailed):
        verify(forged)
    verify(forged, recipient=CAROL.public)


@pytest.mark.parametrize(
    "status",
    ["", "Delivered", "rejected:", "rejected:UPPER", "rejected:" + "x" * 33, "rejected:a b", "ok"],
)
def test_bad_statuses(status: str) -> None:
    assert not is_receipt_status(status)
    with pytest.raises(LocalProtocolError):
        receipt(status)


def test_create_refuses_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        Receipt.create(
            BOB.identity, document_id=b"x", envelope_digest=DIGEST, sender=ALICE.public, now=NOW
        )
    with pytest.raises(LocalProtocolError):
        receipt(now=-1)


def test_from_wire_is_strict() -> None:
    fields = codec.unpack(receipt().to_wire())
    for change, error in (
        ({"v": 2}, VersionMismatch),
        ({"extra": 1}, MalformedMessage),
        ({"doc": b"short"}, MalformedMessage),
        ({"digest": bytes(31)}, MalformedMessage),
        ({"sender": bytes(31)}, MalformedMessage),
        ({"status": "maybe"}, MalformedMessage),
        ({"time": -5}, MalformedMessage),
        ({"time": True}, MalformedMessage),
        ({"sig": bytes(63)}, MalformedMessage),
    ):
        with pytest.raises(error):
            Receipt.from_wire(codec.pack({**fields, **change}))
    without_sig = {k: v for k, v in fields.items() if k != "sig"}
    with pytest.raises(MalformedMessage):
        Receipt.from_wire(codec.pack(without_sig))


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=30)
    | st.binary(max_size=70),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
receipt_keys = ["v", "doc", "digest", "sender", "recipient", "status", "time", "sig"]


@settings(deadline=None)
@given(
    st.binary(max_size=400)
    | values.map(codec.pack)
    | st.dictionaries(st.sampled_from(receipt_keys), values).map(codec.pack)
)
def test_from_wire_only_raises_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        Receipt.from_wire(data)
