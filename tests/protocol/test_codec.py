"""Strict msgpack: what decodes, what is refused, and that nothing else escapes."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import FrameTooLarge, MalformedMessage, codec, limits
from tests.fuzzing import check_parses_or_refuses


def test_round_trip_of_every_allowed_type() -> None:
    value = {"n": None, "b": True, "i": -3, "f": 1.5, "s": "é", "y": b"\x00", "l": [1, [2]]}
    assert codec.unpack(codec.pack(value)) == value


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb(msgpack.ExtType(5, b"x")),
        msgpack.packb(msgpack.Timestamp(1, 0), datetime=False),
        msgpack.packb({1: "int key"}),
        msgpack.packb({b"k": "bytes key"}, use_bin_type=True),
        msgpack.packb(1) + b"\x00",
        b"\xc1",
        b"\x92\x01",
        b"\x82\xa1a\x01\xa1a\x02",
    ],
    ids=[
        "ext",
        "timestamp",
        "int-key",
        "bytes-key",
        "trailing",
        "reserved-byte",
        "truncated",
        "repeated-key",
    ],
)
def test_refused_shapes(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        codec.unpack(data)


def test_depth_limit() -> None:
    value: list[object] = []
    for _ in range(limits.MAX_DEPTH):
        value = [value]
    with pytest.raises(MalformedMessage):
        codec.unpack(codec.pack(value))


def test_size_and_length_limits() -> None:
    with pytest.raises(FrameTooLarge):
        codec.unpack(b"\x00" * (limits.MAX_MESSAGE + 1))
    with pytest.raises(MalformedMessage):
        codec.unpack(codec.pack("x" * (limits.MAX_STR_LEN + 1)), max_size=10**6)
    with pytest.raises(MalformedMessage):
        codec.unpack(codec.pack(list(range(limits.MAX_ARRAY_LEN + 1))))
    # A header that claims a huge array without the bytes behind it.
    with pytest.raises(MalformedMessage):
        codec.unpack(b"\xdd\xff\xff\xff\xff")


def test_typed_field_access() -> None:
    decoded = codec.as_map(codec.unpack(codec.pack({"a": True, "t": "x\x07"})), "test")
    with pytest.raises(MalformedMessage):
        codec.field(decoded, "a", int, "test")  # bool is not an integer here
    with pytest.raises(MalformedMessage):
        codec.text(decoded, "t", "test")
    with pytest.raises(MalformedMessage):
        codec.field(decoded, "missing", str, "test")


@given(st.binary(max_size=512))
def test_any_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    check_parses_or_refuses(codec.unpack, data)
