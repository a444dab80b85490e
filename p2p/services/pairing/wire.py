"""Frames, error codes and sentences of the ``/pli/1/pair`` endpoint.

Part of the pairing service (``pairing.py`` and ``fingerprint_pairing.py`` use
it; nothing else should). Every frame on the endpoint is one WebSocket binary
message holding one msgpack map with a ``t`` field (``protocol.codec``,
strict). ``{"t": "error", "code": str}`` ends an exchange from either side; the
code is one of ``ERROR_CODES`` and only ever selects one of *our* sentences, so
a peer cannot make us show text it chose. ``Abort`` is how an exchange ends
inside the service: a sentence for our person and the code to send, if any.

No sockets here: a ``Pipe`` (``transport.FramePipe``) is handed in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol

from protocol import (
    WRONG_CODE_MESSAGE,
    AuthenticationFailed,
    PairedPeer,
    RemoteProtocolError,
    codec,
    limits,
)

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

#: Error codes on the wire, and what the receiving side tells its person.
ERROR_CODES: Final[Mapping[str, str]] = {
    "wrong-code": WRONG_CODE_MESSAGE,
    "expired": EXPIRED_MESSAGE,
    "used": USED_MESSAGE,
    "unknown": UNKNOWN_MESSAGE,
    "timeout": TIMEOUT_MESSAGE,
    "confirm-timeout": CONFIRM_TIMEOUT_MESSAGE,
    "bad-message": GARBLED_MESSAGE,
    "rejected": REJECTED_MESSAGE,
    "busy": BUSY_MESSAGE,
    "stopping": PEER_STOPPED_MESSAGE,
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
    """Ends an exchange: ``message`` for our person, ``wire`` the error code for the
    peer (``None``: the peer already knows, or the connection is gone)."""

    def __init__(self, message: str, wire: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wire = wire


def garbled() -> Abort:
    return Abort(GARBLED_MESSAGE, "bad-message")


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

    An error frame raises ``Abort`` with our sentence for its code (nothing is
    sent back); anything else unexpected raises ``Abort`` answering ``bad-message``.
    """
    try:
        fields = codec.as_map(codec.unpack(data), "pairing frame")
        kind = codec.field(fields, "t", str, "pairing frame")
    except RemoteProtocolError as exc:
        raise garbled() from exc
    if kind == "error":
        code = fields.get("code")
        message = ERROR_CODES.get(code, "") if isinstance(code, str) else ""
        raise Abort(message or REJECTED_MESSAGE)
    if kind != expected or set(fields) != {"t", *keys}:
        raise garbled()
    return fields


def check_error(data: bytes) -> bytes:
    """Pass a ``protocol.Pairing`` message through; raise ``Abort`` for an error frame."""
    if frame_type(data) == "error":
        parse(data, "error", ("code",))
    return data


def bin_field(fields: Mapping[str, Any], key: str) -> bytes:
    value = fields[key]
    if not isinstance(value, bytes):
        raise garbled()
    return value


def protocol_abort(exc: RemoteProtocolError) -> Abort:
    """A failed check inside ``protocol.Pairing``: wrong code, bad identity, or garbage."""
    if isinstance(exc, AuthenticationFailed):
        message = str(exc)
        return Abort(message, "wrong-code" if message == WRONG_CODE_MESSAGE else "rejected")
    return garbled()


async def receive(pipe: Pipe) -> bytes:
    try:
        return await pipe.receive()
    except Exception as exc:  # transport.ChannelClosed and friends: a service may not import them
        raise Abort(LOST_MESSAGE) from exc


async def send(pipe: Pipe, data: bytes) -> None:
    try:
        await pipe.send(data)
    except Exception as exc:  # as in receive()
        raise Abort(LOST_MESSAGE) from exc


async def hang_up(pipe: Pipe, abort: Abort) -> None:
    """Tell the peer why (when there is a code to tell), then close."""
    if abort.wire is not None:
        try:
            async with asyncio.timeout(2.0):
                await pipe.send(frame("error", code=abort.wire))
        except Exception:  # noqa: S110 - best effort: the peer may be gone already
            pass
    await pipe.close(CLOSE_FAILED, abort.wire or "pairing failed")


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
