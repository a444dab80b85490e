"""Separate ``pli daemon`` processes in temporary homes, for tests that kill them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from p2p.cli.client import Client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Set RLIMIT_NOFILE (soft and hard) to argv[1], then exec python with the rest.
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


class DaemonProcess:
    """One practice: a home, a fixed loopback port, and a ``pli daemon`` process."""

    def __init__(self, home: Path, name: str, *, nofile: int | None = None, **settings: Any):
        self.home = home
        self.name = name
        self.nofile = nofile  # a lower RLIMIT_NOFILE (soft and hard) for the daemon process
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._identity: dict[str, Any] | None = None
        self.log = home.parent / f"{home.name}.log"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        values = {"discovery": False, "retry_min": 0.2, "retry_max": 1.0, **settings}
        lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        (home / "config.toml").write_text("\n".join(lines) + "\n")
        self.pli("init", "--name", name)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "p2p", "--home", str(self.home), *args],
            capture_output=True, text=True, check=check, timeout=60,
        )  # fmt: skip

    def start(self) -> DaemonProcess:
        socket_path = self.home / "api.sock"
        socket_path.unlink(missing_ok=True)
        command = [sys.executable, "-m", "p2p", "--home", str(self.home), "daemon",
                   "--listen", self.address]  # fmt: skip
        if self.nofile is not None:  # the same process (exec) under a lower limit
            command = [sys.executable, "-c", _LIMITED, str(self.nofile), *command[1:]]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            if socket_path.exists():
                try:
                    self.client.get("/v1/status")
                    return self
                except Exception:
                    pass
            time.sleep(0.05)
        raise RuntimeError("daemon did not become ready")

    def open_fds(self) -> int:
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    @property
    def client(self) -> Client:
        return Client(self.home)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

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
        if daemon.proc is not None and daemon.proc.poll() is None:
            os.kill(daemon.proc.pid, signal.SIGKILL)
            daemon.proc.wait(10)
