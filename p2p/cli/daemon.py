"""``pli daemon``: the daemon in the foreground, as systemd runs it.

It works on the home folder directly: it refuses to start next to a daemon that
already answers on the home's socket, makes the home private, creates an
identity on a first start, then runs ``daemon.core.Daemon`` under
``daemon.process.run_daemon`` with the local API and the practice's page, and
prints its ready line (a JSON object with ``--json``) once it listens. A peer
port that cannot be opened is said in a sentence, never a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from p2p.cli.app import State, passphrase
from p2p.errors import PliError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from p2p.daemon.core import Daemon, Started
    from p2p.daemon.process import LocalApi
    from p2p.storage.keystore import Keys


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where peers reach this daemon (default 0.0.0.0:7717; port 0 picks one).",
)
@click.pass_obj
def daemon(state: State, listen: str | None) -> None:
    """Run the daemon in the foreground (systemd runs this).

    Creates an identity on first start if there is none (named after this computer;
    `pli init` lets you choose the name). Logs go to stderr and never contain
    document contents or patient data.
    """
    import asyncio
    import contextlib
    import logging

    from p2p.storage import config

    home = state.home
    settings = config.load(home, listen=listen)
    _refuse_second_daemon(state)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    keys = _open_home(home)

    from p2p.daemon.core import Daemon
    from p2p.daemon.process import run_daemon

    # Ctrl-C before the daemon's own signal handlers are set: stop quietly.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            daemon = Daemon(settings, keys)
            asyncio.run(run_daemon(daemon, _start_api_and_page, _say_ready(state, home)))
        except OSError as exc:
            error = _listen_error(exc, settings.listen)
            if error is exc:
                raise
            raise error from exc


class _ApiAndPage:
    """The local API and the practice's page (``p2p/web``), cleaned up together."""

    def __init__(self, api: LocalApi, page: LocalApi | None) -> None:
        self.api, self.page = api, page

    async def cleanup(self) -> None:
        if self.page is not None:
            await self.page.cleanup()
        await self.api.cleanup()


async def _start_api_and_page(daemon: Daemon) -> LocalApi:
    """Start the local API, then the page on ``web_listen`` (not fatal if its port is taken)."""
    from p2p.api.server import start_api
    from p2p.web.serve import start_page

    api = await start_api(daemon)
    return _ApiAndPage(api, await start_page(daemon))


def _open_home(home: Path) -> Keys:
    """The home's keys, the home made private first; on a first start, a new identity
    named after this computer."""
    import logging
    import socket

    from p2p.storage import config, keystore
    from p2p.storage.files import private_home

    log = logging.getLogger("pli.cli")
    note = private_home(home)
    if note is not None:
        log.warning("%s", note)
    if keystore.exists(home):
        keys = keystore.load(home, passphrase=passphrase())
        config.load_profile(home)  # a damaged profile is said now, not at the first pairing
        return keys
    keys = keystore.create(home, passphrase=passphrase())
    if not config.load_profile(home).get("name"):
        config.save_profile(home, name=socket.gethostname())
    from p2p.cli.revocation import write_certificate

    written = write_certificate(home, keys, str(config.load_profile(home).get("name")))
    log.info("created a new identity for this practice; name it with `pli init` next time")
    log.info("its revocation certificate is in %s: print it and keep it safe", written.text)
    return keys


def _say_ready(state: State, home: Path) -> Callable[[Started], None]:
    """What ``pli daemon`` prints on stdout once it listens (a JSON line with --json)."""
    import json

    def on_ready(started: Started) -> None:
        if state.json:
            line = json.dumps(
                {
                    "event": "ready",
                    "fingerprint": started.fingerprint,
                    "port": started.peer_port,
                    "home": str(home),
                }
            )
        else:
            line = f"pli daemon ready: {started.fingerprint} on port {started.peer_port}"
        click.echo(line)
        sys.stdout.flush()

    return on_ready


def _listen_error(exc: OSError, listen: str) -> OSError | PliError:
    """The sentence for a peer port that cannot be opened; other OS errors are bugs."""
    import errno

    port = listen.rpartition(":")[2]
    if exc.errno == errno.EADDRINUSE:
        return PliError(
            f"Port {port} is already used by another program (maybe another pli "
            "daemon). Choose another with --listen HOST:PORT."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return PliError(
            f"This computer has no network address {listen.rpartition(':')[0]}. "
            "Check --listen (or leave it out to listen on every network)."
        )
    if exc.errno == errno.EACCES:
        return PliError(
            f"Not allowed to listen on port {port} (ports below 1024 need "
            "administrator rights). Choose another with --listen HOST:PORT."
        )
    return exc


def _refuse_second_daemon(state: State) -> None:
    """Two daemons on one home would fight over its socket and database."""
    try:
        state.client.get("/v1/status", timeout=2.0)
    except PliError:
        return
    raise PliError(
        f"A pli daemon is already running for {state.home}. Stop it first, or use another --home."
    )
