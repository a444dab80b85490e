"""A session's frames over one WebSocket: ``FramePipe`` (bounded binary frames)
and ``Channel`` (a Noise session with one paired peer on top of it, every frame
sealed by ``protocol.frames``: control messages and envelope bytes alike)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import cast

import aiohttp
from aiohttp import web

from protocol import PeerId, RemoteProtocolError, Session, frame_ciphers, limits, messages

log = logging.getLogger("pli.transport")

CLOSE_PROTOCOL = 4002


class ChannelClosed(ConnectionError):
    """The connection ended; whoever used it retries on another."""


class FramePipe:
    """Binary frames over one WebSocket, bounded; nothing else (used for pairing)."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, remote: str):
        self._ws = ws
        self.remote_address = remote

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        try:
            # aiohttp sends any bytes-like object; its annotation says bytes only.
            await self._ws.send_bytes(cast(bytes, data))
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def receive(self, timeout: float | None = None) -> bytes:
        try:
            message = await self._ws.receive(timeout=timeout)
        except TimeoutError:
            raise
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise ChannelClosed(str(exc)) from exc
        if message.type == aiohttp.WSMsgType.BINARY:
            data: bytes = message.data
            return data
        if message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            raise ChannelClosed("closed by the peer")
        await self.close(CLOSE_PROTOCOL, "binary frames only")
        raise ChannelClosed(f"unexpected {message.type.name} frame")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self._ws.close(code=code, message=reason.encode()[:120])

    @property
    def closed(self) -> bool:
        return self._ws.closed


class Channel:
    """An authenticated session with one paired peer over one WebSocket."""

    def __init__(self, pipe: FramePipe, session: Session, local_id: PeerId) -> None:
        self._pipe = pipe
        self._sealer, self._opener = frame_ciphers(session)
        self._send_lock = asyncio.Lock()
        self.peer = session.remote
        self.peer_id = session.remote.peer_id
        self.initiator = session.is_initiator
        self.remote_address = pipe.remote_address
        opener = local_id if self.initiator else self.peer_id
        # Both sides compute the same value for the same connection: the tie-break key.
        self.opened_by = opener
        self._rekeyed_at = time.monotonic()
        self._rekey_after: float = limits.REKEY_SECONDS
        self.rekeys = 0  # hourly rekeys sent on this channel

    def __repr__(self) -> str:
        return f"Channel({self.peer_id.short}, {'out' if self.initiator else 'in'})"

    @property
    def closed(self) -> bool:
        return self._pipe.closed

    def _control_frame(self, message: messages.Message) -> memoryview:
        return self._sealer.control(messages.encode(message))

    async def _rekey_if_old(self) -> None:
        """Hourly rekey (the send lock is held): announced in-band, then this
        direction switches keys at that frame (the counter rekey is in the frames)."""
        if time.monotonic() - self._rekeyed_at > self._rekey_after:
            await self._pipe.send(self._control_frame(messages.Rekey()))
            self._sealer.rekey()
            self._rekeyed_at = time.monotonic()
            self.rekeys += 1

    async def send(self, message: messages.Message) -> None:
        async with self._send_lock:
            await self._rekey_if_old()
            await self._pipe.send(self._control_frame(message))

    async def send_bulk(self, plaintext: bytearray | bytes) -> None:
        """Seal and send a BULK frame; ``plaintext[0]`` must be ``FrameType.BULK``.

        The caller reads file data straight into ``plaintext[1:]``. A transfer
        that lasts longer than the hour rekeys between its frames too.
        """
        if not plaintext or plaintext[0] != messages.FrameType.BULK:
            raise ValueError("a BULK frame starts with its type byte")
        async with self._send_lock:
            await self._rekey_if_old()
            await self._pipe.send(self._sealer.seal(plaintext))

    async def receive(self) -> messages.Message | memoryview:
        """The next control message, or a BULK payload. Raises ``ChannelClosed``."""
        try:
            while True:
                kind, payload = self._opener.open(await self._pipe.receive())
                if kind is messages.FrameType.BULK:
                    return payload
                message = messages.decode(bytes(payload))
                if not isinstance(message, messages.Rekey):
                    return message
                self._opener.rekey()
        except RemoteProtocolError as exc:
            log.warning("closing the connection with %s: %s", self.peer_id.short, exc.code)
            await self.close(CLOSE_PROTOCOL, exc.code)
            raise ChannelClosed(exc.code) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._pipe.close(code, reason)
