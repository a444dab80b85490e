"""Pairing codes typed by people, and the discovery hints of paired peers.

Part of the pairing protocol (``pairing`` runs the exchange). Pure: randomness
can be injected, ``now`` is an argument.

Code
====

``NNN-DDDDDDD``: a 3-digit **nameplate** (public: it finds the invitation and is
advertised over mDNS as ``pair=NNN`` while the invitation is open) and 7
**secret digits** (log2(10^7) ≈ 23.3 bits). Both parts are drawn uniformly
(rejection sampling over 8 random bytes). ``parse_code`` drops all white space,
accepts any dash-like character or no dash at all (10 digits), and raises
``BadCode`` with a sentence a person can act on.

SPAKE2 password: ``PW = b"pli/1/pair" ‖ nameplate ‖ b"-" ‖ secret`` (ASCII),
e.g. ``b"pli/1/pair314-1592653"``.

Discovery hint
==============

``hint = hex(HMAC-BLAKE2b-512(secret, b"pli/1/hint" ‖ u64be(now // 3600))[:8])``:
16 lower-case hex characters, published in the mDNS TXT record. Only peers that
received ``secret`` at pairing recognise it; ``hint_matches`` accepts the
previous, current and next hour (clock skew at the hour boundary).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from nacl import utils as nacl_utils

from .errors import LocalProtocolError, MalformedMessage

__all__ = [
    "DISCOVERY_SECRET_SIZE",
    "BadCode",
    "Entropy",
    "PairingCode",
    "discovery_hint",
    "hint_matches",
    "new_code",
    "new_discovery_secret",
    "parse_code",
]

#: A source of random bytes, like ``os.urandom``: ``entropy(n)`` returns n bytes.
Entropy = Callable[[int], bytes]

_PASSWORD_PREFIX: Final = b"pli/1/pair"
_LABEL_HINT: Final = b"pli/1/hint"
DISCOVERY_SECRET_SIZE: Final = 32
HINT_PERIOD: Final = 3600
_HINT_BYTES: Final = 8
NAMEPLATE_DIGITS: Final = 3
_SECRET_DIGITS: Final = 7
_CODE_EXAMPLE: Final = "314-1592653"


# --- codes -----------------------------------------------------------------------


class BadCode(MalformedMessage):
    """A pairing code typed by a person is not well formed; ``str()`` says why."""

    code = "bad-code"


@dataclass(frozen=True)
class PairingCode:
    """``NNN-DDDDDDD``: public nameplate and secret digits. ``repr`` hides the secret."""

    nameplate: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for value, size, what in (
            (self.nameplate, NAMEPLATE_DIGITS, "nameplate"),
            (self.secret, _SECRET_DIGITS, "secret"),
        ):
            if not isinstance(value, str) or not is_digits(value, size):
                raise BadCode(f"the {what} of a pairing code is {size} digits")

    def __str__(self) -> str:
        return f"{self.nameplate}-{self.secret}"

    @property
    def password(self) -> bytes:
        """The SPAKE2 password: ``b"pli/1/pair" ‖ nameplate ‖ "-" ‖ secret``."""
        return _PASSWORD_PREFIX + str(self).encode("ascii")


def is_digits(value: str, size: int) -> bool:
    return len(value) == size and all("0" <= ch <= "9" for ch in value)


def draw(rng: Entropy, size: int) -> bytes:
    value = rng(size)
    if not isinstance(value, bytes) or len(value) != size:
        raise LocalProtocolError(f"the random source must return {size} bytes")
    return value


def _uniform(rng: Entropy, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` by rejection sampling over 64 bits."""
    limit = (1 << 64) - (1 << 64) % bound
    for _ in range(64):  # each try is rejected with probability < 2**-40
        value = int.from_bytes(draw(rng, 8), "big")
        if value < limit:
            return value % bound
    raise LocalProtocolError("the random source looks broken")


def new_code(rng: Entropy = nacl_utils.random) -> PairingCode:
    """A fresh code: uniform 3-digit nameplate and 7 secret digits."""
    nameplate = _uniform(rng, 10**NAMEPLATE_DIGITS)
    secret = _uniform(rng, 10**_SECRET_DIGITS)
    return PairingCode(f"{nameplate:0{NAMEPLATE_DIGITS}d}", f"{secret:0{_SECRET_DIGITS}d}")


_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−_", "-"))


def parse_code(text: str) -> PairingCode:
    """Read a code typed by a person. Raises ``BadCode`` with a readable reason."""
    if not isinstance(text, str):
        raise BadCode("The pairing code must be typed as text.")
    cleaned = "".join(text.split()).translate(_DASHES)
    if not cleaned:
        raise BadCode(
            "Please type the pairing code shown on the other computer, "
            f"for example {_CODE_EXAMPLE}."
        )
    if len(cleaned) > 32 or any(not ("0" <= ch <= "9" or ch == "-") for ch in cleaned):
        raise BadCode(
            "A pairing code has only digits and one dash, for example "
            f"{_CODE_EXAMPLE}. Please check what you typed."
        )
    if cleaned.count("-") > 1:
        raise BadCode(
            f"A pairing code has one dash, after the first three digits, for example "
            f"{_CODE_EXAMPLE}. Please check what you typed."
        )
    if "-" in cleaned:
        nameplate, _, secret = cleaned.partition("-")
    elif len(cleaned) == NAMEPLATE_DIGITS + _SECRET_DIGITS:
        nameplate, secret = cleaned[:NAMEPLATE_DIGITS], cleaned[NAMEPLATE_DIGITS:]
    else:
        raise BadCode(
            f"A pairing code has 10 digits: 3, a dash, then 7 (for example {_CODE_EXAMPLE}). "
            f"What you typed has {len(cleaned)}. Please check it."
        )
    if len(nameplate) != NAMEPLATE_DIGITS:
        raise BadCode(
            f"A pairing code starts with 3 digits before the dash (for example {_CODE_EXAMPLE}); "
            f"what you typed has {len(nameplate)}. Please check it."
        )
    if len(secret) != _SECRET_DIGITS:
        raise BadCode(
            f"A pairing code has 7 digits after the dash (for example {_CODE_EXAMPLE}); "
            f"what you typed has {len(secret)}. Please check it."
        )
    return PairingCode(nameplate, secret)


# --- discovery helpers -------------------------------------------------------------


def new_discovery_secret(rng: Entropy = nacl_utils.random) -> bytes:
    """A fresh 32-byte discovery secret (handed to peers at pairing)."""
    return draw(rng, DISCOVERY_SECRET_SIZE)


def check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != DISCOVERY_SECRET_SIZE:
        raise LocalProtocolError("a discovery secret is 32 bytes")


def discovery_hint(secret: bytes, hour: int) -> str:
    """The mDNS hint for ``hour`` (= ``now // 3600``): 16 lower-case hex characters."""
    check_secret(secret)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour < 2**64:
        raise LocalProtocolError("the hour of a discovery hint is an unsigned 64-bit integer")
    digest = hmac.new(secret, _LABEL_HINT + hour.to_bytes(8, "big"), hashlib.blake2b).digest()
    return digest[:_HINT_BYTES].hex()


def hint_matches(secret: bytes, hint: str, now: int) -> bool:
    """Whether ``hint`` (untrusted, from mDNS) was made with ``secret`` near ``now``.

    The previous, current and next hour are accepted: clocks drift, and an
    advertisement made just before the hour is read just after it.
    """
    check_secret(secret)
    if isinstance(now, bool) or not isinstance(now, int):
        raise LocalProtocolError("now is a POSIX time in whole seconds")
    if not isinstance(hint, str) or len(hint) != 2 * _HINT_BYTES or not hint.isascii():
        return False
    candidate = hint.lower().encode("ascii")
    hour = now // HINT_PERIOD
    matched = False
    for near in (hour - 1, hour, hour + 1):
        if 0 <= near < 2**64:
            # No early exit: the time taken does not tell which hour matched.
            matched |= hmac.compare_digest(discovery_hint(secret, near).encode(), candidate)
    return matched
