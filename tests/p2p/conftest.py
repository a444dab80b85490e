"""Fixtures: real daemons in temporary homes on loopback ports."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from p2p.api.server import start_api
from p2p.cli.practice import PracticeProcess, paired, wait_until
from p2p.daemon import harness
from p2p.daemon.core import Daemon

from .fake_api import fake_api  # noqa: F401 - a fixture for the CLI tests


@dataclass
class Running:
    daemon: Daemon
    task: asyncio.Task[None]
    home: Path
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connector = aiohttp.UnixConnector(path=str(self.daemon.config.api_socket))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, f"http://pli{path}", json=body) as response,
        ):
            return response.status, await response.json()

    async def stop(self) -> None:
        self.daemon.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_daemon(home: Path, name: str, port: int = 0, **settings: Any) -> Running:
    daemon = await asyncio.to_thread(
        harness.open_daemon, home, name, f"127.0.0.1:{port}", **settings
    )
    started = await daemon.start()
    runner = await start_api(daemon)

    async def run() -> None:
        try:
            await daemon.run()
        finally:
            await runner.cleanup()

    return Running(daemon, asyncio.create_task(run()), home, started.peer_port)


async def pair(a: Running, b: Running) -> None:
    """Trust each other by card (what the pairing commands do after PAKE)."""
    await a.daemon.add_peer(b.daemon.signed_card(), [b.address])
    await b.daemon.add_peer(a.daemon.signed_card(), [a.address])


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[Running, Running]]:
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    await pair(a, b)
    yield a, b
    await a.stop()
    await b.stop()


@pytest.fixture
async def three(tmp_path: Path) -> AsyncIterator[tuple[Running, Running, Running]]:
    """Bob paired with Alice and with Mallory (the peer names tests)."""
    a = await start_daemon(tmp_path / "a", "Dr Alice Martin")
    b = await start_daemon(tmp_path / "b", "Dr Bob Durand")
    m = await start_daemon(tmp_path / "m", "Dr Mallory Faux")
    await pair(a, b)
    await pair(m, b)
    yield a, b, m
    for running in (a, b, m):
        await running.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[PracticeProcess, PracticeProcess]]:
    """Two paired ``pli daemon`` processes; the second also signs read receipts."""
    a = PracticeProcess(tmp_path / "a", "Dr Alice Martin")
    b = PracticeProcess(tmp_path / "b", "Dr Bob Durand", receipts_read=True)
    with paired(a, b):
        yield a, b


def send_letters(a: PracticeProcess, b: PracticeProcess, folder: Path, count: int) -> list[str]:
    """``count`` short letters from ``a`` to ``b`` (lettre-N.txt in ``folder``), delivered."""
    ids = []
    for n in range(count):
        path = folder / f"lettre-{n}.txt"
        path.write_text(f"Compte rendu {n}.\n", encoding="utf-8")
        ids.append(a.send(b, path, kind="letter"))
    wait_until(lambda: all(a.outbox_state(doc) == "delivered" for doc in ids), 30)
    return ids


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
