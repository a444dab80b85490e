"""A real ``nats-server`` on a loopback port, started by the tests themselves.

The configuration is the one ``pli mailbox server-config`` prints, for members
made in temporary homes. ``.ci/run`` installs the server (Debian's
``nats-server``); on a developer machine without it the tests skip, in CI they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from p2p.cli.practice import PracticeProcess as DaemonProcess
from p2p.cli.practice import kill_all, wait_until
from p2p.daemon.harness import free_port

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS


def nats_binary() -> str:
    path = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("nats-server is not installed: .ci/run must apt-get install it")
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    return path


class NatsServer:
    """One server process with a configuration text; ``url`` is on 127.0.0.1."""

    def __init__(self, folder: Path, config: str, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = f"nats://127.0.0.1:{port}"
        self.config_path = folder / "nats.conf"
        self.config_path.write_text(config)
        self.log = folder / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsServer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [nats_binary(), "-c", str(self.config_path)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            if "Server is ready" in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        raise RuntimeError("nats-server did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stored_bytes(self) -> bytes:
        """Everything the server wrote under its store folder (to search it)."""
        found = b""
        for path in sorted((self.folder / "store").rglob("*")):
            if path.is_file():
                found += path.read_bytes()
        return found


def server_for(folder: Path, members: list[str], quota_gb: int = 1) -> NatsServer:
    """A server configured by ``pli mailbox server-config`` for ``members`` (member keys)."""
    from p2p.services.mailbox import server_config

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    text = server_config.render(
        [server_config.Member.parse(m) for m in members],
        listen=f"127.0.0.1:{port}",
        store_dir=str(folder / "store"),
        quota_gb=quota_gb,
    )
    return NatsServer(folder, text, port)


def cluster_for(folder: Path, members: list[str], nodes: int = 3) -> list[NatsServer]:
    """``nodes`` servers on loopback, one cluster, each configured by ``server-config``."""
    from p2p.services.mailbox import server_config

    ports = [(free_port(), free_port()) for _ in range(nodes)]
    servers = []
    for index, (port, route_port) in enumerate(ports):
        routes = tuple(
            f"nats-route://127.0.0.1:{r}" for i, (_, r) in enumerate(ports) if i != index
        )
        node = folder / f"node{index}"
        node.mkdir(parents=True, exist_ok=True)
        text = server_config.render(
            [server_config.Member.parse(m) for m in members],
            listen=f"127.0.0.1:{port}",
            store_dir=str(node / "store"),
            quota_gb=1,
            server_name=f"pli-node{index}",
            cluster=server_config.Cluster("pli-test", f"127.0.0.1:{route_port}", routes),
        )
        servers.append(NatsServer(node, text, port))
    return servers


def messages_in(server: NatsServer | str, seed: str) -> int:
    """How many messages wait in the mailbox of the member whose nkey seed is ``seed``."""
    import nats.errors

    url = server.url if isinstance(server, NatsServer) else server
    for _ in range(20):  # a cluster that lost a node answers once it chose new leaders
        try:
            return asyncio.run(_messages_in(url.split(","), seed))
        except nats.errors.TimeoutError:
            time.sleep(0.5)
    raise AssertionError("the mailbox server did not answer")


def copies_of_mailbox(server: NatsServer | str, seed: str) -> int:
    """How many nodes of a cluster keep the mailbox of the member with nkey ``seed``."""
    url = server.url if isinstance(server, NatsServer) else server
    info = asyncio.run(_stream_info(url.split(","), seed))
    return 0 if info is None else info.config.num_replicas or 1


async def _messages_in(url: list[str], seed: str) -> int:
    info = await _stream_info(url, seed)
    return 0 if info is None else info.state.messages


async def _stream_info(url: list[str], seed: str) -> Any:
    import nats
    import nats.js.errors

    from p2p.services.mailbox.stream import STREAM

    client = await nats.connect(url, nkeys_seed_str=seed, allow_reconnect=False)
    try:
        return await client.jetstream().stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await client.close()


async def connect_member(server: NatsServer, home: Path) -> NATS:
    """A plain NATS client signed in with the nkey of the practice at ``home``
    (no reconnection, connection errors kept quiet: a test reads what it refuses)."""
    import nats

    from p2p.storage import mailboxes

    async def quiet(*_args: object) -> None:
        pass

    seed = await asyncio.to_thread(mailboxes.nkey_seed, home)
    return await nats.connect(
        server.url, nkeys_seed_str=seed, error_cb=quiet, allow_reconnect=False
    )


def member_key(daemon: DaemonProcess) -> str:
    """``pli mailbox key`` of a practice (its daemon need not run)."""
    key: str = json.loads(daemon.pli("--json", "mailbox", "key").stdout)["member"]
    return key


def mailbox_state(daemon: DaemonProcess) -> str:
    rows = daemon.client.get("/v1/mailboxes")
    return str(rows[0]["state"]) if rows else "none"


@contextlib.contextmanager
def mailbox_pair(
    folder: Path, **settings: Any
) -> Iterator[tuple[DaemonProcess, DaemonProcess, NatsServer]]:
    """Two paired daemons, both members of one real server and connected to it."""
    a = DaemonProcess(folder / "a", "Dr A", **settings)
    b = DaemonProcess(folder / "b", "Dr B", **settings)
    server = server_for(folder / "nats", [member_key(a), member_key(b)]).start()
    try:
        for daemon in (a, b):
            daemon.start()
            daemon.pli("mailbox", "add", server.url)
        a.trust(b)
        b.trust(a)
        for daemon in (a, b):
            wait_until(lambda d=daemon: mailbox_state(d) == "connected", timeout=20)
        yield a, b, server
    finally:
        kill_all(a, b)
        server.stop()


def restrict_mailbox(server: NatsServer, seed: str, box: str, **limits: float) -> None:
    """Recreate the stream of ``box`` (its member's ``seed``) with tighter limits, as its
    daemon would with other values (``stream.stream_config``): the daemon must be down."""
    asyncio.run(_restrict_mailbox(server.url, seed, box, limits))


async def _restrict_mailbox(url: str, seed: str, box: str, limits: dict[str, float]) -> None:
    import nats

    from p2p.services.mailbox.stream import STREAM, stream_config

    client = await nats.connect(url, nkeys_seed_str=seed, allow_reconnect=False)
    try:
        js = client.jetstream()
        await js.delete_stream(STREAM)
        await js.add_stream(stream_config(box, 1, **limits))  # type: ignore[arg-type]
    finally:
        await client.close()
