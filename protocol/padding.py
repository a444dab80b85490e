"""Envelope size padding: Padmé, with a floor for short letters (pure arithmetic).

An envelope's size would otherwise tell an observer (on the wire, in a mailbox,
in a backup) the size of the letter to within a few bytes. pli/2 pads every
envelope with zero bytes to ``padded_size(n)``:

- below ``MIN_ENVELOPE_SIZE`` (16 KiB) every envelope becomes 16 KiB, so short
  letters and prescriptions all look alike;
- above it, Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted
  Files and Communication with PURBs", PETS 2019): with ``E = floor(log2 n)`` and
  ``S = floor(log2 E) + 1``, the low ``E - S`` bits of ``n`` are rounded up to
  zero. The padded size then reveals O(log log n) bits of ``n``, and the
  overhead is at most ``2^(E-S) - 1`` bytes: under 6.3 % from 16 KiB on, 3.2 %
  from 1 MiB, 1.6 % from 1 GiB (always ≤ 12 %, Padmé's bound).
"""

from __future__ import annotations

from typing import Final

#: Every envelope is at least this long (a 10 KiB letter and a 1 KiB one look alike).
MIN_ENVELOPE_SIZE: Final = 16 * 1024


def padme(size: int) -> int:
    """Padmé's padded length of ``size`` bytes (``size`` itself below 2)."""
    if size < 0:
        raise ValueError("a size is not negative")
    if size < 2:
        return size
    exponent = size.bit_length() - 1  # floor(log2 size)
    bits = exponent.bit_length()  # floor(log2 exponent) + 1
    mask = (1 << (exponent - bits)) - 1
    return (size + mask) & ~mask


def padded_size(size: int) -> int:
    """The size an envelope of ``size`` unpadded bytes is padded to."""
    return padme(max(size, MIN_ENVELOPE_SIZE))
