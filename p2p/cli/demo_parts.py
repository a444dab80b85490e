"""The pieces of ``pli demo`` (``demo.py``): its narrator, its two practices, a tiny PDF.

``Narrator`` prints: rich on a terminal, plain text otherwise, one JSON object per
line with ``--json``. ``Practice`` is one demo practice: a temporary home made
with the same modules as ``pli init`` and its ``pli daemon`` process
(``daemon/harness.py``). ``tiny_pdf`` makes the demo's ECG, with no dependency.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2p.cli.client import Client
from p2p.errors import PliError

if TYPE_CHECKING:
    from p2p.daemon.harness import DaemonProcess

STEP_TIMEOUT = 20.0  # seconds any single step may take before the demo gives up
LOOPBACK_CONFIG = """\
# pli demo: discovery and the peer port stay on loopback, never on the real network.
discovery = true
interfaces = ["127.0.0.1"]
retry_min = 0.2
retry_max = 2.0
"""
PATIENT: dict[str, Any] = {
    "patient_name": "DUPONT, Jeanne",
    "birthdate": "1955-08-14",
    "sex": "F",
    "ins": "2 55 08 14 168 025 38",
}


class Narrator:
    """Numbered steps, each with a title, some text and details."""

    def __init__(self, *, json_lines: bool) -> None:
        from p2p.cli.render import Output

        self.out = Output(json_lines=json_lines)
        self.number = 0
        self.console: Any = None
        if self.out.tty:
            from rich.console import Console

            self.console = Console(highlight=False)

    def step(self, title: str, text: str = "", **data: Any) -> None:
        self.number += 1
        if self.out.json:
            self.out.emit({"step": self.number, "title": title, "text": text, **data})
            return
        if self.console is not None:
            from rich.text import Text

            self.console.print()
            self.console.rule(Text(f"{self.number}. {title}", style="bold cyan"), align="left")
            if text:
                self.console.print(Text(text))
            return
        self.out.line(f"\n== {self.number}. {title} ==")
        if text:
            self.out.line(text)

    def detail(self, text: str, **data: Any) -> None:
        if self.out.json:
            self.out.emit({"step": self.number, "detail": text, **data})
        elif self.console is not None:
            from rich.text import Text

            self.console.print(Text(f"  {text}"))
        else:
            self.out.line(f"  {text}")

    def command(self, line: str) -> None:
        """What a person would type for this step."""
        if self.out.json:
            return
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(f"  $ {line}", style="dim"))
        else:
            self.out.line(f"  $ {line}")

    def table(self, headers: list[str], rows: list[list[object]], empty: str) -> None:
        if not self.out.json:
            self.out.table(headers, rows, empty=empty)


class Practice:
    """One demo practice: a temporary home and its ``pli daemon`` process."""

    def __init__(self, root: Path, key: str, **profile: str) -> None:
        self.home = root / key
        self.key = key
        self.profile = profile
        self.name = profile["name"]
        self.daemon: DaemonProcess | None = None
        self.port = 0
        self.client = Client(self.home)
        self.fingerprint = ""

    def create(self) -> None:
        from p2p.storage import config, keystore

        self.home.mkdir(mode=0o700)
        (self.home / config.CONFIG_FILE).write_text(LOOPBACK_CONFIG, encoding="utf-8")
        keys = keystore.create(self.home, passphrase=None)
        config.save_profile(self.home, **self.profile)
        self.fingerprint = keys.identity.peer_id.fingerprint

    def start(self) -> None:
        from p2p.daemon.harness import DaemonNotReady, DaemonProcess

        env = {k: v for k, v in os.environ.items() if k not in ("PLI_HOME", "PLI_PASSPHRASE")}
        # Its own session: Ctrl-C reaches the demo, which stops the daemon cleanly.
        self.daemon = DaemonProcess(self.home, env=env, new_session=True)
        try:
            self.port = self.daemon.start(timeout=STEP_TIMEOUT).port
        except DaemonNotReady as exc:
            if exc.exited:
                log = self.daemon.log_text()[-1500:]
                raise PliError(f"{self.name}'s daemon stopped at start:\n{log}") from None
            raise PliError(
                f"The demo gave up waiting for {self.name}'s daemon to start "
                f"after {STEP_TIMEOUT:.0f} s."
            ) from None

    def log(self) -> str:
        return self.daemon.log_text() if self.daemon is not None else ""

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


def wait_for(probe: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
    """Call ``probe`` until it returns something true; give up after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise PliError(f"The demo gave up waiting for {what} after {timeout:.0f} s.")
        time.sleep(0.1)


def tiny_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF (A4, Helvetica) showing ``lines``; no dependency."""

    def text(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " T* ".join(f"({text(line)}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 16 TL 72 770 Td {shown} ET".encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)
