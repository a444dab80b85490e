"""``pli profile`` (show / set) and ``pli passphrase``: the practice's card and its keys.

``pli profile`` reads the home (no daemon needed). ``pli profile set`` asks the
running daemon (``POST /v1/profile``), which signs the new card and takes it to
every paired peer; with no daemon running it writes the profile itself, and the
daemon takes the card to each peer at its next start. ``pli passphrase`` works
on the key file directly (``storage/keystore.py``), with or without the daemon:
the passphrases are typed on the terminal (or given in ``PLI_PASSPHRASE`` and
``PLI_NEW_PASSPHRASE`` by a script), never on the command line.
"""

from __future__ import annotations

import os
from typing import Any

import click

from p2p.cli.app import Lazy, PliGroup, State
from p2p.errors import DaemonNotRunning

PROFILE_COMMANDS: Lazy = {
    "set": ("p2p.cli.profile:profile_set", "Change your name, profession, RPPS or practice."),
}


@click.group(cls=PliGroup, lazy=PROFILE_COMMANDS, invoke_without_command=True)
@click.pass_context
def profile(ctx: click.Context) -> None:
    """Show this practice's profile: what colleagues see on its signed card."""
    if ctx.invoked_subcommand is not None:
        return
    from p2p.storage import keystore
    from p2p.storage.config import display_name, load_profile

    state: State = ctx.ensure_object(State)
    fields = load_profile(state.home)
    public = keystore.public_key(state.home)
    if public is None:
        keystore.load(state.home)  # raises the sentence for a home without an identity
    from protocol import PublicIdentity

    info = {
        "name": display_name(fields),
        "profession": str(fields.get("profession", "")),
        "rpps": str(fields.get("rpps", "")),
        "practice": str(fields.get("practice", "")),
        "seq": int(fields.get("seq", 0)),
        "fingerprint": PublicIdentity(public or b"").peer_id.fingerprint,
        "protected": keystore.protected(state.home),
    }
    _show(state, info)


def _show(state: State, info: dict[str, Any]) -> None:
    if state.out.json:
        state.out.emit(info)
        return
    state.out.fields(
        [
            ("Name", info["name"]),
            ("Profession", info["profession"] or "-"),
            ("RPPS", info["rpps"] or "-"),
            ("Practice", info["practice"] or "-"),
            ("Fingerprint", info["fingerprint"]),
            ("Passphrase", "yes" if info["protected"] else "no (`pli passphrase` adds one)"),
        ]
    )


@click.command("set")
@click.option("--name", help='Your name as colleagues see it ("Dr Marie Curie").')
@click.option("--profession", help="e.g. médecin généraliste, cardiologue.")
@click.option("--rpps", help='Your 11-digit RPPS number ("" to remove it).')
@click.option("--practice", help="The practice's name and town.")
@click.pass_obj
def profile_set(
    state: State,
    name: str | None,
    profession: str | None,
    rpps: str | None,
    practice: str | None,
) -> None:
    """Change the profile; a new signed card goes to every paired colleague."""
    from p2p.documents.profile import checked

    fields = checked(name, profession, rpps, practice)
    if not fields:
        raise click.UsageError("Say what to change: --name, --profession, --rpps or --practice.")
    try:
        answer = state.client.post("/v1/profile", fields)
    except DaemonNotRunning:
        answer = _save_here(state, fields)
    out = state.out
    if out.json:
        keys = ("name", "profession", "rpps", "practice", "seq", "fingerprint", "sent_to")
        out.emit({key: answer.get(key) for key in keys} | {"daemon": "sent_to" in answer})
        return
    out.line(f"Profile saved: {answer['name']}.")
    if "sent_to" not in answer:
        out.line(
            "The daemon is not running: it sends the new card to your colleagues when it starts."
        )
    elif answer["sent_to"]:
        out.line(
            f"The new signed card goes to your {answer['sent_to']} colleague(s) now; those "
            "offline get it when they next connect."
        )


def _save_here(state: State, fields: dict[str, str]) -> dict[str, Any]:
    """No daemon: write the profile in the home (its next start takes the card out)."""
    from p2p.storage import keystore
    from p2p.storage.config import save_profile

    if not keystore.exists(state.home):
        keystore.load(state.home)  # the sentence for a home without an identity
    saved = save_profile(state.home, **fields)
    return {key: saved.get(key, "") for key in ("name", "profession", "rpps", "practice", "seq")}


# --- pli passphrase ------------------------------------------------------------------------


@click.command()
@click.option("--remove", is_flag=True, help="Remove the passphrase (keys stored unprotected).")
@click.pass_obj
def passphrase(state: State, remove: bool) -> None:
    """Add, change or remove the passphrase that protects this practice's keys.

    Asks for the current passphrase (if there is one) and the new one on the
    terminal. The running daemon keeps working; its next start needs the new
    passphrase (PLI_PASSPHRASE, docs/operations.md).
    """
    from p2p.storage import keystore

    home = state.home
    if not keystore.exists(home):
        keystore.load(home)  # the sentence for a home without an identity
    current = None
    if keystore.protected(home):
        current = os.environ.get("PLI_PASSPHRASE") or click.prompt(
            "Current passphrase", hide_input=True, err=True
        )
    new = None
    if not remove:
        new = os.environ.get("PLI_NEW_PASSPHRASE") or click.prompt(
            "New passphrase", hide_input=True, confirmation_prompt="Type it again", err=True
        )
    protected = keystore.change_passphrase(home, current, new)
    out = state.out
    if out.json:
        out.emit({"protected": protected})
    elif protected:
        out.line("The keys are now protected by the new passphrase.")
        out.line(
            "Give it to the daemon at its next start (PLI_PASSPHRASE; for the service: "
            "/etc/pli/pli.env, docs/operations.md). Keep it somewhere safe: without it the "
            "keys cannot be opened."
        )
    else:
        out.line("The passphrase is removed: the keys are stored unprotected (mode 0600).")
