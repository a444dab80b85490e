"""pli/2 frames: every byte a peer sends after the Noise handshake, sealed (sans-IO).

In pli/1 the envelope bytes travelled outside Noise (BULK frames in the clear):
anyone who recorded the LAN and later obtained a document key read the letter.
In pli/2 every WebSocket message after the handshake is one sealed frame::

    frame     = AEGIS-256(key[direction], nonce(n), ad = "", plaintext) ‖ tag(32)
    plaintext = type (1 byte) ‖ payload          type 0x01 CONTROL, 0x02 BULK
    nonce(n)  = u64-BE(n) ‖ 24 zero bytes        n = 0, 1, 2 … per direction, never reset

The two keys come from the Noise session's exporter, a secret that only the two
ends hold (it is derived from the final chaining key, hence from every DH of the
handshake, ephemerals included)::

    key[initiator → responder] = Session.export("pli/2/frames/initiator-to-responder")
    key[responder → initiator] = Session.export("pli/2/frames/responder-to-initiator")

so a recording of the connection is useless once both daemons have dropped
their ephemeral keys, even to someone who later steals every long-term key
(forward secrecy). The type byte is encrypted too: an observer sees only sizes.

Rekey: right after the frame with counter ``n`` is sealed (sender) or opened
(receiver), if ``(n + 1) % rekey_every == 0`` (``limits.REKEY_FRAMES``), the key
becomes ``BLAKE2b-256(key = key, data = "pli/2/frames/rekey")``; the counter goes
on. The hourly rekey is a CONTROL ``rekey`` message, after which the sender
calls ``rekey_outbound`` and the receiver ``rekey_inbound`` (same function).

Opening checks, in order: size ≤ ``limits.MAX_FRAME`` (``FrameTooLarge``), at
least a tag and a type byte (``MalformedMessage``), the tag under the expected
counter (``AuthenticationFailed``: a frame replayed, reordered, dropped,
altered, cut, reflected or sealed under another key), then a known type
(``MalformedMessage``). After any error the receiving direction is dead: the
caller closes the connection, and further frames raise ``AuthenticationFailed``.

Why AEGIS-256 (bench/envelope.py measures it next to ChaCha20-Poly1305 and
AES-256-GCM): libsodium's AEGIS-256 is correct on every CPU (a portable
implementation where AES instructions are missing), its 256-bit nonce and key
leave no birthday bound to track, and on this machine it runs at several GB/s,
so sealing every byte costs a small share of a transfer. The cipher is called
through ``_aegis`` (libsodium's functions without PyNaCl's copies): a frame is
sealed from any buffer and opened into a buffer of its own, one pass each.
"""

from __future__ import annotations

import hashlib
from typing import Final

from nacl import exceptions as nacl_exceptions

from . import _aegis, limits
from .errors import AuthenticationFailed, FrameTooLarge, LocalProtocolError, MalformedMessage
from .messages import FrameType
from .noise import Session

LABEL_INITIATOR_TO_RESPONDER: Final = b"pli/2/frames/initiator-to-responder"
LABEL_RESPONDER_TO_INITIATOR: Final = b"pli/2/frames/responder-to-initiator"
LABEL_REKEY: Final = b"pli/2/frames/rekey"

KEY_SIZE: Final[int] = _aegis.KEY_SIZE
TAG_SIZE: Final[int] = _aegis.TAG_SIZE
_NONCE_SIZE: Final[int] = _aegis.NONCE_SIZE
_NONCE_PAD: Final = bytes(_NONCE_SIZE - 8)
_MAX_COUNTER: Final = 2**64 - 1

#: Largest plaintext (type byte included) a frame may carry.
MAX_PLAINTEXT: Final = limits.MAX_FRAME - TAG_SIZE


def frame_nonce(counter: int) -> bytes:
    """The nonce of frame number ``counter`` in one direction."""
    return counter.to_bytes(8, "big") + _NONCE_PAD


def next_key(key: bytes) -> bytes:
    """The key that follows ``key`` at a rekey (one-way: old frames stay safe)."""
    return hashlib.blake2b(LABEL_REKEY, key=key, digest_size=KEY_SIZE).digest()


class _Direction:
    """One direction's key and counter."""

    __slots__ = ("counter", "dead", "key", "rekey_every")

    def __init__(self, key: bytes, rekey_every: int) -> None:
        if len(key) != KEY_SIZE:
            raise LocalProtocolError("a frame key is 32 bytes")
        if rekey_every < 1:
            raise LocalProtocolError("rekey_every must be positive")
        self.key = key
        self.counter = 0
        self.rekey_every = rekey_every
        self.dead = False

    def advance(self) -> None:
        self.counter += 1
        if self.counter % self.rekey_every == 0:
            self.key = next_key(self.key)


class FrameSealer:
    """Seals the frames we send in one direction."""

    def __init__(self, key: bytes, *, rekey_every: int = limits.REKEY_FRAMES) -> None:
        self._state = _Direction(key, rekey_every)

    @property
    def counter(self) -> int:
        """The counter the next frame will use."""
        return self._state.counter

    def seal(self, plaintext: bytes | bytearray | memoryview) -> memoryview:
        """One frame; ``plaintext`` (any buffer, not kept) starts with its type byte."""
        state = self._state
        if not plaintext or len(plaintext) > MAX_PLAINTEXT:
            raise LocalProtocolError(f"a frame carries 1 to {MAX_PLAINTEXT} bytes")
        if state.counter >= _MAX_COUNTER:
            raise LocalProtocolError("frame counter exhausted: start a new session")
        frame = _aegis.encrypt(plaintext, None, frame_nonce(state.counter), state.key)
        state.advance()
        return frame

    def control(self, payload: bytes) -> memoryview:
        """A CONTROL frame around an encoded control message."""
        return self.seal(bytes([FrameType.CONTROL]) + payload)

    def rekey(self) -> None:
        """Switch to the next key now (after sending a ``rekey`` control message)."""
        self._state.key = next_key(self._state.key)


class FrameOpener:
    """Opens the frames the peer sends in one direction; dead after any failure."""

    def __init__(self, key: bytes, *, rekey_every: int = limits.REKEY_FRAMES) -> None:
        self._state = _Direction(key, rekey_every)

    @property
    def counter(self) -> int:
        """The counter the next frame must have been sealed with."""
        return self._state.counter

    def open(self, frame: bytes | bytearray | memoryview) -> tuple[FrameType, memoryview]:
        """The type and payload of one received frame. Raises ``RemoteProtocolError``."""
        state = self._state
        if state.dead:
            raise AuthenticationFailed()
        try:
            plaintext = self._decrypt(frame)
            kind = _frame_type(plaintext)
        except BaseException:
            state.dead = True  # the caller closes the connection
            raise
        return kind, plaintext[1:]

    def _decrypt(self, frame: bytes | bytearray | memoryview) -> memoryview:
        state = self._state
        if len(frame) > limits.MAX_FRAME:
            raise FrameTooLarge("frame over the size limit")
        if len(frame) <= TAG_SIZE:
            raise MalformedMessage("frame too short")
        if state.counter >= _MAX_COUNTER:
            raise AuthenticationFailed()
        try:
            plaintext = _aegis.decrypt(frame, None, frame_nonce(state.counter), state.key)
        except (nacl_exceptions.CryptoError, ValueError, TypeError) as exc:
            raise AuthenticationFailed() from exc
        state.advance()
        return plaintext

    def rekey(self) -> None:
        """Switch to the next key now (right after opening a ``rekey`` control message)."""
        self._state.key = next_key(self._state.key)


def _frame_type(plaintext: memoryview) -> FrameType:
    if not plaintext:
        raise MalformedMessage("empty frame")
    try:
        return FrameType(plaintext[0])
    except ValueError as exc:
        raise MalformedMessage("unknown frame type") from exc


def frame_keys(session: Session) -> tuple[bytes, bytes]:
    """(sending key, receiving key) of this end of ``session``."""
    to_responder = session.export(LABEL_INITIATOR_TO_RESPONDER, KEY_SIZE)
    to_initiator = session.export(LABEL_RESPONDER_TO_INITIATOR, KEY_SIZE)
    if session.is_initiator:
        return to_responder, to_initiator
    return to_initiator, to_responder


def frame_ciphers(
    session: Session, *, rekey_every: int = limits.REKEY_FRAMES
) -> tuple[FrameSealer, FrameOpener]:
    """The sealer and opener of this end of a finished Noise session."""
    send_key, receive_key = frame_keys(session)
    return (
        FrameSealer(send_key, rekey_every=rekey_every),
        FrameOpener(receive_key, rekey_every=rekey_every),
    )
