"""``pli mailbox``: join or leave a NATS mailbox, its state, and running one for a group.

``key`` and ``server-config`` need no daemon (they read the home, or only their
arguments); ``add``, ``remove`` and ``status`` go through the local API, and a
running daemon connects or disconnects at once. docs/mailbox.md is the guide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from p2p.cli.app import Lazy, PliGroup, State
from p2p.cli.render import clean
from p2p.errors import BadInput, ConfigError

MAILBOX_COMMANDS: Lazy = {
    "key": ("p2p.cli.mailbox:key", "This practice's member key, for whoever runs the server."),
    "add": ("p2p.cli.mailbox:add", "Join a mailbox: nats://HOST:PORT."),
    "remove": ("p2p.cli.mailbox:remove", "Leave a mailbox."),
    "status": ("p2p.cli.mailbox:status", "Mailboxes joined: connected or not, what waits."),
    "server-config": (
        "p2p.cli.mailbox:server_config",
        "Print a ready nats-server configuration for a practice group.",
    ),
}

_STATES = {
    "connected": "connected",
    "connecting": "connecting…",
    "unreachable": "cannot be reached",
    "refused": "refused this practice's key",
    "unusable": "its credentials file cannot be used",
}


@click.group(cls=PliGroup, lazy=MAILBOX_COMMANDS)
def mailbox() -> None:
    """Mailboxes on a NATS server, for letters to colleagues beyond the LAN.

    When a colleague cannot be reached directly, the sealed letter waits in a
    mailbox you both joined; the server can read neither the letter nor who it is for.
    """


@click.command()
@click.pass_obj
def key(state: State) -> None:
    """Print this practice's member key (no daemon needed); give it to the server's admin."""
    from p2p.storage import keystore, mailboxes
    from protocol import PublicIdentity
    from protocol import mailbox as frames

    public = keystore.public_key(state.home)
    if public is None:
        raise ConfigError("This folder has no practice identity yet: run `pli init` first.")
    nkey = mailboxes.nkey_public(state.home)
    box = frames.box_name(PublicIdentity(public))
    member = f"{nkey}:{box}"
    if state.json:
        state.out.emit({"nkey": nkey, "box": box, "member": member})
        return
    state.out.line(member)


@click.command()
@click.argument("url")
@click.option(
    "--credentials",
    "creds",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A NATS .creds file, for a server run with accounts and JWTs.",
)
@click.pass_obj
def add(state: State, url: str, creds: Path | None) -> None:
    """Join the mailbox at URL (nats://HOST:PORT); it takes effect at once."""
    body: dict[str, Any] = {"url": url}
    if creds is not None:
        try:
            body["credentials"] = creds.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"The credentials file {creds} cannot be read ({exc}).") from None
    answer = state.client.post("/v1/mailboxes", body)
    if state.json:
        state.out.emit(answer)
        return
    state.out.line(
        f"Joined the mailbox {answer['url']}. `pli mailbox status` shows when it is connected."
    )
    _card_line(state, answer)


@click.command()
@click.argument("url")
@click.pass_obj
def remove(state: State, url: str) -> None:
    """Leave the mailbox at URL. Letters already there stay until the server's retention ends."""
    from urllib.parse import quote

    answer = state.client.delete(f"/v1/mailboxes?url={quote(url, safe='')}")
    if state.json:
        state.out.emit(answer)
        return
    state.out.line(f"Left the mailbox {answer['removed']}.")
    _card_line(state, answer)


def _card_line(state: State, answer: dict[str, Any]) -> None:
    """Colleagues learn the mailboxes from our signed card: say who it goes to."""
    sent_to = int(answer.get("card", {}).get("sent_to", 0))
    if sent_to:
        state.out.line(
            f"Your card, which lists your mailboxes, goes to your {sent_to} colleague(s): "
            "letters to you go to the mailboxes you share."
        )


@click.command()
@click.pass_obj
def status(state: State) -> None:
    """The mailboxes joined: connected or not, documents waiting each way."""
    rows = state.client.get("/v1/mailboxes")
    state.out.listing(
        rows,
        ["Mailbox", "State", "Waiting to be read", "Sent, receipt awaited"],
        _cells,
        empty="No mailbox joined: letters go directly (LAN or known address). "
        "See `pli mailbox add`.",
    )


def _cells(row: dict[str, Any]) -> list[object]:
    return [row["url"], state_words(row), row.get("waiting_in", 0), row.get("waiting_out", 0)]


def state_words(row: dict[str, Any]) -> str:
    """A mailbox's state for a person: connected, or what is wrong and what to do."""
    words = _STATES.get(str(row.get("state")), str(row.get("state")))
    if row.get("state") == "refused" and row.get("credentials"):
        words = "refused this practice's credentials (ask the server's admin for a new "
        words += ".creds file, then `pli mailbox add URL --credentials FILE`)"
    elif row.get("state") == "refused":
        words += " (give `pli mailbox key` to the server's admin again)"
    elif row.get("state") == "unusable":
        words += " (add the mailbox again: `pli mailbox add URL --credentials FILE`)"
    elif row.get("state") == "unreachable":
        words += " (letters still go directly; check the address or the server)"
    return clean(words)


#: The options of ``pli mailbox server-config``, in the order its --help lists them.
_SERVER_OPTIONS = [
    click.option(
        "--member",
        "members",
        multiple=True,
        required=True,
        metavar="KEY",
        help="A member key from `pli mailbox key` (repeat for each practice).",
    ),
    click.option("--listen", default="0.0.0.0:4222", show_default=True, metavar="HOST:PORT"),
    click.option("--store-dir", default="/var/lib/nats/pli", show_default=True, metavar="DIR"),
    click.option(
        "--quota",
        "quota_gb",
        type=int,
        default=10,
        show_default=True,
        metavar="GB",
        help="Storage each member's mailbox may take.",
    ),
    click.option("--server-name", default="pli-mailbox", show_default=True),
    click.option(
        "--cluster",
        "cluster_name",
        metavar="NAME",
        help="Make this node one of a cluster of that name (give --route twice).",
    ),
    click.option(
        "--cluster-listen", default="0.0.0.0:6222", show_default=True, metavar="HOST:PORT"
    ),
    click.option(
        "--route",
        "routes",
        multiple=True,
        metavar="nats-route://HOST:PORT",
        help="Another node of the cluster.",
    ),
]


def _server_options(command: Any) -> Any:
    for option in reversed(_SERVER_OPTIONS):
        command = option(command)
    return command


@click.command("server-config")
@_server_options
@click.pass_obj
def server_config(  # noqa: PLR0917 - one parameter per option, as click passes them
    state: State,
    members: tuple[str, ...],
    listen: str,
    store_dir: str,
    quota_gb: int,
    server_name: str,
    cluster_name: str | None,
    cluster_listen: str,
    routes: tuple[str, ...],
) -> None:
    """Print a ready nats-server configuration for the group (no daemon needed)."""
    from p2p.services.mailbox import server_config as config

    cluster = None
    if cluster_name:
        if not routes:
            raise BadInput("A cluster node needs the other nodes: give --route for each.")
        cluster = config.Cluster(cluster_name, cluster_listen, routes)
    text = config.render(
        [config.Member.parse(m) for m in members],
        listen=listen,
        store_dir=store_dir,
        quota_gb=quota_gb,
        server_name=server_name,
        cluster=cluster,
    )
    if state.json:
        state.out.emit({"config": text})
        return
    click.echo(text, nl=False)
