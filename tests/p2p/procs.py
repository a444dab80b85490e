"""Separate ``pli daemon`` processes in temporary homes, for tests that kill them.

The process itself is ``p2p.daemon.harness`` (shared with ``pli demo`` and the
benchmarks); this adds a fixed port per practice and the API calls the tests use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from p2p.cli.client import Client
from p2p.daemon import harness


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Set RLIMIT_NOFILE (soft and hard) to argv[1], then exec the command that follows.
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


class DaemonProcess(harness.DaemonProcess):
    """One practice: a home, a fixed loopback port, and a ``pli daemon`` process.

    ``nofile``: a lower RLIMIT_NOFILE (soft and hard) for the daemon process (the
    same process, exec'd under the limit).
    """

    def __init__(self, home: Path, name: str, *, nofile: int | None = None, **settings: Any):
        wrapper = [] if nofile is None else [sys.executable, "-c", _LIMITED, str(nofile)]
        super().__init__(home, listen=f"127.0.0.1:{free_port()}", wrapper=wrapper)
        self.name = name
        self.nofile = nofile
        self._identity: dict[str, Any] | None = None
        harness.prepare_home(home, name, settings={**harness.TEST_SETTINGS, **settings})

    def pli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            harness.pli_command(self.home, *args),
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self, timeout: float = 20.0) -> DaemonProcess:  # type: ignore[override]
        super().start(timeout)
        return self

    def open_fds(self) -> int:
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    @property
    def client(self) -> Client:
        return Client(self.home)

    def kill9(self) -> None:
        self.kill()

    def stop(self) -> int:  # type: ignore[override]
        return super().stop() or 0

    def logs(self) -> str:
        return self.log_text()

    def identity(self) -> dict[str, Any]:
        """Our public identity (asked once, so it is known while the daemon is down)."""
        if self._identity is None:
            self._identity = self.client.get("/v1/identity")
        return self._identity

    def trust(self, other: DaemonProcess) -> None:
        self.client.post("/v1/peers", {"card": other.identity()["card"], "address": other.address})

    def send(self, to: DaemonProcess, path: Path, kind: str = "file") -> str:
        body = {"to": [to.identity()["peer_id"]], "kind": kind, "files": [{"path": str(path)}]}
        doc_id: str = self.client.post("/v1/documents", body)["id"]
        return doc_id

    def outbox_state(self, doc_id: str) -> str | None:
        states = [e["state"] for e in self.client.get("/v1/outbox") if e["id"] == doc_id]
        return states[0] if states else None

    def inbox_ids(self) -> list[str]:
        return [e["id"] for e in self.client.get("/v1/inbox")]


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def kill_all(*daemons: DaemonProcess) -> None:
    for daemon in daemons:
        daemon.kill()
