"""The peer port's guard: connections counted at accept, one request each, bounded state."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

from p2p.net.transport.guard import Buckets, Throttle
from protocol import limits

from .conftest import Running, start_daemon, wait_for
from .flood import REFUSED, sources

ANSWERED = 5.0


def _exchange(port: int, request: bytes, source: str = "127.0.0.1") -> tuple[bytes, bool]:
    """Send ``request``; what came back, and whether the daemon then closed the connection."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=ANSWERED, source_address=(source, 0)
    ) as sock:
        received = b""
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        except (ConnectionResetError, BrokenPipeError):
            pass  # refused at accept: reset, nothing read
        return received, True


async def test_every_refused_request_closes_its_connection(tmp_path: Path) -> None:
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    try:
        asked = [
            REFUSED,  # 400: not a WebSocket upgrade
            b"GET /elsewhere HTTP/1.1\r\nHost: pli\r\n\r\n",  # 404
            b"POST /pli/1/peer HTTP/1.1\r\nHost: pli\r\nContent-Length: 0\r\n\r\n",  # 405
            # A second request pipelined behind the first is never read.
            REFUSED + b"GET /pli/1/pair HTTP/1.1\r\nHost: pli\r\n\r\n",
        ]
        for request in asked:
            answer, closed = await asyncio.to_thread(_exchange, b.port, request)
            assert closed, answer[:80]
            assert answer.count(b"HTTP/1.1 ") == 1
            assert b"Connection: close" in answer
        for _ in range(limits.HANDSHAKE_BURST_PER_IP + 2):  # spend the bucket: 429
            answer, closed = await asyncio.to_thread(_exchange, b.port, REFUSED, "127.0.0.9")
            assert closed
        assert answer.startswith(b"HTTP/1.1 429")
        await wait_for(lambda: b.daemon.transport.guard.open == 0, timeout=2)
        assert b.daemon.transport.guard.per_ip == {}
    finally:
        await b.stop()


async def test_connections_count_from_accept_even_if_they_send_nothing(tmp_path: Path) -> None:
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand", handshake_deadline=1.0)
    held = []
    try:
        for _ in range(limits.MAX_CONNECTIONS_PER_IP):
            held.append(socket.create_connection(("127.0.0.1", b.port), timeout=ANSWERED))
        guard = b.daemon.transport.guard
        await wait_for(lambda: guard.per_ip.get("127.0.0.1") == limits.MAX_CONNECTIONS_PER_IP)
        answer, closed = await asyncio.to_thread(_exchange, b.port, REFUSED)
        assert (answer, closed) == (b"", True)  # closed at accept, nothing read
        # The deadline closes the silent ones, and the address may connect again.
        await wait_for(lambda: guard.open == 0, timeout=3)
        answer, closed = await asyncio.to_thread(_exchange, b.port, REFUSED)
        assert answer.startswith(b"HTTP/1.1 400")
        assert closed
    finally:
        for sock in held:
            sock.close()
        await b.stop()


async def test_the_total_cap_refuses_at_accept(tmp_path: Path) -> None:
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    b.daemon.transport.guard.cap = 3
    held = []
    try:
        for source in sources(3):
            held.append(
                socket.create_connection(
                    ("127.0.0.1", b.port), timeout=ANSWERED, source_address=(source, 0)
                )
            )
        await wait_for(lambda: b.daemon.transport.guard.open == 3)
        answer, closed = await asyncio.to_thread(_exchange, b.port, REFUSED, "127.0.0.200")
        assert (answer, closed) == (b"", True)
    finally:
        for sock in held:
            sock.close()
        await b.stop()


def test_the_connection_cap_stays_under_the_descriptor_limit() -> None:
    assert limits.connection_cap(256) == 64
    assert limits.connection_cap(1024) == 448
    assert limits.connection_cap(1 << 20) == limits.MAX_CONNECTIONS
    assert limits.connection_cap(16) == limits.MAX_CONNECTIONS_PER_IP
    for nofile in (256, 512, 1024, 4096):
        cap = limits.connection_cap(nofile)
        assert cap + limits.ACCEPT_BACKLOG + limits.FD_RESERVE <= nofile


async def test_per_address_state_is_bounded(tmp_path: Path) -> None:
    b: Running = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    guard = b.daemon.transport.guard
    guard.buckets = Buckets(size=16)
    try:
        for source in sources(40):
            await asyncio.to_thread(_exchange, b.port, REFUSED, source)
        assert len(guard.buckets) == 16
        await wait_for(lambda: guard.open == 0, timeout=2)
        assert guard.per_ip == {}  # counters live only while connections do
    finally:
        await b.stop()


def test_buckets_forget_the_least_recently_seen_address() -> None:
    buckets = Buckets(size=3)
    for ip in ("a", "b", "c"):
        buckets.take(ip)
    for _ in range(limits.HANDSHAKE_BURST_PER_IP):
        buckets.take("a")
    assert not buckets.take("a")  # "a" spent its burst and is the most recent
    buckets.take("d")  # forgets "b", the least recent
    assert len(buckets) == 3
    assert not buckets.take("a")


def test_repeated_log_lines_are_summarised_without_tracebacks() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("pli.test.throttle")
    logger.propagate = False
    handler = Keep()
    logger.addHandler(handler)
    throttle = Throttle(burst=3, interval=0.2)
    logger.addFilter(throttle)
    try:
        for index in range(50):
            try:
                raise ConnectionResetError("reset by peer")
            except ConnectionResetError:
                logger.exception("a client from %s misbehaved", f"10.0.0.{index}")
        assert len(records) == 3
        assert all(record.exc_info is None for record in records)
        assert "ConnectionResetError: reset by peer" in records[0].getMessage()
        time.sleep(0.25)
        logger.warning("a client from %s misbehaved", "10.0.0.99")
        assert "47 more like this" in records[-1].getMessage()
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(throttle)
