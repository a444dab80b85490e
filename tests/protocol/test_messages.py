"""Control messages and frame types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import FrameTooLarge, MalformedMessage, codec, limits, messages
from tests.fuzzing import check_parses_or_refuses

DOC = bytes(range(16))


@pytest.mark.parametrize(
    "message",
    [
        messages.Offer(DOC, 123),
        messages.Offer(DOC, limits.MAX_PUSHED_ENVELOPE, push=True),
        messages.Accept(DOC, 65536),
        messages.Delivered(DOC, b"receipt"),
        messages.Refuse(DOC, "busy", "try later"),
        messages.CardUpdate(b"card"),
        messages.Rekey(),
        messages.LaterReceipt(DOC, b"receipt"),
        messages.Noted(DOC, "integrated"),
        messages.Noted(DOC, "not-integrated:902"),
    ],
)
def test_round_trip(message: messages.Message) -> None:
    assert messages.decode(messages.encode(message)) == message


def test_refusals() -> None:
    with pytest.raises(MalformedMessage):
        messages.decode(b"\x81\xa1t\xa4nope")
    with pytest.raises(MalformedMessage):
        messages.decode(messages.encode(messages.Offer(b"short", 1)))
    with pytest.raises(FrameTooLarge):
        messages.decode(messages.encode(messages.Offer(DOC, 2**62)))
    with pytest.raises(FrameTooLarge):
        messages.decode(messages.encode(messages.LaterReceipt(DOC, bytes(4097))))
    with pytest.raises(FrameTooLarge):
        messages.decode(messages.encode(messages.LaterReceipt(DOC, b"")))
    with pytest.raises(MalformedMessage):
        messages.decode(messages.encode(messages.Noted(DOC, "seen")))


def test_a_push_is_a_letter_and_says_so_with_a_boolean() -> None:
    with pytest.raises(FrameTooLarge):
        messages.decode(messages.encode(messages.Offer(DOC, limits.MAX_PUSHED_ENVELOPE + 1, True)))
    with pytest.raises(MalformedMessage):
        messages.decode(codec.pack({"t": "offer", "id": DOC, "size": 10, "push": 1}))
    # An offer that does not push says nothing of it: the bytes of pli/2's first offers.
    plain = messages.encode(messages.Offer(DOC, 10))
    assert plain == codec.pack({"t": "offer", "id": DOC, "size": 10})
    assert messages.decode(codec.pack({"t": "offer", "id": DOC, "size": 10, "push": False})) == (
        messages.Offer(DOC, 10)
    )


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    check_parses_or_refuses(messages.decode, data)
