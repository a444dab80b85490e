"""The primitives pli/2 could use, measured the way pli calls them (``bench.envelope``).

Each AEAD seals and opens one buffer at a time through its Python binding, bytes
in and bytes out (the copies the binding makes are part of the cost), in 1 MiB
pieces (a pli/2 frame) and in 64 KiB pieces (an envelope record). Hashes run
over 1 MiB pieces. MB = 10^6 bytes of plaintext per second, median of 5 runs
after a warm-up, one thread.

Run by hand (it is also the ``primitives`` child of ``bench.envelope``)::

    .venv/bin/python -m bench.primitives
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import nacl.bindings as sodium
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MiB = 1024 * 1024
TOTAL = 256 * MiB
PIECES = (MiB, 64 * 1024)
Seal = Callable[[bytes, int], bytes]
Open = Callable[[bytes, int], bytes]


def _nacl(
    encrypt: Callable[..., bytes], decrypt: Callable[..., bytes], nonce_size: int, key: bytes
) -> tuple[Seal, Open]:
    def nonce(n: int) -> bytes:
        return n.to_bytes(8, "big") + bytes(nonce_size - 8)

    def seal(data: bytes, n: int) -> bytes:
        return encrypt(data, None, nonce(n), key)

    def open_(data: bytes, n: int) -> bytes:
        return decrypt(data, None, nonce(n), key)

    return seal, open_


def aeads() -> dict[str, tuple[Seal, Open]]:
    """Name → (seal, open) for every candidate, each under its own random key."""
    gcm = AESGCM(os.urandom(32))

    def gcm_seal(data: bytes, n: int) -> bytes:
        return gcm.encrypt(n.to_bytes(12, "big"), data, None)

    def gcm_open(data: bytes, n: int) -> bytes:
        return gcm.decrypt(n.to_bytes(12, "big"), data, None)

    return {
        "AEGIS-256 (PyNaCl)": _nacl(
            sodium.crypto_aead_aegis256_encrypt,
            sodium.crypto_aead_aegis256_decrypt,
            sodium.crypto_aead_aegis256_NPUBBYTES,
            os.urandom(32),
        ),
        "AEGIS-128L (PyNaCl)": _nacl(
            sodium.crypto_aead_aegis128l_encrypt,
            sodium.crypto_aead_aegis128l_decrypt,
            sodium.crypto_aead_aegis128l_NPUBBYTES,
            os.urandom(16),
        ),
        "ChaCha20-Poly1305-IETF (PyNaCl)": _nacl(
            sodium.crypto_aead_chacha20poly1305_ietf_encrypt,
            sodium.crypto_aead_chacha20poly1305_ietf_decrypt,
            sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES,
            os.urandom(32),
        ),
        "AES-256-GCM (cryptography)": (gcm_seal, gcm_open),
    }


def _rate(operation: Callable[[], None]) -> float:
    runs = []
    for _ in range(1 + 5):
        started = time.perf_counter()
        operation()
        runs.append(TOTAL / (time.perf_counter() - started) / 1e6)
    return statistics.median(runs[1:])


def measure_aead(seal: Seal, open_: Open, piece: int) -> tuple[float, float]:
    """(seal MB/s, open MB/s) over TOTAL bytes in pieces of ``piece`` bytes."""
    block = os.urandom(piece)
    count = TOTAL // piece
    sealed = [seal(block, n) for n in range(count)]

    def seal_all() -> None:
        for n in range(count):
            seal(block, n)

    def open_all() -> None:
        for n, data in enumerate(sealed):
            open_(data, n)

    return _rate(seal_all), _rate(open_all)


def measure_hashes() -> dict[str, float]:
    block = os.urandom(MiB)
    count = TOTAL // MiB
    makers: dict[str, Callable[[], Any]] = {
        "SHA-256 (hashlib)": hashlib.sha256,
        "BLAKE2b-256 (hashlib)": lambda: hashlib.blake2b(digest_size=32),
    }
    rates = {}
    for name, make in makers.items():

        def run(make: Callable[[], Any] = make) -> None:
            digest = make()
            for _ in range(count):
                digest.update(block)

        rates[name] = _rate(run)
    return rates


def measure() -> dict[str, object]:
    """Every figure, as JSON-friendly data."""
    rows = []
    for name, (seal, open_) in aeads().items():
        for piece in PIECES:
            sealed, opened = measure_aead(seal, open_, piece)
            rows.append({"name": name, "piece": piece, "seal": sealed, "open": opened})
    return {"aead": rows, "hash": measure_hashes()}


def table(result: dict[str, object]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| primitive | piece | seal MB/s | open MB/s |",
        "| --- | --- | --- | --- |",
    ]
    for row in result["aead"]:  # type: ignore[attr-defined]
        piece = "1 MiB" if row["piece"] == MiB else "64 KiB"
        lines.append(f"| {row['name']} | {piece} | {row['seal']:.0f} | {row['open']:.0f} |")
    for name, rate in result["hash"].items():  # type: ignore[attr-defined]
        lines.append(f"| {name} | 1 MiB | {rate:.0f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure()))
