"""``pli peers``: the paired peers; ``peers add-card``, ``remove``, ``rename``, ``accept-name``.

A peer keeps the name it was paired under until the person renames it or accepts
the new name its signed card carries; ``pli peers`` (and ``pli status``) show a
new name waiting, with the two commands that settle it.

Pairing by fingerprint (``peers add``, ``peers pending``, ``peers accept``) lives in
``pairing.py``; ``PEERS_COMMANDS`` names where each subcommand is, imported when used.
"""

from __future__ import annotations

from typing import Any

import click

from p2p.cli.app import Lazy, PliGroup, State
from p2p.cli.render import clean, when
from p2p.errors import PliError

PEERS_COMMANDS: Lazy = {
    "add": ("p2p.cli.pairing:peers_add", "Pair by fingerprint with a practice at an address."),
    "pending": ("p2p.cli.pairing:peers_pending", "Pairing requests waiting for you."),
    "accept": ("p2p.cli.pairing:peers_accept", "Accept a colleague's pairing request."),
    "add-card": ("p2p.cli.peers:peers_add_card", None),
    "remove": ("p2p.cli.peers:peers_remove", "Forget a peer; its documents stay."),
    "rename": ("p2p.cli.peers:peers_rename", "Choose the name a peer is addressed by."),
    "accept-name": (
        "p2p.cli.peers:peers_accept_name",
        "Take the new name from a peer's signed card.",
    ),
}


@click.group(
    cls=PliGroup,
    lazy=PEERS_COMMANDS,
    invoke_without_command=True,
)
@click.pass_context
def peers(ctx: click.Context) -> None:
    """List the paired peers (name, profession, fingerprint, online, address, last seen)."""
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.ensure_object(State)
    rows = state.client.get("/v1/peers")
    out = state.out
    out.listing(
        rows,
        ["Name", "Profession", "Fingerprint", "Online", "Address", "Last seen"],
        lambda row: [
            row.get("name"),
            row.get("profession"),
            row.get("fingerprint"),
            _online(row),
            (row.get("addresses") or ["-"])[0],
            when(row.get("last_seen")),
        ],
        empty="No paired peers yet. Pair with a colleague first (`pli pair invite`).",
    )
    if out.json:
        return
    from p2p.cli.revocation import revoked_peer_advice

    for line in revoked_peer_advice(rows):
        out.line(line)
    for line in pending_name_advice(rows):
        out.line(line)
    try:
        pending = state.client.get("/v1/pair/pending")
    except PliError as exc:  # a daemon without pairing: nothing can be pending
        if exc.code not in ("http-404", "http-405"):
            raise
        pending = []
    for row in (r for r in pending if r.get("role") == "responder"):
        out.line(
            f"Pairing request waiting: {clean(row.get('peer_name'))} ({row.get('fingerprint')})"
            f" — accept it with: pli peers accept {row.get('id')}"
        )


def pending_name_advice(rows: list[dict[str, Any]]) -> list[str]:
    """For each peer whose card carries a new name: what it is, and how to settle it."""
    return [
        f"“{clean(row.get('name'))}” ({row.get('fingerprint')}) gives a new name on its signed "
        f"card: “{clean(row.get('pending_name'))}”. pli still calls it “{clean(row.get('name'))}”."
        f" To take the new name: pli peers accept-name {row.get('fingerprint')}; to choose "
        f"your own: pli peers rename {row.get('fingerprint')} NAME"
        for row in rows
        if row.get("pending_name")
    ]


def _online(row: dict[str, Any]) -> str:
    if row.get("state") == "revoked":
        return "REVOKED"
    return "yes" if row.get("online") else "no"


@click.command("add-card", hidden=True)
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
    state.out.line(f"Now trusting {clean(row.get('name'))} ({row.get('fingerprint')}).")


@click.command("remove")
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
        f"Removed {clean(answer.get('name'))}. Documents already exchanged stay in "
        "your inbox and outbox; pair again to exchange new ones."
    )


@click.command("rename")
@click.argument("peer")
@click.argument("name")
@click.pass_obj
def peers_rename(state: State, peer: str, name: str) -> None:
    """Address PEER as NAME from now on (a name of your own for this colleague).

    NAME may not be another peer's name, this practice's, or look like a fingerprint.
    """
    from p2p.cli.client import quote_part

    row = state.client.post(f"/v1/peers/{quote_part(peer)}/name", {"name": name})
    if state.json:
        state.out.emit(row)
        return
    state.out.line(f"{row.get('fingerprint')} is now called “{clean(row.get('name'))}”.")


@click.command("accept-name")
@click.argument("peer")
@click.pass_obj
def peers_accept_name(state: State, peer: str) -> None:
    """Take the new name PEER's signed card carries (`pli peers` shows it)."""
    from p2p.cli.client import quote_part

    row = state.client.post(f"/v1/peers/{quote_part(peer)}/accept-name", {})
    if state.json:
        state.out.emit(row)
        return
    state.out.line(
        f"{row.get('fingerprint')} is now called “{clean(row.get('name'))}”, the name on its card."
    )
