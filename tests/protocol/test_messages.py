"""Control messages and frame types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import FrameTooLarge, MalformedMessage, limits, messages
from tests.fuzzing import check_parses_or_refuses

DOC = bytes(range(16))


@pytest.mark.parametrize(
    "message",
    [
        messages.Offer(DOC, 123),
        messages.Accept(DOC, 65536),
        messages.Delivered(DOC, b"receipt"),
        messages.Refuse(DOC, "busy", "try later"),
        messages.CardUpdate(b"card"),
        messages.Rekey(),
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
    with pytest.raises(MalformedMessage):
        messages.split_frame(b"\x09abc")
    with pytest.raises(MalformedMessage):
        messages.split_frame(b"")
    with pytest.raises(FrameTooLarge):
        messages.split_frame(b"\x02" * (limits.MAX_FRAME + 1))


def test_split_frame_is_a_view() -> None:
    kind, payload = messages.split_frame(b"\x02hello")
    assert kind is messages.FrameType.BULK
    assert bytes(payload) == b"hello"


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    for parse in (messages.decode, messages.split_frame):
        check_parses_or_refuses(parse, data)
