"""protocol/_aegis.py is libsodium's AEGIS-256 without PyNaCl's copies: the same bytes as
PyNaCl's public AEAD functions, byte for byte, and the same refusals."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl import bindings
from nacl.exceptions import CryptoError

from protocol import _aegis

KEY, NONCE = bytes(range(32)), bytes(range(32, 64))
SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 255, 65536, 65536 + 17, 1024 * 1024 + 1]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ad", [None, b"", b"the header hash"])
def test_sealing_matches_pynacl_byte_for_byte(size: int, ad: bytes | None) -> None:
    message = os.urandom(size)
    expected = bindings.crypto_aead_aegis256_encrypt(message, ad, NONCE, KEY)
    assert bytes(_aegis.encrypt(message, ad, NONCE, KEY)) == expected
    assert bytes(_aegis.encrypt(bytearray(message), ad, NONCE, KEY)) == expected
    in_place = bytearray(message) + bytearray(_aegis.TAG_SIZE)
    view = memoryview(in_place)
    _aegis.encrypt_into(view, view[:size], ad, NONCE, KEY)
    assert bytes(in_place) == expected


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ad", [None, b"the header hash"])
def test_opening_matches_pynacl_from_any_slice(size: int, ad: bytes | None) -> None:
    message = os.urandom(size)
    sealed = bindings.crypto_aead_aegis256_encrypt(message, ad, NONCE, KEY)
    assert bindings.crypto_aead_aegis256_decrypt(sealed, ad, NONCE, KEY) == message
    assert bytes(_aegis.decrypt(sealed, ad, NONCE, KEY)) == message
    framed = memoryview(b"\x02" + sealed + b"after")[1 : 1 + len(sealed)]
    assert bytes(_aegis.decrypt(framed, ad, NONCE, KEY)) == message


def test_what_pynacl_refuses_is_refused() -> None:
    sealed = bytearray(bindings.crypto_aead_aegis256_encrypt(b"lettre", b"ad", NONCE, KEY))
    sealed[3] ^= 1
    for opener in (bindings.crypto_aead_aegis256_decrypt, _aegis.decrypt):
        with pytest.raises(CryptoError):
            opener(bytes(sealed), b"ad", NONCE, KEY)
    good = bindings.crypto_aead_aegis256_encrypt(b"lettre", b"ad", NONCE, KEY)
    with pytest.raises(CryptoError):
        _aegis.decrypt(good, b"other ad", NONCE, KEY)
    with pytest.raises(CryptoError):
        _aegis.decrypt(good, b"ad", bytes(32), KEY)
    with pytest.raises(CryptoError):
        _aegis.decrypt(good[: _aegis.TAG_SIZE - 1], b"ad", NONCE, KEY)
    with pytest.raises(ValueError, match="32-byte"):
        _aegis.decrypt(good, b"ad", NONCE, KEY[:31])
    with pytest.raises(ValueError, match="plus the tag"):
        _aegis.encrypt_into(memoryview(bytearray(40)), b"lettre", None, NONCE, KEY)
    with pytest.raises(ValueError, match="plus the tag"):
        _aegis.encrypt_into(memoryview(bytes(38)), b"lettre", None, NONCE, KEY)


@given(st.binary(max_size=300))
def test_any_bytes_open_or_raise(data: bytes) -> None:
    with pytest.raises(CryptoError):
        _aegis.decrypt(data, None, NONCE, KEY)
