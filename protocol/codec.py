"""Strict msgpack: the only way bytes become structured values in pli/1.

``pack`` writes canonical msgpack (maps in the order given, bin for bytes, no
ext types). ``unpack`` decodes exactly one value from a bounded buffer and
rejects what pli never sends: ext types (timestamps included), non-str map
keys, repeated map keys, nesting past ``MAX_DEPTH``, and lengths past the limits. Any failure is a
``MalformedMessage`` or ``FrameTooLarge``; msgpack's own exceptions stay here.

The helpers at the bottom (``field``, ``as_bytes`` ...) turn a decoded map into
typed values for the ``from_wire`` constructors of message classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgpack

from . import limits
from .errors import FrameTooLarge, MalformedMessage

T = TypeVar("T")


def pack(value: Any) -> bytes:
    """Encode ``value`` (None, bool, int, float, str, bytes, list, dict[str, ...])."""
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True, strict_types=False, datetime=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedMessage(f"cannot encode value: {exc}") from exc
    return data


def _refuse_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage("msgpack ext types are not allowed")


def _map_without_repeats(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    # A repeated key would let two readers disagree on the value (first or last wins).
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedMessage("a msgpack map repeats a key")
    return result


def unpack(data: bytes, *, max_size: int = limits.MAX_MESSAGE) -> Any:
    """Decode exactly one msgpack value from ``data`` or raise ``RemoteProtocolError``."""
    if len(data) > max_size:
        raise FrameTooLarge(f"message of {len(data)} bytes is over the limit of {max_size}")
    unpacker = msgpack.Unpacker(
        raw=False,
        use_list=True,
        strict_map_key=True,
        max_buffer_size=max(max_size, 1),
        max_str_len=limits.MAX_STR_LEN,
        max_bin_len=limits.MAX_BIN_LEN,
        max_array_len=limits.MAX_ARRAY_LEN,
        max_map_len=limits.MAX_MAP_LEN,
        max_ext_len=0,
        ext_hook=_refuse_ext,
        object_pairs_hook=_map_without_repeats,
        timestamp=0,
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise MalformedMessage("truncated msgpack value") from exc
    except MalformedMessage:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        # msgpack reports bad data, limits and invalid UTF-8 as these.
        raise MalformedMessage(f"invalid msgpack: {exc.__class__.__name__}") from exc
    except Exception as exc:  # msgpack.FormatError, StackError, ExtraData, ...
        raise MalformedMessage(f"invalid msgpack: {exc.__class__.__name__}") from exc
    if unpacker.tell() != len(data):
        raise MalformedMessage("bytes after the msgpack value")
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """Depth and key checks, done iteratively so hostile nesting cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict) and depth > limits.MAX_DEPTH:
            raise MalformedMessage("msgpack value nested too deeply")
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise MalformedMessage("msgpack map keys must be strings")
                stack.append((child, depth + 1))


# --- typed access to decoded maps --------------------------------------------


def as_map(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} must be a map")
    return value


def field(mapping: Mapping[str, Any], key: str, kind: type[T], what: str) -> T:
    """``mapping[key]`` checked to be of ``kind`` (bool is not accepted as int)."""
    if key not in mapping:
        raise MalformedMessage(f"{what}: missing field {key!r}")
    value = mapping[key]
    if kind is int and isinstance(value, bool):
        raise MalformedMessage(f"{what}: field {key!r} must be an integer")
    if not isinstance(value, kind):
        raise MalformedMessage(f"{what}: field {key!r} has the wrong type")
    return value


def optional(mapping: Mapping[str, Any], key: str, kind: type[T], what: str) -> T | None:
    if mapping.get(key) is None:
        return None
    return field(mapping, key, kind, what)


def fixed_bytes(mapping: Mapping[str, Any], key: str, size: int, what: str) -> bytes:
    value = field(mapping, key, bytes, what)
    if len(value) != size:
        raise MalformedMessage(f"{what}: field {key!r} must be {size} bytes")
    return value


def text(mapping: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> str:
    """A short human text field: bounded, no control characters."""
    value = (
        field(mapping, key, str, what) if required else (optional(mapping, key, str, what) or "")
    )
    check_text(value, what)
    return value


def check_text(value: str, what: str, *, max_len: int = limits.MAX_TEXT_FIELD) -> None:
    if len(value) > max_len:
        raise MalformedMessage(f"{what}: text longer than {max_len} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise MalformedMessage(f"{what}: control characters are not allowed")


def uint(mapping: Mapping[str, Any], key: str, what: str) -> int:
    value = field(mapping, key, int, what)
    if value < 0 or value >= 2**63:
        raise MalformedMessage(f"{what}: field {key!r} out of range")
    return value
