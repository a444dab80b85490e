"""Pairing from the command line: ``pli pair invite|accept``, ``pli peers add|accept|pending``.

``pair`` is named in ``app.COMMANDS``, the ``peers`` ones in ``peers.PEERS_COMMANDS``.
The daemon does the cryptography (docs/api.md, "Pairing"); these commands start an
attempt, follow it with long polls (``GET /v1/pair/{id}?timeout=..&until=..``), show
the check code (SAS) and ask the person, then report ``paired`` or the daemon's sentence.

Exit codes (cli.md) follow the daemon's reason code (``"reason"`` in the status,
``protocol.is_security_reason``), never the sentence: a failure that may mean an
attack — a wrong code, check codes that differ, a computer that is not the
fingerprint typed, a request that broke its commitment — is a security failure,
exit 4; an expired, used or cancelled code, a timeout or a refusal is an ordinary
failure, exit 1 (nothing was attacked: the fix is a new invitation).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import click

from p2p.cli.app import PliGroup, State
from p2p.cli.render import clean
from p2p.errors import BadInput, PairingFailed, PliError

LONG_POLL = 25  # seconds per request; the API allows up to 60
ASK = "Does your colleague's screen show the same code?"
YOU_SAID_NO = (
    "You said the codes differ: nothing was saved. Someone may have tried to intercept "
    "the pairing. Make a new invitation and compare the codes again, ideally on the phone."
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?", re.IGNORECASE)


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``90s``, ``10m``, ``1h`` or a number of seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"“{value}” is not a duration: write e.g. 90s, 10m or 1h.", param, ctx)
        unit = (match.group(2) or "s")[0].lower()
        seconds = int(float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit])
        if not 10 <= seconds <= 24 * 3600:
            self.fail("An invitation lasts between 10 seconds and 24 hours.", param, ctx)
        return seconds


def _sas(code: str | None) -> str:
    return f"{code[:3]} {code[3:]}" if code and len(code) == 6 else str(code or "")


def _failed(message: str, reason: object) -> PliError:
    """The failure the daemon reported: the exit code follows its reason code (4 for a
    possible attack, 1 otherwise), never the wording of the sentence."""
    return PairingFailed(message, reason=str(reason) if reason else "rejected")


def follow(
    state: State,
    attempt: str,
    *,
    yes: bool,
    show_check_code: bool = False,
    sas_shown: bool = False,
) -> None:
    """Follow a pairing attempt to its end: show the SAS, ask, report. Raises on failure."""
    client, out = state.client, state.out
    until = "needs-confirmation,waiting-for-peer,paired,failed"
    shown, told = sas_shown, False
    while True:
        status = client.get(
            f"/v1/pair/{attempt}?timeout={LONG_POLL}&until={until}", timeout=LONG_POLL + 15
        )
        current = status.get("state")
        if current == "paired":
            _report_paired(state, status)
            return
        if current == "failed":
            message = str(status.get("message") or "The pairing failed. Nothing was saved.")
            raise _failed(message, status.get("reason"))
        if current == "needs-confirmation" and not shown:
            shown = True
            until = "waiting-for-peer,paired,failed"
            _show_sas(state, status, yes=yes)
            if not yes:
                _ask_and_answer(state, attempt)
        elif current == "waiting-for-peer":
            until = "paired,failed"
            if show_check_code and not shown:  # fingerprint request: read it to the colleague
                shown = True
                _show_check_code(state, status)
                continue
            if not shown and status.get("sas"):  # pre-confirmed before we looked
                shown = True
                _show_sas(state, status, yes=True)
            if not out.json and not told:
                told = True
                out.line("Waiting for the other computer to confirm…")


def _show_sas(state: State, status: dict[str, Any], *, yes: bool) -> None:
    out = state.out
    if out.json:
        out.emit({"event": "needs-confirmation", **_public(status)})
        return
    who = status.get("peer_name") or "the other practice"
    out.line(f"Connected to {clean(who)} ({status.get('fingerprint')}).")
    out.line(f"Check code: {_sas(status.get('sas'))}")
    if yes:
        out.line("(pre-confirmed with --yes: compare it with your colleague's screen anyway)")


def _show_check_code(state: State, status: dict[str, Any]) -> None:
    out = state.out
    if out.json:
        out.emit({"event": "waiting-for-peer", **_public(status)})
        return
    out.line(f"Check code: {_sas(status.get('sas'))}")
    out.line(
        "Read it to your colleague: they run `pli peers accept` and must see the same code. "
        "Waiting for them…"
    )


def _ask_and_answer(state: State, attempt: str) -> None:
    """Ask the person; a "no" or an interruption refuses the pairing on the daemon."""
    try:
        same = click.confirm(ASK, default=False, err=state.json)
    except click.Abort:
        state.client.post(f"/v1/pair/{attempt}/confirm", {"yes": False})
        raise PliError("Stopped: the pairing was refused. Nothing was saved.") from None
    state.client.post(f"/v1/pair/{attempt}/confirm", {"yes": same})
    if not same:
        raise _failed(YOU_SAID_NO, "you-refused")


def _report_paired(state: State, status: dict[str, Any]) -> None:
    out = state.out
    if out.json:
        out.emit({"event": "paired", **_public(status)})
        return
    out.line(
        f"Paired with {clean(status.get('peer_name'))} ({status.get('fingerprint')}). "
        "You can now send each other documents."
    )


def _public(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "kind", "role", "state", "sas", "peer_name", "fingerprint", "peer_id")
    return {key: status.get(key) for key in keys}


def _address(text: str | None) -> str | None:
    if text is None:
        return None
    from p2p.storage.config import parse_address

    host, port = parse_address(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- pli pair ------------------------------------------------------------------------------


@click.group(cls=PliGroup)
def pair() -> None:
    """Pair with a colleague: one of you runs `pli pair invite` and reads the code to the
    other, who runs `pli pair accept CODE`. Both screens then show a check code: compare
    them (on the phone, or side by side) before confirming."""


@pair.command("invite", short_help="Make a one-time pairing code and wait for the colleague.")
@click.option(
    "--expires",
    type=Duration(),
    default="10m",
    show_default=True,
    help="How long the code works (90s, 10m, 1h ...).",
)
@click.option("--yes", is_flag=True, help="Do not ask to confirm the check code.")
@click.option("--no-wait", is_flag=True, help="Return at once; the daemon finishes (needs --yes).")
@click.pass_obj
def pair_invite(state: State, expires: int, yes: bool, no_wait: bool) -> None:
    """Print a one-time code to read to your colleague, wait for them, compare check codes."""
    if no_wait and not yes:
        raise click.UsageError(
            "--no-wait needs --yes: without you watching, nobody could compare the check "
            "codes. Add --yes to pre-confirm them, or leave --no-wait out."
        )
    client, out = state.client, state.out
    invitation = client.post("/v1/pair/invite", {"expires": expires, "yes": yes})
    if out.json:
        keys = ("id", "code", "nameplate", "expires_at", "address")
        out.emit({"event": "invitation", **{key: invitation.get(key) for key in keys}})
    else:
        from p2p.cli.render import when

        out.line(f"Pairing code: {invitation['code']}")
        out.line(
            f"Read it to your colleague; they type: pli pair accept {invitation['code']}"
            + (f" --address {invitation['address']}" if invitation.get("address") else "")
        )
        out.line(f"The code works once, until {when(invitation.get('expires_at'))}.")
    if no_wait:
        if not out.json:
            out.line("The daemon will finish the pairing; `pli peers` will list your colleague.")
        return
    try:
        follow(state, str(invitation["id"]), yes=yes)
    except KeyboardInterrupt:
        with contextlib.suppress(PliError):
            client.delete(f"/v1/pair/invite/{invitation['nameplate']}")
        raise PliError("Stopped: the invitation was cancelled. Nothing was saved.") from None


@pair.command("accept", short_help="Join a colleague's invitation with its code.")
@click.argument("code")
@click.option(
    "--address",
    metavar="HOST:PORT",
    help="Where the colleague's daemon listens (default: found on the local network).",
)
@click.option("--yes", is_flag=True, help="Do not ask to confirm the check code.")
@click.pass_obj
def pair_accept(state: State, code: str, address: str | None, yes: bool) -> None:
    """Join the invitation whose CODE your colleague read to you; compare the check codes."""
    from protocol import BadCode, parse_code

    try:
        parsed = str(parse_code(code))
    except BadCode as exc:
        raise BadInput(str(exc)) from None
    body: dict[str, Any] = {"code": parsed, "yes": yes}
    if address is not None:
        body["address"] = _address(address)
    elif not state.json:
        state.out.line("Looking for the invitation on the local network and in the mailboxes…")
    attempt = state.client.post("/v1/pair/accept", body, timeout=60)
    if state.json:
        state.out.emit(
            {"event": "accepted", "id": attempt.get("id"), "address": attempt.get("address")}
        )
    try:
        follow(state, str(attempt["id"]), yes=yes)
    except KeyboardInterrupt:
        raise PliError("Stopped: nothing was saved on this computer.") from None


# --- pli peers add / accept / pending ------------------------------------------------------


def check_fingerprint(text: str) -> str:
    """A fingerprint typed by a person, checked (typos caught) before any network call."""
    from protocol import FingerprintError, normalize_fingerprint

    try:
        canonical = normalize_fingerprint(text)
    except FingerprintError as exc:
        raise BadInput(
            f"The fingerprint you typed is not right: {exc}. Compare it with your colleague's "
            "letterhead or screen (`pli id` shows it)."
        ) from None
    return "-".join(canonical[i : i + 5] for i in range(0, len(canonical), 5))


@click.command("add")
@click.argument("fingerprint")
@click.option(
    "--address",
    metavar="HOST:PORT",
    help="Where the colleague's daemon listens (default: through the mailboxes joined).",
)
@click.pass_obj
def peers_add(state: State, fingerprint: str, address: str | None) -> None:
    """Ask the practice at HOST:PORT (or in a shared mailbox) to pair, if its key is
    FINGERPRINT (from its letterhead).

    Shows a check code to read to the colleague, who accepts with `pli peers accept`.
    """
    typed = check_fingerprint(fingerprint)
    where = _address(address)
    body = {"fingerprint": typed, **({"address": where} if where else {})}
    attempt = state.client.post("/v1/peers/add", body, timeout=60)
    if state.json:
        state.out.emit({"event": "requested", "id": attempt.get("id"), "address": where})
    else:
        state.out.line(f"Asking {where or 'through the mailboxes'} to pair (fingerprint {typed})…")
    try:
        follow(state, str(attempt["id"]), yes=True, show_check_code=True)
    except KeyboardInterrupt:
        raise PliError(
            "Stopped waiting. If your colleague accepts within a few minutes the pairing "
            "still completes; `pli peers` will show it."
        ) from None


def _pending(state: State) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = state.client.get("/v1/pair/pending")
    return rows


@click.command("pending")
@click.pass_obj
def peers_pending(state: State) -> None:
    """Pairing requests and check codes waiting for your answer."""
    state.out.listing(
        _pending(state),
        ["Name", "Profession", "Fingerprint", "Check code", "Kind", "Id"],
        lambda r: [
            r.get("peer_name"),
            r.get("profession"),
            r.get("fingerprint"),
            _sas(r.get("sas")),
            "request" if r.get("kind") == "fingerprint" else "code",
            r.get("id"),
        ],
        empty="No pairing request is waiting.",
    )


def _matching_request(rows: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The request PEER designates: its id, or at least 4 groups of its fingerprint."""
    from p2p.services.pairing.fingerprint import select_request

    requests = {
        str(r.get("id")): r
        for r in rows
        if r.get("kind") == "fingerprint" and r.get("role") == "responder"
    }
    chosen = select_request(
        [(rid, str(r.get("fingerprint", ""))) for rid, r in requests.items()], wanted
    )
    return requests[chosen]


@click.command("accept")
@click.argument("peer")
@click.option("--yes", is_flag=True, help="Do not ask to compare the check code.")
@click.option("--refuse", is_flag=True, help="Decline the request instead.")
@click.pass_obj
def peers_accept(state: State, peer: str, yes: bool, refuse: bool) -> None:
    """Accept the pairing request from PEER: at least the first 4 groups of its fingerprint
    (as your colleague reads it to you), or its request id from `pli peers pending`."""
    out = state.out
    request = _matching_request(_pending(state), peer.strip())
    if not out.json:
        out.line(
            f"Request from {clean(request.get('peer_name'))}"
            + (f", {clean(request.get('profession'))}" if request.get("profession") else "")
            + f" ({request.get('fingerprint')})."
        )
        out.line(
            f"Check code: {_sas(request.get('sas'))}   fingerprint: {request.get('fingerprint')}"
        )
        out.line("Both must be what your colleague reads to you.")
    accept = not refuse
    if accept and not yes:
        try:
            accept = click.confirm(
                "Does your colleague read you the same check code?", default=False, err=state.json
            )
        except click.Abort:
            accept = False
    status = state.client.post("/v1/peers/accept", {"peer": request["id"], "yes": accept})
    if not accept:
        if out.json:
            out.emit({"event": "declined", **_public(status)})
        else:
            out.line("Declined: nothing was saved.")
        return
    follow(state, str(request["id"]), yes=True, sas_shown=True)
