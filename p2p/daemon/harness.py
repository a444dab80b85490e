"""Start a ``pli daemon`` process in a home and wait until it is ready.

The one harness for a daemon in a process of its own: ``pli demo`` runs its
two practices with it, and so do the tests that stop, kill or isolate daemons
and the benchmarks (through ``cli/practice.py``'s ``PracticeProcess``, the
CLI, flow and namespace tests' own subclasses, and bench/transfer.py).
Readiness is the daemon's own word: with ``--json`` it prints one line,
``{"event": "ready", "port": ..., "fingerprint": ...}``, once its peer port
and its local API are both open, so nothing polls.

The daemon's log (stderr) goes to a file beside the home; its stdout stays a
pipe held by this object until ``stop`` (the ready line is all it prints).

``open_daemon`` is the in-process counterpart (the tests' fixtures and
bench/pairing.py): a ``Daemon`` for a home, created if new, not yet started.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from p2p.errors import PliError

if TYPE_CHECKING:
    from p2p.daemon.core import Daemon

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: What the tests, the demo and the benchmarks run with unless they say otherwise:
#: no mDNS (loopback only), quick retries, the page on any free loopback port.
TEST_SETTINGS: Mapping[str, object] = {
    "discovery": False,
    "retry_min": 0.2,
    "retry_max": 1.0,
    "web_listen": "127.0.0.1:0",  # the page on a free port: several daemons, one machine
}


class DaemonNotReady(PliError):
    """The daemon exited (``exited``), or did not say it was ready in time.

    The end of its log is in the message.
    """

    def __init__(self, message: str, *, exited: bool = False) -> None:
        super().__init__(message)
        self.exited = exited


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (for a daemon that must come back at the same port)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def pli_command(home: Path, *args: str) -> list[str]:
    """``pli --home HOME ARGS`` run by this interpreter (the checkout or venv in use)."""
    return [sys.executable, "-m", "p2p", "--home", str(home), *args]


def prepare_home(
    home: Path,
    name: str,
    *init_args: str,
    settings: Mapping[str, object] = TEST_SETTINGS,
    env: Mapping[str, str] | None = None,
) -> None:
    """A new home: ``config.toml`` from ``settings``, then ``pli init --name NAME ...``."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [f"{key} = {json.dumps(v)}\n" for key, v in settings.items() if not isinstance(v, dict)]
    for table, values in settings.items():  # a dict is a [table] (e.g. [folders]), last
        if isinstance(values, dict):
            lines += [f"[{table}]\n", *(f"{k} = {json.dumps(v)}\n" for k, v in values.items())]
    (home / "config.toml").write_text("".join(lines), encoding="utf-8")
    subprocess.run(  # noqa: S603 - our own interpreter and module
        pli_command(home, "init", "--name", name, *init_args),
        check=True,
        capture_output=True,
        env=None if env is None else dict(env),
        timeout=60,
    )


def open_daemon(home: Path, name: str, listen: str = "127.0.0.1:0", **settings: Any) -> Daemon:
    """Keys and profile in ``home`` if it is new, then its ``Daemon`` (not started).

    Blocking (key files, the database): call it before the event loop runs or
    in a worker thread. ``settings`` override ``TEST_SETTINGS``.
    """
    from p2p.daemon.core import Daemon
    from p2p.storage import config, keystore

    if not keystore.exists(home):
        keystore.create(home)
        config.save_profile(home, name=name)
    values = {**TEST_SETTINGS, **settings}
    return Daemon(config.load(home, listen=listen, **values), keystore.load(home))


@dataclass(frozen=True)
class Ready:
    port: int
    fingerprint: str


class DaemonProcess:
    """One ``pli daemon`` process for ``home``: ``start`` waits until it is ready.

    ``wrapper`` prefixes the command (``["ip", "netns", "exec", NAME]``);
    ``new_session`` keeps a Ctrl-C in the terminal from reaching the daemon, so
    the program that started it stops it in order.
    """

    def __init__(
        self,
        home: Path,
        *,
        listen: str = "127.0.0.1:0",
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        wrapper: Sequence[str] = (),
        new_session: bool = False,
    ) -> None:
        self.home = home
        self.listen = listen
        self.log = log if log is not None else home.parent / f"{home.name}.log"
        self.env = None if env is None else dict(env)
        self.wrapper = list(wrapper)
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: Ready | None = None

    @property
    def port(self) -> int:
        """The peer port: the one the daemon reported, else the fixed one asked for."""
        if self.ready is not None:
            return self.ready.port
        port = int(self.listen.rpartition(":")[2])
        if port == 0:
            raise DaemonNotReady(f"The daemon for {self.home} is not started.")
        return port

    @property
    def address(self) -> str:
        return f"{self.listen.rpartition(':')[0]}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> Ready:
        """Start the daemon and return once it said it is ready; raise ``DaemonNotReady``."""
        (self.home / "api.sock").unlink(missing_ok=True)  # a stale one from a killed daemon
        argv = [*self.wrapper, *pli_command(self.home, "--json", "daemon", "--listen", self.listen)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                start_new_session=self.new_session,
            )
        try:
            self.ready = self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self.ready

    def _wait_ready(self, timeout: float) -> Ready:
        assert self.proc is not None
        assert self.proc.stdout is not None
        line, closed = _read_line(self.proc.stdout, time.monotonic() + timeout)
        try:
            event = json.loads(line)
            if event.get("event") == "ready":
                return Ready(int(event["port"]), str(event["fingerprint"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if closed or line:  # it closed its stdout, or said something else: it is exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT)
        exited = self.proc.poll() is not None
        state = "stopped" if exited else "was not ready in time"
        said = f"{line}\n" if line else ""
        raise DaemonNotReady(
            f"The daemon for {self.home} {state}:\n{said}{self.log_tail()}", exited=exited
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, as systemd does; SIGKILL if it is not gone after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the power cut (nothing is flushed or cleaned up)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
            self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, size: int = 2000) -> str:
        return self.log_text()[-size:]


def _read_line(stream: IO[bytes], deadline: float) -> tuple[str, bool]:
    """One line from a pipe, or what came before the deadline; and whether it closed."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                break
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                return data.decode(errors="replace"), True
            data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace"), False
