"""A practice in a ``pli daemon`` process of its own, driven through its local API.

For the tests that stop, kill or starve daemons and for the benchmarks (soak,
storm, flood): ``PracticeProcess`` is ``daemon/harness.py``'s process with a
home made by ``pli init``, a fixed loopback port (a restarted daemon comes back
where its peers expect it), an optional lower descriptor limit, and the few API
calls they make (trust a peer, send a file, read the outbox and the inbox). It
lives in ``cli/`` because it speaks to the daemon with the CLI's ``Client``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from p2p.cli.client import Client
from p2p.daemon import harness

#: Set RLIMIT_NOFILE (soft and hard) to argv[1], then exec the command that follows.
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


class PracticeProcess(harness.DaemonProcess):
    """One practice: a home, a fixed loopback port, and a ``pli daemon`` process.

    ``nofile``: a lower RLIMIT_NOFILE (soft and hard) for the daemon process (the
    same process, exec'd under the limit). ``settings`` override
    ``harness.TEST_SETTINGS`` in its config.toml.
    """

    def __init__(self, home: Path, name: str, *, nofile: int | None = None, **settings: Any):
        wrapper = [] if nofile is None else [sys.executable, "-c", _LIMITED, str(nofile)]
        super().__init__(home, listen=f"127.0.0.1:{harness.free_port()}", wrapper=wrapper)
        self.name = name
        self.nofile = nofile
        self._identity: dict[str, Any] | None = None
        harness.prepare_home(home, name, settings={**harness.TEST_SETTINGS, **settings})

    def pli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``pli --home HOME ARGS`` and return what it printed."""
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            harness.pli_command(self.home, *args),
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self, timeout: float = 20.0) -> PracticeProcess:  # type: ignore[override]
        """Start the daemon and wait for its ready line; returns itself."""
        super().start(timeout)
        return self

    def open_fds(self) -> int:
        """How many file descriptors the daemon process holds now (Linux /proc)."""
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

    def trust(self, other: PracticeProcess) -> None:
        """Add ``other`` as a paired peer from its signed card (no pairing ceremony)."""
        self.client.post("/v1/peers", {"card": other.identity()["card"], "address": other.address})

    def send(self, to: PracticeProcess, path: Path, kind: str = "file") -> str:
        """Queue ``path`` for ``to``; returns the document's id."""
        body = {"to": [to.identity()["peer_id"]], "kind": kind, "files": [{"path": str(path)}]}
        doc_id: str = self.client.post("/v1/documents", body)["id"]
        return doc_id

    def outbox_state(self, doc_id: str) -> str | None:
        states = [e["state"] for e in self.client.get("/v1/outbox") if e["id"] == doc_id]
        return states[0] if states else None

    def inbox_ids(self) -> list[str]:
        return [e["id"] for e in self.client.get("/v1/inbox")]


def wait_until(
    predicate: Callable[..., Any], timeout: float = 60.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def kill_all(*daemons: PracticeProcess) -> None:
    """SIGKILL every daemon still running (the clean-up of a test or a benchmark)."""
    for daemon in daemons:
        daemon.kill()


@contextlib.contextmanager
def paired(*practices: PracticeProcess) -> Iterator[None]:
    """Start each practice (if it is not running) and make each trust every other
    by card; SIGKILL them all at the end, whatever happened inside."""
    try:
        for practice in practices:
            if not practice.running:
                practice.start()
        for one, other in itertools.permutations(practices, 2):
            one.trust(other)
        yield
    finally:
        kill_all(*practices)
