"""Frames, reason codes and sentences of the ``/pli/1/pair`` endpoint.

Part of the pairing service (``service``, ``code`` and ``fingerprint`` use it;
nothing else should). Every frame on the endpoint is one WebSocket binary
message holding one msgpack map with a ``t`` field (``protocol.codec``,
strict). ``{"t": "error", "code": str}`` ends an exchange from either side
(``protocol.error_frame``); the code is a ``protocol.PairingReason`` and only
ever selects one of *our* sentences (``SENTENCES``), so a peer cannot make us
show text it chose. ``Abort`` is how an exchange ends inside the service: the
reason (kept in the attempt, returned by the API, read by the CLI for its exit
code), a sentence for our person and the code to send the peer, if any.

No sockets here: a ``Pipe`` (``transport.FramePipe``) is handed in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from protocol import (
    BAD_PEER_MESSAGE,
    EXPIRED_PEER_MESSAGE,
    PAIRING_WIRE_REASONS,
    REFLECTION_MESSAGE,
    WRONG_CODE_MESSAGE,
    PairedPeer,
    PairingReason,
    PairingRefused,
    RemoteProtocolError,
    codec,
    limits,
    pairing_error_frame,
    read_pairing_error_frame,
)

Reason = PairingReason
WIRE_REASONS = PAIRING_WIRE_REASONS

# --- sentences for people ------------------------------------------------------------------

EXPIRED_MESSAGE: Final = "This pairing code has expired. Ask your colleague for a new one."
USED_MESSAGE: Final = (
    "This pairing code was already used: each code works only once. "
    "Nothing was saved. Ask your colleague for a new one."
)
UNKNOWN_MESSAGE: Final = (
    "The other computer has no open invitation with this code. Check the code, "
    "or ask your colleague for a new one."
)
CANCELLED_MESSAGE: Final = "The invitation was cancelled. Nothing was saved."
TIMEOUT_MESSAGE: Final = (
    "The other computer stopped answering during the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
LOST_MESSAGE: Final = (
    "The connection to the other computer was lost during the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
GARBLED_MESSAGE: Final = (
    "The other computer sent something pli does not understand. Nothing was saved. "
    "Check that both practices run an up-to-date pli, then try again."
)
REJECTED_MESSAGE: Final = (
    "The other computer refused the pairing. Nothing was saved. "
    "Make a new invitation and try again."
)
BUSY_MESSAGE: Final = (
    "The other computer is busy with other pairing requests. Try again in a few minutes."
)
STOPPED_MESSAGE: Final = "pli stopped during the pairing. Nothing was saved. Please try again."
PEER_STOPPED_MESSAGE: Final = (
    "pli stopped on the other computer during the pairing. Nothing was saved. Please try again."
)
YOU_REFUSED_MESSAGE: Final = "You did not confirm the check code. Nothing was saved."
PEER_REFUSED_MESSAGE: Final = (
    "Your colleague did not confirm the check code. Nothing was saved. If the two screens "
    "showed different codes, someone may have tried to intercept the pairing: make a new "
    "invitation and try again."
)
CONFIRM_TIMEOUT_MESSAGE: Final = (
    "The check code was not confirmed on both computers in time. Nothing was saved. "
    "Make a new invitation and try again."
)
NOT_THAT_PEER_MESSAGE: Final = (
    "The computer at {address} is not the practice with fingerprint {fingerprint}. "
    "Nothing was saved and nothing was sent to it. Check the address and the fingerprint "
    "with your colleague."
)
NOT_THAT_PEER_PLAIN: Final = (
    "The computer dialled is not the practice with the fingerprint typed. Nothing was saved "
    "and nothing was sent to it. Check the address and the fingerprint with your colleague."
)
BAD_COMMITMENT_MESSAGE: Final = (
    "The computer asking to pair changed its identity during the exchange: someone may be "
    "trying to pass for your colleague. Nothing was saved. Refuse, and ask your colleague "
    "to send the request again."
)
LOCAL_SETUP_MESSAGE: Final = (
    "pli cannot pair on this computer right now: its keys or profile need attention "
    "(see the daemon's log). Nothing was saved."
)
DECLINED_MESSAGE: Final = "The other practice declined the pairing request. Nothing was saved."
NOT_ACCEPTED_MESSAGE: Final = (
    "The other practice did not accept the pairing request in time. Nothing was saved. "
    "Ask them to run `pli peers accept` while you wait, then try again."
)
YOU_DECLINED_MESSAGE: Final = "You declined the pairing request. Nothing was saved."
REPLACED_MESSAGE: Final = "A newer request from the same practice replaced this one."
SAVE_FAILED_MESSAGE: Final = (
    "Both sides agreed, but pli could not save the other practice on this computer "
    "(see the daemon's log). Make a new invitation and try again."
)
OWN_FINGERPRINT_MESSAGE: Final = "That is this practice's own fingerprint."

#: What our person reads for each reason (a peer's error frame only selects one).
SENTENCES: Final[Mapping[Reason, str]] = {
    Reason.WRONG_CODE: WRONG_CODE_MESSAGE,
    Reason.EXPIRED: EXPIRED_MESSAGE,
    Reason.USED: USED_MESSAGE,
    Reason.UNKNOWN: UNKNOWN_MESSAGE,
    Reason.CANCELLED: CANCELLED_MESSAGE,
    Reason.TIMEOUT: TIMEOUT_MESSAGE,
    Reason.LOST: LOST_MESSAGE,
    Reason.BAD_MESSAGE: GARBLED_MESSAGE,
    Reason.REJECTED: REJECTED_MESSAGE,
    Reason.BUSY: BUSY_MESSAGE,
    Reason.STOPPED: STOPPED_MESSAGE,
    Reason.PEER_STOPPED: PEER_STOPPED_MESSAGE,
    Reason.YOU_REFUSED: YOU_REFUSED_MESSAGE,
    Reason.PEER_REFUSED: PEER_REFUSED_MESSAGE,
    Reason.CONFIRM_TIMEOUT: CONFIRM_TIMEOUT_MESSAGE,
    Reason.NOT_THAT_PEER: NOT_THAT_PEER_PLAIN,
    Reason.DECLINED: DECLINED_MESSAGE,
    Reason.NOT_ACCEPTED: NOT_ACCEPTED_MESSAGE,
    Reason.YOU_DECLINED: YOU_DECLINED_MESSAGE,
    Reason.REPLACED: REPLACED_MESSAGE,
    Reason.SAVE_FAILED: SAVE_FAILED_MESSAGE,
    Reason.REFLECTION: REFLECTION_MESSAGE,
    Reason.BAD_PEER: BAD_PEER_MESSAGE,
    Reason.EXPIRED_PEER: EXPIRED_PEER_MESSAGE,
    Reason.BAD_COMMITMENT: BAD_COMMITMENT_MESSAGE,
    Reason.LOCAL_SETUP: LOCAL_SETUP_MESSAGE,
}

#: The code we send the peer when we end an exchange for a reason (none: nothing sent).
_WIRE_FOR: Final[Mapping[Reason, Reason]] = {
    Reason.STOPPED: Reason.PEER_STOPPED,
    Reason.NOT_ACCEPTED: Reason.CONFIRM_TIMEOUT,
    Reason.LOCAL_SETUP: Reason.REJECTED,
    Reason.REFLECTION: Reason.REJECTED,
    Reason.EXPIRED_PEER: Reason.REJECTED,
    Reason.SAVE_FAILED: Reason.REJECTED,
    **{reason: reason for reason in WIRE_REASONS},
}

CLOSE_FAILED: Final = 4001  # WebSocket close code after an error frame


class Pipe(Protocol):
    """One bounded binary-frame connection (``transport.FramePipe``).

    ``receive`` and ``send`` raise some exception when the connection is gone;
    the pairing service treats any as "connection lost".
    """

    @property
    def remote_address(self) -> str: ...

    async def send(self, data: bytes) -> None: ...

    async def receive(self, timeout: float | None = None) -> bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Abort(Exception):
    """Ends an exchange: ``reason`` (why), ``message`` for our person (by default the
    sentence for ``reason``), ``wire`` the code to send the peer (``None``: the peer
    already knows, or the connection is gone)."""

    def __init__(
        self, reason: Reason, *, wire: Reason | None = None, message: str | None = None
    ) -> None:
        self.reason = reason
        self.message = message or SENTENCES[reason]
        self.wire = wire
        super().__init__(self.message)

    @classmethod
    def tell(cls, reason: Reason, message: str | None = None) -> Abort:
        """End for ``reason`` and tell the peer (the wire code that goes with it)."""
        return cls(reason, wire=_WIRE_FOR.get(reason), message=message)


def garbled() -> Abort:
    return Abort.tell(Reason.BAD_MESSAGE)


def frame(kind: str, **fields: Any) -> bytes:
    return codec.pack({"t": kind, **fields})


def frame_type(data: bytes) -> str:
    """The ``t`` of a frame, or ``""`` if it is not a frame at all."""
    try:
        return codec.field(codec.as_map(codec.unpack(data), "frame"), "t", str, "frame")
    except RemoteProtocolError:
        return ""


def parse(data: bytes, expected: str, keys: Collection[str]) -> Mapping[str, Any]:
    """A frame of type ``expected`` with exactly ``keys`` besides ``t``.

    An error frame raises ``Abort`` with its reason (nothing is sent back);
    anything else unexpected raises ``Abort`` answering ``bad-message``.
    """
    check_error(data)
    try:
        fields = codec.as_map(codec.unpack(data), "pairing frame")
        kind = codec.field(fields, "t", str, "pairing frame")
    except RemoteProtocolError as exc:
        raise garbled() from exc
    if kind != expected or set(fields) != {"t", *keys}:
        raise garbled()
    return fields


def check_error(data: bytes) -> bytes:
    """Pass a protocol message through; raise ``Abort`` for an error frame."""
    reason = read_pairing_error_frame(data)
    if reason is not None:
        raise Abort(reason)
    return data


def bin_field(fields: Mapping[str, Any], key: str) -> bytes:
    value = fields[key]
    if not isinstance(value, bytes):
        raise garbled()
    return value


def protocol_abort(exc: RemoteProtocolError) -> Abort:
    """A failed check inside a protocol state machine: its reason, or garbage."""
    if isinstance(exc, PairingRefused):
        return Abort.tell(exc.reason)
    return garbled()


async def receive(pipe: Pipe) -> bytes:
    try:
        return await pipe.receive()
    except Exception as exc:  # transport.ChannelClosed and friends: a service may not import them
        raise Abort(Reason.LOST) from exc


async def send(pipe: Pipe, data: bytes) -> None:
    try:
        await pipe.send(data)
    except Exception as exc:  # as in receive()
        raise Abort(Reason.LOST) from exc


async def hang_up(pipe: Pipe, abort: Abort) -> None:
    """Tell the peer why (when there is a code to tell), then close."""
    if abort.wire is not None:
        try:
            async with asyncio.timeout(2.0):
                await pipe.send(pairing_error_frame(abort.wire))
        except Exception:  # noqa: S110 - best effort: the peer may be gone already
            pass
    await pipe.close(CLOSE_FAILED, str(abort.wire or "pairing failed"))


async def cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # mark it retrieved: its outcome no longer matters


# --- addresses -----------------------------------------------------------------------------

_ADDRESS = re.compile(r"[^\s/]{1,253}:[0-9]{1,5}")


def clean_addresses(addresses: Sequence[Any]) -> tuple[str, ...]:
    """``host:port`` strings as ``protocol.Pairing`` accepts them, deduplicated, at most 8."""
    kept: list[str] = []
    for address in addresses:
        if (
            isinstance(address, str)
            and _ADDRESS.fullmatch(address)
            and 0 < int(address.rpartition(":")[2]) < 65536
            and address not in kept
        ):
            kept.append(address)
    return tuple(kept[: limits.MAX_ADDRESSES])


def with_address(peer: PairedPeer, dialled: str) -> PairedPeer:
    """Remember first the address we reached the peer at."""
    addresses = clean_addresses([dialled, *peer.addresses])
    return replace(peer, addresses=addresses) if addresses else peer
