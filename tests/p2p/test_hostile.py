"""Hostile connections to the peer port: each is closed, and the daemon keeps serving."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import aiohttp

from protocol import limits

from .conftest import Running, start_daemon, wait_for
from .test_exchange import delivered, send_file

DEADLINE = 1.5


async def hostile_pair(tmp_path: Path) -> tuple[Running, Running]:
    from .conftest import pair

    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", handshake_deadline=DEADLINE)
    await pair(a, b)
    return a, b


async def ws(b: Running) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    socket_ = await session.ws_connect(f"http://{b.address}/pli/1/peer", max_msg_size=0)
    return session, socket_


async def test_garbage_is_refused(tmp_path: Path) -> None:
    a, b = await hostile_pair(tmp_path)
    try:
        session, sock = await ws(b)
        await sock.send_bytes(os.urandom(200))
        message = await asyncio.wait_for(sock.receive(), DEADLINE + 2)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await session.close()
        assert b.daemon.store.inbox() == []
    finally:
        await a.stop()
        await b.stop()


async def test_oversized_frame_is_refused(tmp_path: Path) -> None:
    a, b = await hostile_pair(tmp_path)
    try:
        session, sock = await ws(b)
        await sock.send_bytes(b"\x00" * (limits.MAX_FRAME + 1))
        message = await asyncio.wait_for(sock.receive(), DEADLINE + 2)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await session.close()
    finally:
        await a.stop()
        await b.stop()


def _dribble(address: str, request: bytes, stop_after: float) -> float:
    """Send ``request`` one byte per 0.25 s; return when the server closes (seconds)."""
    host, port = address.split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=stop_after) as sock:
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return time.monotonic() - started
            sock.settimeout(0.25)
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except OSError:
                return time.monotonic() - started
            if time.monotonic() - started > stop_after:
                break
    return float("inf")


async def test_slow_handshake_is_closed_while_others_are_served(tmp_path: Path) -> None:
    a, b = await hostile_pair(tmp_path)
    try:
        session, sock = await ws(b)
        # A WebSocket that never finishes the Noise handshake: one byte a second would
        # do the same; the deadline closes it whatever it sends.
        letter = tmp_path / "lettre.txt"
        letter.write_text("Cher confrère,\n")
        doc_id = await send_file(a, b, letter, kind="letter")
        await wait_for(lambda: delivered(a, doc_id), timeout=DEADLINE)
        message = await asyncio.wait_for(sock.receive(), DEADLINE + 2)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await session.close()
    finally:
        await a.stop()
        await b.stop()


async def test_byte_per_tick_upgrade_is_closed(tmp_path: Path) -> None:
    a, b = await hostile_pair(tmp_path)
    try:
        request = (
            (
                f"GET /pli/1/peer HTTP/1.1\r\nHost: {b.address}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            + b"\x82\x7e\xff\xff"
            + b"\x00" * 200
        )
        closed_after = await asyncio.to_thread(_dribble, b.address, request, 60)
        assert closed_after < DEADLINE + 2  # closed by the deadline, not by the end of input
        letter = tmp_path / "lettre.txt"
        letter.write_text("still served\n")
        doc_id = await send_file(a, b, letter, kind="letter")
        await wait_for(lambda: delivered(a, doc_id), timeout=10)
    finally:
        await a.stop()
        await b.stop()
