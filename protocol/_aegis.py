"""AEGIS-256 from libsodium without PyNaCl's copies (frames and envelope records).

PyNaCl's ``crypto_aead_aegis256_encrypt``/``_decrypt`` take ``bytes`` only,
allocate a zero-filled output buffer and then copy it into a new ``bytes``: for
a 1 MiB frame, a copy and a memset on top of the cipher's own pass, and a fresh
allocation each time. Here the same two libsodium functions are called through
PyNaCl's own cffi binding (``nacl._sodium``, the library PyNaCl loaded): the
input is any buffer (a slice of a frame, no copy), the output goes into a
buffer the caller gives, or a new one that is not zero-filled.

It is still libsodium through PyNaCl, same functions, same bytes
(``tests/protocol/test_aegis.py`` checks every function against PyNaCl's public
API byte for byte). ``nacl._sodium`` is not a public module: if a PyNaCl
release renames or drops it, importing this module fails at start; the fix is
to go back to ``nacl.bindings.crypto_aead_aegis256_encrypt``/``_decrypt``
(slower, same results), see docs/protocol.md §6.3.
"""

from __future__ import annotations

from typing import Final

from nacl import bindings
from nacl._sodium import ffi, lib
from nacl.exceptions import CryptoError

KEY_SIZE: Final[int] = bindings.crypto_aead_aegis256_KEYBYTES
NONCE_SIZE: Final[int] = bindings.crypto_aead_aegis256_NPUBBYTES
TAG_SIZE: Final[int] = bindings.crypto_aead_aegis256_ABYTES

#: Output buffers that are not zero-filled first: every byte is written by the cipher.
_new = ffi.new_allocator(should_clear_after_alloc=False)

Buffer = bytes | bytearray | memoryview


def new_buffer(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes whose content is undefined."""
    return memoryview(ffi.buffer(_new("unsigned char[]", size)))


def _check(nonce: bytes, key: bytes) -> None:
    if len(nonce) != NONCE_SIZE or len(key) != KEY_SIZE:
        raise ValueError("AEGIS-256 takes a 32-byte nonce and a 32-byte key")


def encrypt_into(
    out: memoryview, message: Buffer, ad: bytes | None, nonce: bytes, key: bytes
) -> None:
    """Write ``ciphertext ‖ tag`` of ``message`` into ``out`` (exactly len + TAG_SIZE bytes).

    ``out`` may start where ``message`` starts (encryption in place)."""
    _check(nonce, key)
    length = len(message)
    if len(out) != length + TAG_SIZE or out.readonly:
        raise ValueError("the output of AEGIS-256 is the message's length plus the tag")
    written = ffi.new("unsigned long long *")
    res = lib.crypto_aead_aegis256_encrypt(
        ffi.from_buffer(out, require_writable=True),
        written,
        ffi.from_buffer(message),
        length,
        ad if ad else ffi.NULL,
        len(ad) if ad else 0,
        ffi.NULL,
        nonce,
        key,
    )
    if res != 0 or written[0] != len(out):
        raise CryptoError("Encryption failed.")


def encrypt(message: Buffer, ad: bytes | None, nonce: bytes, key: bytes) -> memoryview:
    """``ciphertext ‖ tag`` of ``message``, in a new buffer."""
    out = new_buffer(len(message) + TAG_SIZE)
    encrypt_into(out, message, ad, nonce, key)
    return out


def decrypt(ciphertext: Buffer, ad: bytes | None, nonce: bytes, key: bytes) -> memoryview:
    """The plaintext of ``ciphertext ‖ tag``, in a new buffer; ``CryptoError`` if it
    does not authenticate (then nothing of the plaintext is returned)."""
    _check(nonce, key)
    size = len(ciphertext)
    if size < TAG_SIZE:
        raise CryptoError("Decryption failed.")
    out = new_buffer(size - TAG_SIZE)
    written = ffi.new("unsigned long long *")
    res = lib.crypto_aead_aegis256_decrypt(
        ffi.from_buffer(out, require_writable=True),
        written,
        ffi.NULL,
        ffi.from_buffer(ciphertext),
        size,
        ad if ad else ffi.NULL,
        len(ad) if ad else 0,
        nonce,
        key,
    )
    if res != 0 or written[0] != len(out):
        raise CryptoError("Decryption failed.")
    return out
