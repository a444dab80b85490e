"""The ``pli`` command (contract: ../shared/design/cli.md).

Every command talks to the daemon through the local API (``p2p/client.py``) except
``init``, ``id`` and ``daemon`` itself, which work on the home folder directly.

Rules kept here:

- start-up is fast: only click and light p2p modules are imported at the top; aiohttp,
  rich, nacl, ``protocol`` and the daemon are imported inside the commands that need them;
- one place turns failures into exit codes (``PliGroup.invoke``): ``PliError`` →
  its ``exit_code`` (1 user-facing, 3 daemon not running, 4 security), a protocol
  security failure → 4, bad usage → 2 (click). Never a traceback for those;
- ``--home`` / ``--json`` are accepted on the group and on every command;
- text that came from a peer is printed through ``render.clean``.

Adding a command: decorate it with ``@cli.command()`` (or ``@peers.command()``) and
take the ``State`` with ``@click.pass_obj``; raise ``PliError`` subclasses for failures.
Commands also live in ``cli_pairing.py`` (``pair``, ``peers add|accept|pending``) and
``cli_documents.py`` (``prescribe``, ``verify``, ``demo``), imported at the end of this
module so that they register on these groups; their work is done in light modules
(``export``, ``verify``, ``prescription``, ``demo``) imported when a command runs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p2p.errors import BadInput, DocumentUnknown, PliError, StorageError

if TYPE_CHECKING:
    from p2p.cli.client import Client
    from p2p.cli.render import Output
    from p2p.storage.keystore import Keys


class Kinds(click.Choice[str]):
    """``--kind``: one of ``protocol.KINDS``, read only when a command uses it.

    Importing ``protocol`` costs ~90 ms that ``pli --help`` must not pay, so the
    choices are looked up when click first needs them (a value, or the command's help).
    """

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        from protocol import KINDS

        return tuple(KINDS)

    @choices.setter
    def choices(self, _value: object) -> None:
        """click's own ``__init__`` sets the choices; they are always protocol's."""


POLL_SECONDS = 0.2
PROGRESS_BAR_FROM = 1_000_000  # bytes: smaller documents go out faster than a bar can draw
TEXT_SHOWN_UP_TO = 1_000_000  # bytes: ``pli show`` prints text files up to this size


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
    """A click group that adds the common options and turns failures into exit codes."""

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
    cls=PliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
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


# --- identity (no daemon needed) ---------------------------------------------------------


def _passphrase() -> str | None:
    return os.environ.get("PLI_PASSPHRASE") or None


def _load_keys(home: Path) -> Keys:
    from p2p.storage import keystore

    return keystore.load(home, passphrase=_passphrase())


@cli.command(short_help="Create this practice's identity (no daemon needed).")
@click.option(
    "--name", required=True, help='Your name as colleagues will see it ("Dr Marie Curie").'
)
@click.option("--profession", default="", help="e.g. médecin généraliste, cardiologue.")
@click.option("--rpps", default="", help="Your 11-digit RPPS number (on your CPS card).")
@click.option("--practice", default="", help="The practice's name and town.")
@click.pass_obj
def init(state: State, name: str, profession: str, rpps: str, practice: str) -> None:
    """Create this practice's identity and profile (no daemon needed).

    Never overwrites an existing identity. With PLI_PASSPHRASE set, the keys are
    protected by that passphrase.
    """
    from p2p.cli.revocation import advice, write_certificate
    from p2p.documents.clinical import check_rpps, check_text
    from p2p.storage import config, keystore
    from p2p.storage.files import private_home

    name = check_text(name, "name")
    if not name:
        raise BadInput('Give your name, e.g. --name "Dr Marie Curie".')
    profile = {
        "name": name,
        "profession": check_text(profession, "profession"),
        "rpps": check_rpps(rpps) if rpps.strip() else "",
        "practice": check_text(practice, "practice name"),
    }
    home = state.home
    if keystore.exists(home):
        keystore.create(home)  # raises the "never overwrites" explanation
    note = private_home(home)
    if note is not None:
        click.echo(f"pli: {note}", err=True)
    try:
        keys = keystore.create(home, passphrase=_passphrase())
        config.save_profile(home, **profile)
        revocation = write_certificate(home, keys, name)
    except OSError as exc:
        raise StorageError(
            f"Could not write in {home} ({exc.strerror or exc}). "
            "Choose a folder you can write to with --home."
        ) from exc
    fingerprint = keys.identity.peer_id.fingerprint
    out = state.out
    if out.json:
        out.emit(
            {
                "home": str(home),
                "fingerprint": fingerprint,
                "peer_id": keys.identity.peer_id.hex,
                **profile,
                "revocation_certificate": str(revocation.text),
                "revocation_page": str(revocation.page),
            }
        )
        return
    out.line(f"Created the identity of {name} in {home}.")
    out.line(f"Fingerprint: {fingerprint}")
    for line in advice(revocation):
        out.line(line)
    out.line(f"Next: start the daemon with: pli --home {home} daemon")


@cli.command("id", short_help="Show your name and fingerprint (no daemon needed).")
@click.option(
    "--card",
    is_flag=True,
    hidden=True,
    help="Print this practice's signed profile card (base64), for `peers add-card`.",
)
@click.option(
    "--revocation-certificate",
    "revocation",
    is_flag=True,
    help="Show the revocation certificate made at `init` (print it, keep it away from here).",
)
@click.pass_obj
def id_(state: State, card: bool, revocation: bool) -> None:
    """Show this practice's name, profile and fingerprint (no daemon needed)."""
    import base64

    from p2p.storage.config import display_name, load, load_profile, own_card

    home = state.home
    keys = _load_keys(home)
    profile = load_profile(home)
    me = keys.identity
    name = display_name(profile)
    if revocation:
        from p2p.cli.revocation import show_certificate

        show_certificate(state, keys, name)
        return
    if card:
        wire = own_card(me, profile, load(home).advertise_addresses).sign(me.identity)
        encoded = base64.b64encode(wire).decode()
        if state.json:
            state.out.emit({"card": encoded})
        else:
            state.out.line(encoded)
        return
    info = {
        "name": name,
        "profession": str(profile.get("profession", "")),
        "rpps": str(profile.get("rpps", "")),
        "practice": str(profile.get("practice", "")),
        "fingerprint": me.peer_id.fingerprint,
        "peer_id": me.peer_id.hex,
        "home": str(home),
    }
    if state.json:
        state.out.emit(info)
        return
    state.out.fields(
        [
            ("Name", info["name"]),
            ("Profession", info["profession"]),
            ("RPPS", info["rpps"]),
            ("Practice", info["practice"]),
            ("Fingerprint", info["fingerprint"]),
            ("Home", home),
        ]
    )


# --- the daemon -------------------------------------------------------------------------


@cli.command(short_help="Run the daemon in the foreground.")
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
    import json
    import logging
    import socket

    from p2p.storage import config, keystore
    from p2p.storage.files import private_home

    home = state.home
    settings = config.load(home, listen=listen)
    _refuse_second_daemon(state)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    log = logging.getLogger("pli.cli")
    note = private_home(home)
    if note is not None:
        log.warning("%s", note)
    if keystore.exists(home):
        keys = keystore.load(home, passphrase=_passphrase())
        config.load_profile(home)  # a damaged profile is said now, not at the first pairing
    else:
        keys = keystore.create(home, passphrase=_passphrase())
        if not config.load_profile(home).get("name"):
            config.save_profile(home, name=socket.gethostname())
        from p2p.cli.revocation import write_certificate

        written = write_certificate(home, keys, str(config.load_profile(home).get("name")))
        log.info("created a new identity for this practice; name it with `pli init` next time")
        log.info("its revocation certificate is in %s: print it and keep it safe", written.text)

    from p2p.api.server import run_daemon
    from p2p.daemon.core import Daemon, Started

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

    # Ctrl-C before the daemon's own signal handlers are set: stop quietly.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run_daemon(Daemon(settings, keys), on_ready))
        except OSError as exc:
            error = _listen_error(exc, settings.listen)
            if error is exc:
                raise
            raise error from exc


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


@cli.command(short_help="Is the daemon running? Peers online, documents waiting.")
@click.pass_obj
def status(state: State) -> None:
    """Is the daemon up? Fingerprint, peers online, outbox and inbox counts."""
    from p2p.cli.render import when

    info = state.client.get("/v1/status")
    out = state.out
    if out.json:
        out.emit(info)
        return
    uptime = int(info.get("uptime", 0))
    out.fields(
        [
            (
                "Daemon",
                f"running for {uptime // 3600} h {uptime % 3600 // 60} min"
                f" (since {when(time.time() - uptime)})",
            ),
            ("Name", info.get("name")),
            ("Fingerprint", info.get("fingerprint")),
            ("Peer port", info.get("peer_port")),
            ("Peers", f"{info.get('peers', 0)} paired, {info.get('peers_online', 0)} online"),
            ("Outbox", f"{info.get('queued', 0)} waiting, {info.get('delivered', 0)} delivered"),
            (
                "Inbox",
                f"{_count(info.get('inbox', 0), 'document')}, "
                f"{info.get('inbox_new', 0)} not exported yet",
            ),
        ]
    )
    if info.get("revoked_since"):
        out.line(
            "This practice's identity is revoked: colleagues refuse it. Create a new identity "
            "in a new home (`pli init`) and pair again."
        )


# --- peers ---------------------------------------------------------------------------------


@cli.group(
    cls=PliGroup,
    invoke_without_command=True,
    short_help="Your paired peers; pair by fingerprint, remove one.",
)
@click.pass_context
def peers(ctx: click.Context) -> None:
    """List the paired peers (name, profession, fingerprint, online, address, last seen)."""
    if ctx.invoked_subcommand is not None:
        return
    from p2p.cli.render import when

    state: State = ctx.ensure_object(State)
    rows = state.client.get("/v1/peers")
    out = state.out
    if out.json:
        for row in rows:
            out.emit(row)
        return
    out.table(
        ["Name", "Profession", "Fingerprint", "Online", "Address", "Last seen"],
        [
            [
                row.get("name"),
                row.get("profession"),
                row.get("fingerprint"),
                "REVOKED"
                if row.get("state") == "revoked"
                else "yes"
                if row.get("online")
                else "no",
                (row.get("addresses") or ["-"])[0],
                when(row.get("last_seen")),
            ]
            for row in rows
        ],
        empty="No paired peers yet. Pair with a colleague first (`pli pair invite`).",
    )
    from p2p.cli.revocation import revoked_peer_advice

    for line in revoked_peer_advice(rows):
        out.line(line)
    try:
        pending = state.client.get("/v1/pair/pending")
    except PliError as exc:  # a daemon without pairing: nothing can be pending
        if exc.code not in ("http-404", "http-405"):
            raise
        pending = []
    for row in (r for r in pending if r.get("role") == "responder"):
        out.line(
            f"Pairing request waiting: {_clean(row.get('peer_name'))} ({row.get('fingerprint')})"
            f" — accept it with: pli peers accept {row.get('id')}"
        )


@peers.command("add-card", hidden=True)
@click.argument("card")
@click.option("--address", metavar="HOST:PORT", help="Where the peer's daemon listens.")
@click.pass_obj
def peers_add_card(state: State, card: str, address: str | None) -> None:
    """Trust a peer from its signed card (base64), until pairing lands. For tests and demos."""
    from p2p.storage.config import parse_address

    body: dict[str, Any] = {"card": card.strip()}
    if address:
        host, port = parse_address(address)
        body["address"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    row = state.client.post("/v1/peers", body)
    if state.json:
        state.out.emit(row)
        return
    state.out.line(f"Now trusting {_clean(row.get('name'))} ({row.get('fingerprint')}).")


@peers.command("remove", short_help="Forget a peer; its documents stay.")
@click.argument("peer")
@click.pass_obj
def peers_remove(state: State, peer: str) -> None:
    """Forget a peer: nothing more is sent to or accepted from it. Its documents stay."""
    from p2p.cli.client import quote_part

    answer = state.client.delete(f"/v1/peers/{quote_part(peer)}")
    if state.json:
        state.out.emit(answer)
        return
    state.out.line(
        f"Removed {_clean(answer.get('name'))}. Documents already exchanged stay in "
        "your inbox and outbox; pair again to exchange new ones."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _clean(text: object) -> str:
    from p2p.cli.render import clean

    return clean(text)


# --- sending -------------------------------------------------------------------------------


def _check_file(text: str) -> str:
    from p2p.documents.clinical import max_text

    path = Path(text).expanduser()
    if not path.exists():
        raise BadInput(f"The file “{text}” does not exist. Check its name and folder.")
    if path.is_dir():
        raise BadInput(
            f"“{text}” is a folder, not a file: send the files inside it (or a zip of the folder)."
        )
    if not path.is_file():
        raise BadInput(f"“{text}” is not an ordinary file, so it cannot be sent.")
    try:
        with open(path, "rb"):
            pass
    except OSError:
        raise BadInput(
            f"pli cannot read the file “{text}” (permission denied). "
            "Check its permissions, or copy it to a folder of yours."
        ) from None
    if not os.access(path, os.R_OK):
        raise BadInput(f"pli cannot read the file “{text}”. Check its permissions.")
    if len(path.name) > max_text() or any(ord(ch) < 32 or ord(ch) == 127 for ch in path.name):
        raise BadInput(
            f"The name of the file “{text}” is too long or contains control "
            "characters; rename it (a short plain name) and send it again."
        )
    return str(path.resolve())


def _patient_options(command: Any) -> Any:
    """The patient options shared by ``send`` and ``prescribe``."""
    options = [
        click.option("--patient-name", metavar="NAME",
                     help='The patient\'s name; "FAMILY, Given names" fills both fields.'),
        click.option("--patient-family-name", metavar="NAME",
                     help="The patient's family (birth) name, as on the INS."),
        click.option("--patient-given-names", metavar="NAMES", help="The patient's given names."),
        click.option("--patient-birthdate", metavar="YYYY-MM-DD", help="The patient's birth date."),
        click.option("--patient-sex", metavar="F|M|U", help="The patient's sex, as on the INS."),
        click.option("--patient-ins", metavar="INS",
                     help="The patient's INS (15 characters, with key)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _author_rpps(state: State, given: str | None) -> str | None:
    """``--author-rpps``, else the RPPS of this practice's profile (``pli init --rpps``)."""
    if given:
        return given
    from p2p.storage.config import load_profile

    try:
        return str(load_profile(state.home).get("rpps") or "") or None
    except PliError:
        return None


@cli.command(short_help="Send files to a peer, encrypted and signed.")
@click.argument("peer")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--kind", type=Kinds(), default="letter", show_default=True)
@click.option("--subject", help="A short subject line.")
@_patient_options
@click.option("--author-rpps", metavar="RPPS",
              help="The author's RPPS (default: the one in your profile).")  # fmt: skip
@click.option("--recipient-rpps", metavar="RPPS", help="The recipient's RPPS (11 digits).")
@click.option("--in-reply-to", metavar="DOC", help="The id of the document this answers.")
@click.option("--wait", is_flag=True, help="Wait until the signed receipt is back.")
@click.pass_obj
def send(  # noqa: PLR0917 - click passes each option as an argument
    state: State,
    peer: str,
    files: tuple[str, ...],
    kind: str,
    subject: str | None,
    patient_name: str | None,
    patient_family_name: str | None,
    patient_given_names: str | None,
    patient_birthdate: str | None,
    patient_sex: str | None,
    patient_ins: str | None,
    author_rpps: str | None,
    recipient_rpps: str | None,
    in_reply_to: str | None,
    wait: bool,
) -> None:
    """Send FILE(S) to PEER as one encrypted, signed document (a letter and its attachments).

    PEER is a peer's name, its fingerprint (or the start of it) or its peer id. The
    clinical details (patient, RPPS, subject, the document answered) travel inside the
    encrypted envelope and are signed with the files. The document waits in the outbox
    until PEER's daemon returns a signed receipt.
    """
    from p2p.documents.clinical import clinical_metadata

    paths = [_check_file(f) for f in files]
    metadata = clinical_metadata(
        subject=subject,
        patient_name=patient_name,
        family_name=patient_family_name,
        given_names=patient_given_names,
        birthdate=patient_birthdate,
        sex=patient_sex,
        ins=patient_ins,
        author_rpps=_author_rpps(state, author_rpps),
        recipient_rpps=recipient_rpps,
    )
    attachments = [
        {"path": path, "name": Path(typed).name, "type": _media_type(path)}
        for typed, path in zip(files, paths, strict=True)
    ]
    send_document(state, peer, kind, metadata, attachments, in_reply_to=in_reply_to, wait=wait)


def send_document(
    state: State,
    peer: str,
    kind: str,
    metadata: dict[str, str],
    files: list[dict[str, str]],
    *,
    in_reply_to: str | None = None,
    wait: bool = False,
) -> str:
    """Queue one envelope through the API, report it, optionally wait for the receipts."""
    from p2p.cli.client import quote_part

    client = state.client
    if in_reply_to is not None:
        metadata["in_reply_to"] = client.get(f"/v1/documents/{quote_part(in_reply_to)}")["id"]
    body = {
        "to": [peer],
        "kind": kind,
        "metadata": {k: v for k, v in metadata.items() if v},
        "files": files,
    }
    answer = client.post("/v1/documents", body, timeout=None)  # sealing a big file takes time
    doc_id = str(answer["id"])
    rows = [r for r in client.get("/v1/outbox") if r.get("id") == doc_id]
    names = ", ".join(_clean(r.get("to_name")) for r in rows) or _clean(peer)
    out = state.out
    if out.json:
        out.emit({"event": "queued", "id": doc_id, "to": answer.get("to", []), "kind": kind})
    else:
        out.line(f"Queued {kind} {doc_id[:12]} for {names}.")
    if not wait:
        if not out.json:
            out.line("It will be delivered as soon as they are reachable; `pli outbox` shows it.")
        return doc_id
    try:
        _wait_for_receipts(state, doc_id)
    except KeyboardInterrupt:
        raise PliError(
            f"Stopped waiting. The document stays in the outbox and will be delivered "
            f"when {names} can be reached (`pli outbox` shows it)."
        ) from None
    return doc_id


def _media_type(path: str) -> str:
    """The file's media type from its extension, so the receiver knows a text from a PDF."""
    import mimetypes
    import re

    guessed, encoding = mimetypes.guess_type(path, strict=False)
    plain = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,100}"  # what the protocol accepts
    if guessed is None or encoding is not None or not re.fullmatch(f"{plain}/{plain}", guessed):
        return "application/octet-stream"  # unknown, or compressed (.gz ...): plain bytes
    return f"{guessed}; charset=utf-8" if guessed == "text/plain" and _is_utf8(path) else guessed


def _is_utf8(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut at the end of the sample
    return True


def _wait_for_receipts(state: State, doc_id: str) -> None:
    """Poll the outbox until every recipient's receipt is back (or it was refused)."""
    out, client = state.out, state.client
    seen: dict[str, tuple[Any, ...]] = {}  # recipient -> (state, last error) last reported
    bar: Any = None
    task: Any = None
    try:
        while True:
            rows = [r for r in client.get("/v1/outbox") if r.get("id") == doc_id]
            if not rows:
                raise DocumentUnknown(f"The document {doc_id[:12]} is no longer in the outbox.")
            total = sum(int(r.get("size") or 0) for r in rows)
            done = sum(_sent(r) for r in rows)
            finished = all(r.get("state") in ("delivered", "rejected") for r in rows)
            sending = any(r.get("state") == "sending" for r in rows)
            if bar is None and sending and out.tty and total >= PROGRESS_BAR_FROM:
                bar, task = _progress_bar(total)
            if bar is not None:
                bar.update(task, completed=done)
                if finished:
                    bar.stop()
                    bar = None
            for row in rows:
                key = (row.get("state"), row.get("last_error"))
                if seen.setdefault(row["to"], ("queued", None)) != key:
                    seen[row["to"]] = key
                    _report_step(out, row, bar)
            if finished:
                break
            time.sleep(POLL_SECONDS)
    finally:
        if bar is not None:
            bar.stop()
    refused = [r for r in rows if r.get("state") == "rejected"]
    if refused:
        who = ", ".join(_clean(r.get("to_name")) for r in refused)
        reason = _clean(refused[0].get("receipt_status") or refused[0].get("last_error") or "")
        raise PliError(
            f"{who} refused the document{f' ({reason})' if reason else ''}. "
            "Call them to find out why; nothing more will be tried."
        )


def _sent(row: dict[str, Any]) -> int:
    if row.get("state") in ("delivered", "rejected"):
        return int(row.get("size") or 0)
    return int(row.get("sent_bytes") or 0)


def _progress_bar(total: int) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("Sending"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("send", total=total)


def _report_step(out: Output, row: dict[str, Any], bar: Any) -> None:
    """Say what changed for one recipient (above the progress bar when one is drawn)."""
    from p2p.cli.render import when

    state, name = row.get("state"), _clean(row.get("to_name"))
    if out.json:
        keys = ("id", "to", "receipt_time", "receipt_status", "last_error")
        out.emit({"event": state, **{key: row.get(key) for key in keys}})
        return
    if state == "delivered":
        received = when(row.get("receipt_time"))
        text = f"Delivered to {name} at {received}: their signed receipt is stored."
    elif state == "queued" and row.get("last_error"):
        text = f"Waiting for {name}: {_clean(row.get('last_error'))} (pli keeps trying)."
    elif state == "sending" and bar is None:
        text = f"Sending to {name}…"
    else:
        return
    if bar is None:
        out.line(text)
    else:
        from rich.text import Text

        bar.console.print(Text(text))


# --- documents -------------------------------------------------------------------------------


def _patient(meta: dict[str, str]) -> str:
    name = meta.get("patient_name", "")
    birth = meta.get("patient_birthdate", "")
    return f"{name} ({birth})" if name and birth else name or birth


@cli.command(short_help="Documents received.")
@click.option("--all", "show_all", is_flag=True, help="Also list documents already exported.")
@click.pass_obj
def inbox(state: State, show_all: bool) -> None:
    """Documents received (by default only those not exported yet)."""
    from p2p.cli.render import when
    from p2p.cli.revocation import revoked_mark

    rows = [r for r in state.client.get("/v1/inbox") if show_all or not r.get("exported_at")]
    out = state.out
    if out.json:
        for row in rows:
            out.emit(row)
        return
    headers = ["ID", "From", "Kind", "Subject", "Patient", "Received"]
    table = []
    for row in rows:
        meta = row.get("metadata") or {}
        line = [
            row["id"][:12],
            f"{row.get('from_name')}{revoked_mark(row.get('sender_revoked_since'))}",
            row.get("kind"),
            meta.get("subject", ""),
            _patient(meta),
            when(row.get("received_at")),
        ]
        if show_all:
            line.append(when(row.get("exported_at")))
        table.append(line)
    empty = (
        "No documents received." if show_all else "No new documents (`pli inbox --all` lists all)."
    )
    out.table([*headers, "Exported"] if show_all else headers, table, empty=empty)


@cli.command(short_help="Documents sent, and their receipts.")
@click.pass_obj
def outbox(state: State) -> None:
    """Documents sent, with their state: queued, sending, delivered (receipt time), rejected."""
    from p2p.cli.render import when

    rows = state.client.get("/v1/outbox")
    out = state.out
    if out.json:
        for row in rows:
            out.emit(row)
        return
    with_kind = any(row.get("kind") for row in rows)  # the API may not say it (yet)
    table = []
    for row in rows:
        st = str(row.get("state"))
        if st == "sending" and row.get("size"):
            st = f"sending {100 * int(row.get('sent_bytes') or 0) // int(row['size'])}%"
        note = row.get("last_error") if row.get("state") == "queued" else row.get("receipt_status")
        line = [row["id"][:12], row.get("to_name"), st, when(row.get("receipt_time"))]
        line.append("" if note in (None, row.get("state")) else note)
        table.append([*line[:2], row.get("kind", ""), *line[2:]] if with_kind else line)
    headers = ["ID", "To", "Kind", "State", "Receipt", "Note"]
    if not with_kind:
        headers.remove("Kind")
    out.table(headers, table, empty="Nothing sent yet.")


def _peer_names(client: Client) -> dict[str, str]:
    return {str(p["peer_id"]): str(p["name"]) for p in client.get("/v1/peers")}


def _is_text(entry: dict[str, Any]) -> bool:
    kind = str(entry.get("type") or "").split(";")[0].strip().lower()
    return kind == "text/plain" or str(entry.get("name", "")).lower().endswith(".txt")


@cli.command(short_help="Show a document: details, receipts, text.")
@click.argument("doc")
@click.pass_obj
def show(state: State, doc: str) -> None:
    """A document's metadata, receipts, and the text of a text document."""
    from p2p.cli.client import quote_part
    from p2p.cli.render import clean, size, when
    from p2p.cli.revocation import revoked_document_warning, revoked_mark

    client, out = state.client, state.out
    info = client.get(f"/v1/documents/{quote_part(doc)}")
    doc_id = str(info["id"])
    receipts = client.get(f"/v1/documents/{doc_id}/receipts")
    texts = [
        (i, entry)
        for i, entry in enumerate(info.get("files", []))
        if _is_text(entry) and int(entry.get("size") or 0) <= TEXT_SHOWN_UP_TO
    ]
    if out.json:
        out.emit({**info, "receipts_signed": receipts})
        for i, entry in texts:
            out.emit(
                {
                    "id": doc_id,
                    "file": i,
                    "name": entry.get("name"),
                    "text": _fetch_text(client, doc_id, i),
                }
            )
        return
    names = _peer_names(client)
    me = client.get("/v1/identity")
    names[str(me["peer_id"])] = f"this practice ({me['name']})"

    def who(peer_hex: str) -> str:
        return names.get(peer_hex) or f"(unknown peer {peer_hex[:12]})"

    meta = info.get("metadata") or {}
    incoming = info.get("direction") == "in"
    out.fields(
        [
            ("Document", doc_id),
            ("Kind", info.get("kind")),
            ("From", who(info["sender"]) + revoked_mark(info.get("sender_revoked_since"))),
            ("To", ", ".join(who(r) for r in info.get("recipients", []))),
            ("Written", when(info.get("created_at"))),
            ("Subject", meta.get("subject")),
            ("Patient", _patient(meta)),
            ("Sex", meta.get("patient_sex")),
            ("INS", meta.get("patient_ins")),
            ("Author RPPS", meta.get("author_rpps")),
            ("Recipient RPPS", meta.get("recipient_rpps")),
            ("Prescription", meta.get("prescription_id")),
            ("In reply to", meta.get("in_reply_to")),
            ("Signature", "checked when the document was received" if incoming else None),
        ]
    )
    for line in revoked_document_warning(info):
        out.line(line)
    for i, entry in enumerate(info.get("files", [])):
        out.line(
            f"File {i + 1}: {clean(entry.get('name'))} ({size(entry.get('size'))}, "
            f"{clean(entry.get('type'))})"
        )
    for receipt in info.get("receipts", []):
        got = (
            f"signed receipt {when(receipt.get('time'))}"
            if receipt.get("time")
            else "no receipt yet"
        )
        out.line(f"To {who(receipt['peer'])}: {receipt.get('state')}, {got}")
    if incoming:
        for receipt in receipts:
            out.line(
                f"Our signed receipt: {clean(receipt.get('status'))}, {when(receipt.get('time'))}"
            )
    for i, entry in texts:
        out.line(f"\n--- {clean(entry.get('name'))} ---")
        out.line(clean(_fetch_text(client, doc_id, i), keep_newlines=True))


def _fetch_text(client: Client, doc_id: str, index: int) -> str:
    with client.download(f"/v1/documents/{doc_id}/files/{index}") as chunks:
        data = b"".join(chunks)
    return data.decode("utf-8", errors="replace")


@cli.command(short_help="Save a document's files into a folder.")
@click.argument("doc")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False),
    default=".",
    help="The folder to write into (default: the current folder).",
)
@click.pass_obj
def export(state: State, doc: str, folder: str) -> None:
    """Write a document's decrypted file(s) and a signed-metadata sidecar (<name>.pli.json).

    Each file is checked against the sender's signature on the way. The sidecar holds
    the signature proof `pli verify` checks offline; a prescription also gets a
    printable page with a QR code. Never overwrites a file (adds " (1)", " (2)" ...)
    and never trusts the name the sender chose: it is reduced to a plain file name.
    """
    from p2p.cli.export import export_document

    target = Path(folder).expanduser()
    if not target.is_dir():
        raise BadInput(
            f"The folder “{folder}” does not exist. Create it, or choose another with --to."
        )
    done = export_document(state.client, doc, target)
    out = state.out
    if out.json:
        out.emit(
            {
                "id": done.doc_id,
                "kind": done.kind,
                "files": [str(p) for p in done.files],
                "sidecar": str(done.sidecar),
                "page": str(done.page) if done.page else None,
            }
        )
        return
    for path in done.files:
        out.line(f"Saved {path}")
    if done.page is not None:
        out.line(f"Saved the printable prescription in {done.page}")
    out.line(f"Saved the document's details, receipts and signature proof in {done.sidecar}")
    for note in done.notes:
        out.line(note)
    out.line(f"Check it any time, offline: pli verify {done.sidecar}")


from p2p.cli import documents as cli_documents  # noqa: E402, F401 - they register their commands
from p2p.cli import pairing as cli_pairing  # noqa: E402, F401
from p2p.cli import revocation as cli_revocation  # noqa: E402, F401
