"""Getting started: ``pli init``, ``pli id``, ``pli status`` and ``pli demo``.

``init`` and ``id`` work on the home folder directly (no daemon needed); ``status``
asks the running daemon through the local API; ``demo`` runs two throw-away
practices (``demo.py``, imported when it runs). ``pli daemon`` is in ``daemon.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p2p.cli.app import State, passphrase
from p2p.errors import BadInput, PliError, StorageError

if TYPE_CHECKING:
    from p2p.cli.revocation import Written
    from p2p.storage.keystore import Keys
    from protocol import LocalIdentity


def _load_keys(home: Path) -> Keys:
    from p2p.storage import keystore

    return keystore.load(home, passphrase=passphrase())


@click.command()
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
    from p2p.cli.revocation import write_certificate
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
        keys = keystore.create(home, passphrase=passphrase())
        config.save_profile(home, **profile)
        revocation = write_certificate(home, keys, name)
    except OSError as exc:
        raise StorageError(
            f"Could not write in {home} ({exc.strerror or exc}). "
            "Choose a folder you can write to with --home."
        ) from exc
    _report_created(state, home, keys, profile, revocation)


def _report_created(
    state: State, home: Path, keys: Keys, profile: dict[str, str], revocation: Written
) -> None:
    from p2p.cli.revocation import advice

    fingerprint = keys.identity.peer_id.fingerprint
    out = state.out
    if out.json:
        peer_id = keys.identity.peer_id.hex
        made = {"home": str(home), "fingerprint": fingerprint, "peer_id": peer_id, **profile}
        made["revocation_certificate"] = str(revocation.text)
        made["revocation_page"] = str(revocation.page)
        out.emit(made)
        return
    out.line(f"Created the identity of {profile['name']} in {home}.")
    out.line(f"Fingerprint: {fingerprint}")
    for line in advice(revocation):
        out.line(line)
    out.line(f"Next: start the daemon with: pli --home {home} daemon")


@click.command("id")
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
    from p2p.storage.config import display_name, load_profile

    home = state.home
    keys = _load_keys(home)
    profile = load_profile(home)
    me = keys.identity
    name = display_name(profile)
    if revocation:
        from p2p.cli.revocation import show_certificate

        show_certificate(state, keys, name)
    elif card:
        _print_card(state, me, profile)
    else:
        _print_identity(state, me, profile, name)


def _print_card(state: State, me: LocalIdentity, profile: dict[str, Any]) -> None:
    """This practice's signed profile card, base64 (``pli id --card``)."""
    import base64

    from p2p.storage.config import load, own_card

    wire = own_card(me, profile, load(state.home).advertise_addresses).sign(me.identity)
    encoded = base64.b64encode(wire).decode()
    if state.json:
        state.out.emit({"card": encoded})
    else:
        state.out.line(encoded)


def _print_identity(state: State, me: LocalIdentity, profile: dict[str, Any], name: str) -> None:
    """Name, profile, fingerprint and home, as fields or one JSON object."""
    home = state.home
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


@click.command()
@click.pass_obj
def status(state: State) -> None:
    """Is the daemon up? Fingerprint, peers online, outbox and inbox counts."""
    from p2p.cli.page import page_lines
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
            ("Then", _said_after(info)),
            (
                "Inbox",
                f"{_count(info.get('inbox', 0), 'document')}, "
                f"{info.get('inbox_new', 0)} not exported yet",
            ),
            *_our_receipts(info),
            *_disk_lines(info),
            *page_lines(info.get("page")),
        ]
    )
    if info.get("pending_names"):
        out.line(
            f"{_count(info['pending_names'], 'peer')} gave a new name on a signed card: they "
            "keep the name you know until you accept it. `pli peers` shows them."
        )
    from p2p.cli.mailbox import state_words

    for mailbox in info.get("mailboxes", []):
        waiting = (
            f"; {mailbox.get('waiting_in', 0)} waiting to be read here, "
            f"{mailbox.get('waiting_out', 0)} left there for colleagues"
        )
        out.fields([("Mailbox", f"{mailbox.get('url')}: {state_words(mailbox)}{waiting}")])
    if info.get("revoked_since"):
        out.line(
            "This practice's identity is revoked: colleagues refuse it. Create a new identity "
            "in a new home (`pli init`) and pair again."
        )


def _said_after(info: dict[str, Any]) -> str:
    """What recipients said after delivery, by their signed receipts."""
    return (
        f"{info.get('integrated', 0)} integrated, {info.get('not_integrated', 0)} not "
        f"integrated, {info.get('read', 0)} read (recipients' signed receipts)"
    )


def _our_receipts(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Which later receipts this practice sends (config.toml's receipts_integrated,
    receipts_read), and how many wait for their sender."""
    signs = info.get("signs_receipts")
    if not isinstance(signs, dict):
        return []  # an older daemon
    ours = ", ".join(f"{k} {'on' if signs.get(k) else 'off'}" for k in ("integrated", "read"))
    unsent = int(info.get("receipts_unsent") or 0)
    if unsent:
        ours += f"; {unsent} not with their sender yet"
    return [("Our receipts", ours)]


#: How ``pli status`` names each refusal code of the quota (storage/quota.py).
_REFUSAL_WORDS = {
    "disk-full": "disk nearly full",
    "quota-full": "a peer over its quota",
    "rate-limited": "a peer over its hourly limit",
    "storage-failed": "could not store",
}


def _disk_lines(info: dict[str, Any]) -> list[tuple[str, str]]:
    """Disk usage and the offers refused since the daemon started."""
    from p2p.cli.render import clean, size, when

    disk, refusals = info.get("disk"), info.get("refusals")
    if not isinstance(disk, dict) or not isinstance(refusals, dict):
        return []  # an older daemon
    used = (
        f"{size(disk.get('free'))} free (pli keeps {size(disk.get('reserve'))}); documents: "
        f"{size(disk.get('received'))} received, {size(disk.get('sent'))} sent, "
        f"{size(disk.get('quarantine'))} in partial transfers"
    )
    total = int(refusals.get("total") or 0)
    if not total:
        return [("Disk", used), ("Refused", "nothing since the daemon started")]
    counts = ", ".join(
        f"{n} {_REFUSAL_WORDS.get(str(code), 'other')}"
        for code, n in sorted((refusals.get("by_code") or {}).items())
    )
    last = f"last at {when(refusals.get('last_at'))}"
    if refusals.get("last_peer_name"):
        last += f" from {clean(refusals['last_peer_name'])}"
    return [("Disk", used), ("Refused", f"{_count(total, 'document')} ({counts}); {last}")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@click.command()
@click.pass_obj
def demo(state: State) -> None:
    """A temporary two-practice demo on this machine, each step explained.

    Two practices (a GP and a cardiologist) get their own temporary folder and daemon,
    listening and announcing themselves only on 127.0.0.1; they pair with a one-time
    code, the GP sends a letter with a PDF and a prescription, the cardiologist exports,
    verifies and answers. Everything is deleted at the end. Needs no daemon of yours.
    """
    from p2p.cli.demo import run_demo

    try:
        run_demo(json_lines=state.json)
    except (OSError, TimeoutError) as exc:
        raise PliError(f"The demo could not run: {exc}") from None
