"""The ``pli`` command (contract: ../shared/design/cli.md): the group, ``State``, exit codes.

Every command talks to the daemon through the local API (``client.py``) except
``init``, ``id``, ``daemon``, ``verify``, ``profile`` (shown), ``passphrase`` and
``web-user``, which work on the home folder or a file.

This module holds only what every command shares; the commands live in one module
per family and are imported when they are looked up (``COMMANDS`` below), so that
``pli status`` loads only ``setup.py``, ``pli --help`` none of them, and nothing imports
this module's importers:

- ``setup.py``: init, id, status, demo;
- ``daemon.py``: daemon (the daemon in the foreground);
- ``peers.py``: peers, peers add-card|remove;
- ``pairing.py``: pair invite|accept, peers add|pending|accept;
- ``documents.py``: send, prescribe (their shared work in ``sending.py``);
- ``documents_box.py``: inbox, outbox, show, export;
- ``mailbox.py``: mailbox key|add|remove|status|server-config (NATS mailboxes);
- ``verify.py``: verify;
- ``page.py``: open (the practice's page);
- ``profile.py``: profile, profile set, passphrase;
- ``webusers.py``: web-user, web-user set|remove (the page's sign-in on the network);
- ``revocation.py``: revoke (and the revocation notes other commands print);
- ``tokens.py``: api-token create|list|revoke (the local API's scoped tokens).

Rules kept here:

- start-up is fast: only click and light p2p modules are imported at the top of a
  command module; aiohttp, rich, nacl, ``protocol`` and the daemon are imported inside
  the commands that need them;
- one place turns failures into exit codes (``PliGroup.invoke``): ``PliError`` →
  its ``exit_code`` (1 user-facing, 3 daemon not running, 4 security), a protocol
  security failure → 4, bad usage → 2 (click). Never a traceback for those;
- ``--home`` / ``--json`` are accepted on the group and on every command;
- text that came from a peer is printed through ``render.clean``.

Adding a command: write it with ``@click.command()`` in its family's module, take the
``State`` with ``@click.pass_obj``, raise ``PliError`` subclasses for failures, and name
it with its short help in ``COMMANDS`` (or in its group's table, e.g.
``peers.PEERS_COMMANDS``): ``pli --help`` reads the table and imports no command.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p2p.errors import PliError

if TYPE_CHECKING:
    from p2p.cli.client import Client
    from p2p.cli.render import Output

# Command name -> ("module:attribute", short help for ``pli --help``); the module is
# imported the first time the command is looked up (``PliGroup``).
Lazy = dict[str, tuple[str, str | None]]
COMMANDS: Lazy = {
    "init": ("p2p.cli.setup:init", "Create this practice's identity (no daemon needed)."),
    "id": ("p2p.cli.setup:id_", "Show your name and fingerprint (no daemon needed)."),
    "daemon": ("p2p.cli.daemon:daemon", "Run the daemon in the foreground."),
    "status": ("p2p.cli.setup:status", "Is the daemon running? Peers online, documents waiting."),
    "open": ("p2p.cli.page:open_page", "Open the practice's page in the browser."),
    "profile": ("p2p.cli.profile:profile", "Show or change your profile (name, RPPS ...)."),
    "passphrase": ("p2p.cli.profile:passphrase", "Add, change or remove the keys' passphrase."),
    "web-user": ("p2p.cli.webusers:web_user", "Who signs in to the page over the network."),
    "peers": ("p2p.cli.peers:peers", "Your paired peers; pair by fingerprint, remove one."),
    "pair": ("p2p.cli.pairing:pair", "Pair with a colleague using a one-time code."),
    "send": ("p2p.cli.documents:send", "Send files to a peer, encrypted and signed."),
    "prescribe": ("p2p.cli.documents:prescribe", "Write, sign and send a structured prescription."),
    "inbox": ("p2p.cli.documents_box:inbox", "Documents received."),
    "outbox": ("p2p.cli.documents_box:outbox", "Documents sent, and their receipts."),
    "show": ("p2p.cli.documents_box:show", "Show a document: details, receipts, text."),
    "export": ("p2p.cli.documents_box:export", "Save a document's files into a folder."),
    "mailbox": ("p2p.cli.mailbox:mailbox", "Join or run a NATS mailbox, beyond the LAN."),
    "verify": ("p2p.cli.verify:verify", "Check an exported document or prescription offline."),
    "revoke": (
        "p2p.cli.revocation:revoke",
        "Tell every peer reachable to stop trusting an identity (lost laptop).",
    ),
    "api-token": (
        "p2p.cli.tokens:api_token",
        "Tokens that let other practice software use pli's local API.",
    ),
    "demo": (
        "p2p.cli.setup:demo",
        "Watch two practices on this machine pair and exchange documents.",
    ),
}


def passphrase() -> str | None:
    """The keys' passphrase from ``PLI_PASSPHRASE``, if set (``init``, ``id``, ``daemon``)."""
    return os.environ.get("PLI_PASSPHRASE") or None


class State:
    """What the group options decided, shared with every command (``ctx.obj``)."""

    def __init__(self) -> None:
        self.home_option: str | None = None
        self.json = False
        self._home: Path | None = None
        self._client: Client | None = None

    @property
    def home(self) -> Path:
        if self._home is None:
            from p2p.storage.config import resolve_home

            self._home = resolve_home(self.home_option)
        return self._home

    @property
    def client(self) -> Client:
        if self._client is None:
            from p2p.cli.client import Client

            self._client = Client(self.home)
        return self._client

    @property
    def out(self) -> Output:
        from p2p.cli.render import Output

        return Output(json_lines=self.json)


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(State).home_option = value


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).json = True


def _common_options() -> list[click.Option]:
    return [
        click.Option(
            ["--home"],
            metavar="DIR",
            expose_value=False,
            callback=_set_home,
            help="The practice's pli folder (default: $PLI_HOME, else your data folder).",
        ),
        click.Option(
            ["--json"],
            is_flag=True,
            expose_value=False,
            callback=_set_json,
            help="Print JSON Lines for scripts (one object per line, no colour).",
        ),
    ]


def _security_failure(exc: Exception) -> str | None:
    """The doctor-readable sentence for a protocol security failure, else None."""
    if "protocol" not in sys.modules:  # never imported: exc cannot be one of its errors
        return None
    from protocol import RemoteProtocolError

    if not isinstance(exc, RemoteProtocolError):
        return None
    return (
        "A security check failed: this data is damaged or was not signed by who it claims to "
        f"come from, so pli did not use it (technical detail: {exc.code}: {exc})."
    )


class PliGroup(click.Group):
    """A click group that adds the common options and turns failures into exit codes.

    ``lazy`` maps a command name to ``("module:attribute", short help)``: the module is
    imported only when that command runs (or its own ``--help`` is asked); the group's
    ``--help`` lists the short helps from the table, importing nothing. A short help
    of ``None`` keeps the command out of the list (hidden).
    """

    def __init__(self, *args: Any, lazy: Lazy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            target, short_help = self.lazy[cmd_name]
            module, _, attribute = target.partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            command.short_help = short_help
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)  # as click
        rows = []
        for name in names:
            if name in self.commands:
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
            elif self.lazy[name][1] is not None:
                rows.append((name, str(self.lazy[name][1])))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        have = {opt for param in cmd.params for opt in getattr(param, "opts", [])}
        cmd.params.extend(o for o in _common_options() if not set(o.opts) & have)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PliError as exc:
            _fail(ctx, exc.message, exc.exit_code, exc.code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            message = _security_failure(exc)
            if message is None:
                raise
            _fail(ctx, message, 4, "security")


def _fail(ctx: click.Context, message: str, exit_code: int, code: str) -> None:
    state = ctx.find_object(State)
    if state is not None and state.json:
        error = {"error": {"code": code, "message": message}, "exit_code": exit_code}
        state.out.emit(error)
    click.echo(f"pli: {message}", err=True)
    ctx.exit(exit_code)


@click.group(
    cls=PliGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--home",
    metavar="DIR",
    envvar="PLI_HOME",
    show_envvar=True,
    help="The practice's pli folder (default: your user data folder).",
)
@click.option(
    "--json",
    "json_lines",
    is_flag=True,
    help="Print JSON Lines for scripts (one object per line, no colour).",
)
@click.version_option(package_name="pli", message="pli %(version)s")
@click.pass_context
def cli(ctx: click.Context, home: str | None, json_lines: bool) -> None:
    """pli: send letters and prescriptions to colleagues, end-to-end encrypted and signed.

    Start with `pli init --name "Dr ..."`, run `pli daemon` (or its service), pair
    with a colleague, then `pli send`. Your documents never go through a vendor's cloud.
    """
    state = ctx.ensure_object(State)
    state.home_option = home
    state.json = json_lines


def main() -> None:
    # Everything pli creates (database and its -wal/-shm, keys, documents, exports) is
    # for this user only, whatever the umask of the shell or service that started it.
    os.umask(0o077)
    cli.main(prog_name="pli")
