"""``pli demo``: two practices on this machine, narrated step by step for a newcomer.

``run_demo`` creates two temporary homes (Dr Claire Martin, GP; Dr Karim Benali,
cardiologist), starts a real ``pli daemon`` process for each on a free loopback
port (``--listen 127.0.0.1:0``, and ``interfaces = ["127.0.0.1"]`` in their
config.toml: nothing is ever announced on the machine's real network), pairs them
with a one-time code found by mDNS on loopback, sends a letter with a PDF and a
prescription, waits for the signed receipts, exports and verifies on the other
side, and sends the specialist's answer back. It talks to the daemons through the
same local API and the same modules as the commands. Whatever happens (an error,
Ctrl-C, SIGTERM) both daemons are stopped and both homes deleted.

The narrator and the practices are in ``demo_parts.py``, the steps after start-up
in ``demo_steps.py``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p2p.cli import demo_steps as steps
from p2p.cli.demo_parts import Narrator, Practice


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C does: through the clean-up."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(*, json_lines: bool = False) -> None:
    """Run the whole demo; raises ``PliError`` if a step fails. Always cleans up."""
    say = Narrator(json_lines=json_lines)
    root = Path(tempfile.mkdtemp(prefix="pli-demo-"))  # short: a socket path fits in 108 bytes
    gp = Practice(
        root,
        "martin",
        name="Dr Claire Martin",
        profession="médecin généraliste",
        rpps="10101234567",
        practice="Cabinet médical des Tilleuls, Lyon",
    )
    cardio = Practice(
        root,
        "benali",
        name="Dr Karim Benali",
        profession="cardiologue",
        rpps="10107654321",
        practice="Cabinet de cardiologie, Villeurbanne",
    )
    started = time.monotonic()
    try:
        with _stopped_by_sigterm():
            _story(say, root, gp, cardio)
    finally:
        for practice in (gp, cardio):
            practice.stop()
        shutil.rmtree(root, ignore_errors=True)
    say.step(
        "Clean up",
        "Both daemons are stopped and both temporary practices deleted. The demo took "
        f"{time.monotonic() - started:.1f} s. Start for real with `pli init` (see README).",
        seconds=round(time.monotonic() - started, 1),
    )


def _story(say: Narrator, root: Path, gp: Practice, cardio: Practice) -> None:
    say.step(
        "Two practices",
        "Each practice has its own folder holding its keys, profile and documents. Here two "
        f"temporary ones under {root}: a GP in Lyon and a cardiologist in Villeurbanne.",
        home_gp=str(gp.home),
        home_cardio=str(cardio.home),
    )
    for practice in (gp, cardio):
        practice.create()
        p = practice.profile
        say.command(
            f'pli --home {practice.home} init --name "{p["name"]}" '
            f'--profession "{p["profession"]}" --rpps {p["rpps"]}'
        )
        say.detail(
            f"{practice.name}: fingerprint {practice.fingerprint}",
            name=practice.name,
            fingerprint=practice.fingerprint,
        )
    say.detail("A fingerprint identifies a practice's key: print it on your letterhead.")

    say.step(
        "Start both daemons",
        "A daemon runs on each practice's computer (as a service, usually). Here each one "
        "listens on 127.0.0.1 only and announces itself by mDNS on loopback only: nothing "
        "of this demo reaches your network.",
    )
    for practice in (gp, cardio):
        practice.start()
        say.command(f"pli --home {practice.home} daemon --listen 127.0.0.1:0")
        say.detail(
            f"{practice.name}'s daemon is up, peer port {practice.port}.",
            name=practice.name,
            port=practice.port,
        )

    steps.pair(say, gp, cardio)
    letter_id, prescription_id = steps.send(say, root, gp, cardio)
    steps.receipts(say, gp, [letter_id, prescription_id])
    steps.inbox(say, cardio)
    steps.export_and_verify(say, root, cardio, letter_id, prescription_id)
    steps.reply(say, root, gp, cardio, letter_id)
