"""``pli api-token``: scoped tokens for other practice software (the local API's tokens).

``create`` prints the token once (pli keeps only a hash of it); ``list`` shows the
tokens with their scopes and state; ``revoke`` ends one at once. All three go
through the local API over the unix socket, as the owner: a token can never make
or see tokens (docs/api.md, "Tokens for other software").
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import click

from p2p.cli.app import Lazy, PliGroup, State
from p2p.cli.client import quote_part
from p2p.cli.render import when

TOKEN_COMMANDS: Lazy = {
    "create": ("p2p.cli.tokens:create", "Make a token for a program, with its scopes."),
    "list": ("p2p.cli.tokens:list_", "The tokens made: scopes, expiry, revoked or not."),
    "revoke": ("p2p.cli.tokens:revoke", "Revoke a token at once (by name or id)."),
}

_LIFETIME = re.compile(r"(\d+)\s*(h|d|w|y)", re.IGNORECASE)
_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_STATES = {"active": "active", "expired": "expired", "revoked": "revoked"}


class Expiry(click.ParamType):  # type: ignore[type-arg]
    """``90d``, ``12h``, ``2w``, ``1y`` from now, or a date ``YYYY-MM-DD`` (its midnight UTC)."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        match = _LIFETIME.fullmatch(text)
        if match is not None:
            return int(time.time()) + int(match.group(1)) * _UNITS[match.group(2).lower()]
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            self.fail(f"“{value}” is not a lifetime: write e.g. 90d, 12h, 1y or 2027-06-30.")
        return int(day.timestamp())


@click.group("api-token", cls=PliGroup, lazy=TOKEN_COMMANDS)
def api_token() -> None:
    """Tokens that let other practice software (your LGC...) use pli's local API.

    Each token has scopes (what it may do) and may expire; it is shown once, when
    made. Software presents it as “Authorization: Bearer pli_...”.
    """


@click.command()
@click.option("--name", required=True, help="The software it is for, e.g. “LGC”.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    metavar="S[,S...]",
    help="What it may do: status, send, inbox:read, ... (`pli api-token create --help`).",
)
@click.option("--expires", type=Expiry(), help="90d, 12h, 1y or a date (default: never).")
@click.pass_obj
def create(state: State, name: str, scopes: tuple[str, ...], expires: int | None) -> None:
    """Make a token for a program, with the scopes it needs.

    \b
    Scopes:
      status             whether pli runs, this practice's identity and counts
      peers:read         the paired colleagues, pairings in progress
      peers:write        rename or remove a colleague
      pairing            pair with a new colleague
      send               send documents, retry or cancel a sending
      outbox:read        documents sent and their receipts
      inbox:read         received documents: list, read, receipts, proofs
      inbox:write        say a received document was exported, read, integrated
      events             follow arrivals and receipts as they happen
      mailboxes:read     the NATS mailboxes joined, the member key
      mailboxes:write    join or leave a NATS mailbox
      revocations:read   the revocations held
      revocations:write  revoke an identity
    """
    wanted = [part for item in scopes for part in item.split(",") if part.strip()]
    body = {"name": name, "scopes": wanted, "expires_at": expires}
    answer = state.client.post("/v1/api-tokens", body)
    if state.json:
        state.out.emit(answer)
        return
    out = state.out
    out.line(f"Token for “{answer['name']}” (scopes: {', '.join(answer['scopes'])}):")
    out.line()
    out.line(f"    {answer['token']}")
    out.line()
    out.line("Copy it into the program's settings now: pli keeps only a hash of it and")
    out.line("cannot show it again. The program sends it as “Authorization: Bearer <token>”.")
    if answer.get("expires_at"):
        out.line(f"It expires on {when(answer['expires_at'])}.")
    out.line(f"Revoke it with: pli api-token revoke {answer['id']}")


@click.command("list")
@click.pass_obj
def list_(state: State) -> None:
    """The tokens made: name, id, scopes, created, expiry, state."""
    rows = state.client.get("/v1/api-tokens")
    state.out.listing(
        rows,
        ["Name", "Id", "Scopes", "Created", "Expires", "State"],
        _cells,
        empty="No API token yet. `pli api-token create --name LGC --scope ...` makes one.",
    )


def _cells(row: dict[str, Any]) -> list[object]:
    expires = when(row["expires_at"]) if row.get("expires_at") else "never"
    return [
        row["name"],
        row["id"],
        ", ".join(row["scopes"]),
        when(row["created_at"]),
        expires,
        _STATES.get(row["state"], row["state"]),
    ]


@click.command()
@click.argument("token", metavar="NAME|ID")
@click.pass_obj
def revoke(state: State, token: str) -> None:
    """Revoke a token at once: software presenting it is refused from now on."""
    answer = state.client.delete(f"/v1/api-tokens/{quote_part(token)}")
    if state.json:
        state.out.emit(answer)
        return
    if answer.get("already_revoked"):
        state.out.line(f"The token “{answer['name']}” was already revoked.")
        return
    state.out.line(f"The token “{answer['name']}” is revoked: it opens nothing any more.")
