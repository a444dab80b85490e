"""``pli web-user``: who may sign in to the practice's page over the network (``web_tls``).

``pli web-user`` lists the sign-in names, ``set NAME`` adds one or changes its
password (typed twice on the terminal, or ``PLI_WEB_PASSWORD`` for a script),
``remove NAME`` takes one away. They work on the home directly
(``storage/webusers.py``), with or without the daemon; a removed person's open
session ends at the daemon's next start or after 12 hours at most.
"""

from __future__ import annotations

import os

import click

from p2p.cli.app import Lazy, PliGroup, State
from p2p.cli.render import when

WEB_USER_COMMANDS: Lazy = {
    "set": ("p2p.cli.webusers:web_user_set", "Add a sign-in name, or change its password."),
    "remove": ("p2p.cli.webusers:web_user_remove", "Take a sign-in name away."),
}


@click.group(cls=PliGroup, lazy=WEB_USER_COMMANDS, invoke_without_command=True)
@click.pass_context
def web_user(ctx: click.Context) -> None:
    """The names and passwords that sign in to the page when it is on the network."""
    if ctx.invoked_subcommand is not None:
        return
    from p2p.storage import webusers

    state: State = ctx.ensure_object(State)
    users = webusers.load(state.home)
    state.out.listing(
        [{"name": name, "set_at": entry.get("set_at")} for name, entry in sorted(users.items())],
        ["Name", "Password set"],
        lambda row: [row["name"], when(row.get("set_at"))],
        empty="No one can sign in over the network yet: `pli web-user set NAME`.",
    )


@click.command("set")
@click.argument("name")
@click.pass_obj
def web_user_set(state: State, name: str) -> None:
    """Give NAME a password for the page (asked twice on the terminal)."""
    from p2p.storage import webusers

    checked = webusers.check_name(name)
    password = os.environ.get("PLI_WEB_PASSWORD") or click.prompt(
        f"Password for {checked}", hide_input=True, confirmation_prompt="Type it again", err=True
    )
    new = webusers.set_password(state.home, checked, password)
    if state.out.json:
        state.out.emit({"name": checked, "new": new})
    else:
        state.out.line(
            f"{checked} can sign in to the page." if new else f"{checked}'s password is changed."
        )


@click.command("remove")
@click.argument("name")
@click.pass_obj
def web_user_remove(state: State, name: str) -> None:
    """Take NAME away: it can no longer sign in to the page."""
    from p2p.storage import webusers

    webusers.remove(state.home, name.strip())
    if state.out.json:
        state.out.emit({"removed": name.strip()})
    else:
        state.out.line(f"{name.strip()} can no longer sign in to the page.")
