"""Why a pairing ended: one reason code, from the protocol to the CLI's exit code.

Every way a pairing attempt can fail has a ``Reason``. The protocol's state
machines raise ``PairingRefused`` with one (its ``code`` is the reason, so it
is also what goes on the wire); the daemon's service keeps it in the attempt;
the local API returns it as ``"reason"``; the CLI chooses its exit code from
``is_security(reason)`` and never from the sentence shown to the person.

The error frame that ends an exchange from either side is
``{"t": "error", "code": <reason>}`` (``error_frame`` / ``read_error_frame``).
Only ``WIRE_REASONS`` may travel: a code received from a peer that is not one
of them reads as ``REJECTED``, so a peer can choose neither our sentence nor
our exit code beyond that list.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from . import codec
from .errors import AuthenticationFailed, RemoteProtocolError

__all__ = [
    "SECURITY_REASONS",
    "WIRE_REASONS",
    "PairingRefused",
    "Reason",
    "error_frame",
    "is_security",
    "read_error_frame",
]


class Reason(enum.StrEnum):
    """The reason codes of a failed pairing (stable strings: API, wire, CLI)."""

    WRONG_CODE = "wrong-code"  # SPAKE2 key confirmation failed: wrong code, or a MITM
    EXPIRED = "expired"  # the invitation is past its lifetime
    USED = "used"  # the invitation was spent by an earlier attempt
    UNKNOWN = "unknown"  # no open invitation with this nameplate
    CANCELLED = "cancelled"  # the inviter cancelled the invitation
    TIMEOUT = "timeout"  # the machines' exchange took too long
    LOST = "lost"  # the connection closed mid-exchange
    BAD_MESSAGE = "bad-message"  # the peer sent something that does not parse
    REJECTED = "rejected"  # the peer ended the exchange, no reason we know
    BUSY = "busy"  # too many requests at the responder
    STOPPED = "stopped"  # our daemon stopped
    PEER_STOPPED = "stopping"  # the peer's daemon stopped (wire code kept from pli/1)
    YOU_REFUSED = "you-refused"  # our person said the check codes differ
    PEER_REFUSED = "peer-refused"  # the peer's person said the check codes differ
    CONFIRM_TIMEOUT = "confirm-timeout"  # nobody confirmed in time
    NOT_THAT_PEER = "not-that-peer"  # the computer dialled is not the fingerprint typed
    DECLINED = "declined"  # the responder's person declined a fingerprint request
    NOT_ACCEPTED = "not-accepted"  # the responder did not answer in time
    YOU_DECLINED = "you-declined"  # our person declined a fingerprint request
    REPLACED = "replaced"  # a newer request from the same identity replaced this one
    SAVE_FAILED = "save-failed"  # both agreed; we could not store the peer
    REFLECTION = "reflection"  # the other side has our own identity
    BAD_PEER = "bad-peer"  # a certificate, card or bundle signature does not check out
    EXPIRED_PEER = "expired-peer"  # the peer's certificate has expired (or a clock is wrong)
    BAD_COMMITMENT = "bad-commitment"  # a fingerprint requester's reveal broke its commitment
    LOCAL_SETUP = "local-setup"  # our own keys or profile cannot be used to pair


#: Reasons that may mean an attack: the CLI exits 4 (security failure) on these.
SECURITY_REASONS: Final = frozenset(
    {
        Reason.WRONG_CODE,
        Reason.YOU_REFUSED,
        Reason.PEER_REFUSED,
        Reason.NOT_THAT_PEER,
        Reason.BAD_PEER,
        Reason.BAD_COMMITMENT,
    }
)

#: Reasons a peer may send us in an error frame.
WIRE_REASONS: Final = frozenset(
    {
        Reason.WRONG_CODE,
        Reason.EXPIRED,
        Reason.USED,
        Reason.UNKNOWN,
        Reason.TIMEOUT,
        Reason.CONFIRM_TIMEOUT,
        Reason.BAD_MESSAGE,
        Reason.REJECTED,
        Reason.BUSY,
        Reason.PEER_STOPPED,
        Reason.BAD_PEER,
        Reason.BAD_COMMITMENT,
    }
)


def is_security(reason: str | None) -> bool:
    """Whether a failure with this reason code may mean an attack (exit 4)."""
    return reason in SECURITY_REASONS


class PairingRefused(AuthenticationFailed):
    """A pairing check failed; ``reason`` (also ``code``) says which kind of failure.

    ``str()`` is a plain sentence for a person; the caller may show its own
    sentence for ``reason`` instead.
    """

    def __init__(self, reason: Reason, message: str = "") -> None:
        super().__init__(message or f"pairing refused ({reason})")
        self.reason = reason
        self.code = str(reason)


def error_frame(reason: Reason) -> bytes:
    """``{"t": "error", "code": reason}``: ends an exchange from either side."""
    return codec.pack({"t": "error", "code": str(reason)})


def read_error_frame(data: bytes) -> Reason | None:
    """The reason of an error frame, or ``None`` if ``data`` is not an error frame.

    A code we do not know, or one a peer may not send, reads as ``REJECTED``.
    Never raises: anything that is not an error frame is ``None``.
    """
    try:
        fields: Any = codec.as_map(codec.unpack(data), "pairing frame")
    except RemoteProtocolError:
        return None
    if fields.get("t") != "error":
        return None
    code = fields.get("code")
    if set(fields) != {"t", "code"} or not isinstance(code, str):
        return Reason.REJECTED
    try:
        reason = Reason(code)
    except ValueError:
        return Reason.REJECTED
    return reason if reason in WIRE_REASONS else Reason.REJECTED
