"""Later receipt layers (integrated, not integrated, read): what a sender accepts, and refuses."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    AuthenticationFailed,
    LocalIdentity,
    LocalProtocolError,
    MalformedMessage,
    Receipt,
    ReplayDetected,
    SentDocument,
    accept_later_receipt,
    is_receipt_status,
    limits,
    not_integrated,
    receipt_layer,
)
from tests.fuzzing import check_parses_or_refuses
from tests.protocol.people import ALICE, BOB, CAROL, DIGEST, DOC, NOW, receipt

SENT = SentDocument(DOC, DIGEST, BOB.public, {})


def signed(status: str, *, by: LocalIdentity = BOB, now: int = NOW, doc: bytes = DOC) -> bytes:
    return receipt(status, by=by, now=now, doc=doc).to_wire()


def accept(wire: bytes, sent: SentDocument | None = SENT, peer: LocalIdentity = BOB) -> object:
    return accept_later_receipt(wire, peer=peer.public, me=ALICE.public, sent=sent, now=NOW)


@pytest.mark.parametrize(
    ("status", "layer"),
    [
        ("delivered", "delivered"),
        ("rejected:unknown-patient", "delivered"),
        ("integrated", "integrated"),
        ("not-integrated:902", "integrated"),
        ("read", "read"),
    ],
)
def test_every_status_has_one_layer(status: str, layer: str) -> None:
    assert receipt_layer(status) == layer
    wire = signed(status)
    assert Receipt.from_wire(wire).layer == layer


def test_integration_codes() -> None:
    assert not_integrated(902) == "not-integrated:902"
    assert Receipt.from_wire(signed("not-integrated:902")).integration_code == 902
    assert Receipt.from_wire(signed("integrated")).integration_code is None
    for bad in (
        "not-integrated:",
        "not-integrated:90",
        "not-integrated:9021",
        "not-integrated:x02",
    ):
        assert not is_receipt_status(bad)
    for code in (99, 1000, True):
        with pytest.raises(LocalProtocolError):
            not_integrated(code)
    with pytest.raises(LocalProtocolError):
        receipt_layer("seen")


@pytest.mark.parametrize("status", ["integrated", "not-integrated:902", "read"])
def test_a_later_receipt_is_accepted_once(status: str) -> None:
    wire = signed(status)
    receipt = accept(wire)
    assert isinstance(receipt, Receipt)
    assert receipt.status == status
    held = dataclasses.replace(SENT, held={receipt.layer: wire})
    assert accept(wire, held) is None  # the same bytes again: known, nothing to store


def test_an_unknown_layer_is_refused() -> None:
    """A delivery receipt comes only as the answer to an offer, never on its own."""
    with pytest.raises(MalformedMessage):
        accept(signed("delivered"))
    with pytest.raises(MalformedMessage):
        accept(signed("rejected:unknown-patient"))


def test_a_bad_signature_is_refused() -> None:
    receipt = Receipt.from_wire(signed("read"))
    for change in (
        {"signature": bytes(64)},
        {"status": "integrated"},  # the layer is signed: "read" cannot become "integrated"
        {"time": NOW - 1},
    ):
        with pytest.raises(AuthenticationFailed):
            accept(dataclasses.replace(receipt, **change).to_wire())


def test_a_receipt_for_an_unknown_document_is_refused() -> None:
    with pytest.raises(AuthenticationFailed):
        accept(signed("integrated"), sent=None)  # we sent no such document to that peer
    with pytest.raises(AuthenticationFailed):
        accept(signed("integrated", doc=bytes(16)))  # about another document than recorded
    other_digest = dataclasses.replace(SENT, envelope_digest=bytes(32))
    with pytest.raises(AuthenticationFailed):
        accept(signed("integrated"), other_digest)  # another version of the document


def test_a_receipt_from_the_wrong_peer_is_refused() -> None:
    # Carol's honest receipt, relayed by Bob: not Bob's word.
    with pytest.raises(AuthenticationFailed):
        accept(signed("read", by=CAROL))
    # Bob's receipt coming through Carol's session, about a document sent to Bob.
    with pytest.raises(AuthenticationFailed):
        accept(signed("read"), peer=CAROL)
    # A document sent to Carol, with a receipt signed by Carol but coming from Bob.
    to_carol = dataclasses.replace(SENT, recipient=CAROL.public)
    with pytest.raises(AuthenticationFailed):
        accept(signed("read", by=CAROL), to_carol)


def test_a_receipt_from_the_future_is_refused() -> None:
    with pytest.raises(AuthenticationFailed):
        accept(signed("read", now=NOW + limits.MAX_CLOCK_SKEW + 1))


def test_replays_are_refused() -> None:
    first_read = signed("read", now=NOW - 100)
    held = dataclasses.replace(SENT, held={"read": first_read})
    with pytest.raises(ReplayDetected):
        accept(signed("read", now=NOW), held)  # a second, different "read"
    integrated = signed("integrated", now=NOW - 50)
    held = dataclasses.replace(SENT, held={"integrated": integrated})
    # An old "could not integrate" shown again after the document was integrated.
    with pytest.raises(ReplayDetected):
        accept(signed("not-integrated:902", now=NOW - 60), held)
    with pytest.raises(ReplayDetected):
        accept(signed("integrated", now=NOW), held)


def test_integrated_may_follow_a_failure_not_precede_it() -> None:
    failed = signed("not-integrated:902", now=NOW - 60)
    held = dataclasses.replace(SENT, held={"integrated": failed})
    later = accept(signed("integrated", now=NOW), held)
    assert isinstance(later, Receipt)
    assert later.status == "integrated"
    with pytest.raises(ReplayDetected):  # signed before the failure: an older statement
        accept(signed("integrated", now=NOW - 61), held)
    with pytest.raises(ReplayDetected):  # a failure never replaces another failure
        accept(signed("not-integrated:903", now=NOW), held)


receipt_keys = ["v", "doc", "digest", "sender", "recipient", "status", "time", "sig"]


@settings(deadline=None)
@given(
    st.binary(max_size=400)
    | st.sampled_from(["integrated", "read", "not-integrated:902", "delivered"]).map(signed)
    | st.builds(
        lambda wire, at, byte: wire[:at] + bytes([byte]) + wire[at + 1 :],
        st.sampled_from([signed("integrated"), signed("read")]),
        st.integers(0, 240),
        st.integers(0, 255),
    ),
    st.sampled_from([{}, {"read": signed("read")}, {"integrated": b"\x00garbage"}]),
)
def test_any_bytes_are_accepted_or_raise_the_remote_error(
    data: bytes, held: dict[str, bytes]
) -> None:
    sent = dataclasses.replace(SENT, held=held)
    check_parses_or_refuses(lambda wire: accept(wire, sent), data)
