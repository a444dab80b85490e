"""Revocation from the command line: the printed certificate, and ``pli revoke``.

- ``write_certificate`` / ``certificate``: the revocation certificate made at
  ``pli init`` (and by ``pli daemon`` when it creates an identity), kept in the
  home as ``revocation-certificate.txt`` and ``.html`` (mode 0600), shown again
  by ``pli id --revocation-certificate`` (re-made from the key if the files
  were deleted or damaged).

- ``pli revoke --certificate FILE [--address HOST:PORT ...]`` / ``pli revoke --yes``:
  push a statement to every pli reachable. When this home's daemon runs, the
  command goes through it (``POST /v1/revocations``): the daemon knows the
  paired peers' addresses and the daemons its discovery sees on the LAN, it
  stores and applies the revocation itself, and ``--yes`` needs its key anyway.
  Without a daemon (a replacement laptop, a brand-new home with no identity),
  ``--certificate`` dials directly: a statement is self-authenticating, so no
  identity and no Noise session are needed, only an HTTP POST of 105 bytes to
  each given address and each pli daemon a 3-second mDNS browse finds (when the
  home's ``discovery`` setting is on; the browse announces nothing).

What must not: print or log the identity key; the statement itself is public
(anyone holding it can revoke, which is the point of printing it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p2p.cli.app import State

if TYPE_CHECKING:
    from p2p.storage.keystore import Keys
    from protocol import Revocation


@dataclass(frozen=True)
class Written:
    statement: str
    text: Path
    page: Path
    made_at: int
    fingerprint: str


def write_certificate(home: Path, keys: Keys, name: str, *, now: int | None = None) -> Written:
    """Sign a revocation of this identity and write the printable certificate in the home."""
    from protocol import Revocation

    made_at = int(time.time()) if now is None else now
    return _write(home, Revocation.issue(keys.identity.identity, now=made_at), name)


def _write(home: Path, revocation: Revocation, name: str) -> Written:
    from p2p.documents import revocation_page as page
    from p2p.storage.files import write_atomic

    cert = page.Certificate(
        revocation.to_text(), name, revocation.peer_id.fingerprint, revocation.revoked_at
    )
    text_path, page_path = home / page.TEXT_NAME, home / page.PAGE_NAME
    write_atomic(text_path, [page.render_text(cert).encode("utf-8")])
    write_atomic(page_path, [page.render_html(cert).encode("utf-8")])
    return Written(cert.statement, text_path, page_path, cert.made_at, cert.fingerprint)


def certificate(home: Path, keys: Keys, name: str) -> Written:
    """The certificate in the home; made again (and rewritten) if it is missing or not ours."""
    from p2p.documents import revocation_page as page
    from protocol import RemoteProtocolError, Revocation

    text_path = home / page.TEXT_NAME
    try:
        found = Revocation.from_text(text_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RemoteProtocolError):
        found = None
    if found is None or found.identity != keys.identity.public:
        return write_certificate(home, keys, name)
    if not (home / page.PAGE_NAME).exists():
        return _write(home, found, name)
    return Written(
        found.to_text(),
        text_path,
        home / page.PAGE_NAME,
        found.revoked_at,
        found.peer_id.fingerprint,
    )


def advice(written: Written) -> list[str]:
    """What to tell the person about the certificate they were just given."""
    return [
        f"A revocation certificate was saved in {written.text}",
        f"  and, with a QR code, in {written.page}.",
        "Print it now and keep it away from this computer, with your important papers.",
        "If this computer is lost or stolen, `pli revoke --certificate FILE` run from any "
        "computer with pli tells your colleagues to stop trusting this identity.",
        "Anyone holding it can revoke your identity: once printed, you may delete both files "
        "(`pli id --revocation-certificate` makes them again).",
    ]


def show_certificate(state: State, keys: Keys, name: str) -> None:
    """``pli id --revocation-certificate``: the statement, the files, what to do with them."""
    written = certificate(state.home, keys, name)
    if state.json:
        state.out.emit(
            {
                "revocation": written.statement,
                "fingerprint": written.fingerprint,
                "made_at": written.made_at,
                "text": str(written.text),
                "page": str(written.page),
            }
        )
        return
    state.out.line(written.text.read_text(encoding="utf-8").rstrip("\n"))
    state.out.line("")
    for line in advice(written):
        state.out.line(line)


# --- pli revoke ------------------------------------------------------------------------

#: Seconds the direct mode listens on the LAN for pli daemons (when discovery is on).
LAN_BROWSE_SECONDS = 3.0
RESULTS = {
    "stored": "told: it will refuse this key from now on",
    "known": "already knew",
    "refused": "refused the statement",
    "unreachable": "did not answer",
}


def _read_certificate(path: Path) -> Revocation:
    from p2p.errors import BadInput, SecurityFailure
    from protocol import RemoteProtocolError, Revocation

    try:
        with open(path, "rb") as handle:
            data = handle.read(256 * 1024 + 1)
        text = data.decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f"Could not read {path} ({exc.strerror or exc}).") from exc
    try:
        return Revocation.from_text(text)
    except RemoteProtocolError:
        raise SecurityFailure(
            f"{path} is not a valid revocation certificate: it was damaged or changed, or it "
            "was not signed by the identity it names. Nothing was sent. Use the file or the "
            "QR code made by `pli init`."
        ) from None


def _daemon_running(state: State) -> bool:
    from p2p.errors import DaemonNotRunning

    if not (state.home / "api.sock").exists():
        return False
    try:
        state.client.get("/v1/status", timeout=3.0)
    except DaemonNotRunning:
        return False
    return True


def _checked(addresses: tuple[str, ...]) -> list[str]:
    from p2p.storage.config import parse_address

    found = []
    for text in addresses:
        host, port = parse_address(text)
        found.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return found


async def _push_direct(wire: bytes, targets: list[str]) -> list[dict[str, Any]]:
    import asyncio

    import aiohttp

    from p2p.net.transport import post_revocation

    async def one(session: aiohttp.ClientSession, address: str) -> dict[str, Any]:
        try:
            status = await post_revocation(session, address, wire)
        except (ConnectionError, OSError, TimeoutError):
            return {"address": address, "peer_id": None, "result": "unreachable"}
        result = {201: "stored", 200: "known"}.get(status)
        if result is None:
            result = "unreachable" if status == 429 or status >= 500 else "refused"
        return {"address": address, "peer_id": None, "result": result}

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session, a) for a in targets)))


async def _lan_daemons(home: Path) -> list[str]:
    """pli daemons announcing themselves on the LAN, if this home's settings allow looking."""
    import asyncio

    from p2p.storage import config
    from protocol import new_discovery_secret

    settings = config.load(home)
    if not settings.discovery:
        return []
    from p2p.net.discovery import Discovery

    lan = Discovery(
        port=1,
        interfaces=list(settings.interfaces) or None,
        own_secret=new_discovery_secret(),
        peer_secrets=dict,
        on_event=lambda _event: None,
        announce=False,
    )
    await lan.start()
    try:
        await asyncio.sleep(LAN_BROWSE_SECONDS)
        return lan.addresses()
    finally:
        await lan.stop()


def _direct(state: State, revocation: Revocation, addresses: list[str]) -> list[dict[str, Any]]:
    """Push the statement from here (no daemon) to ``addresses`` and the LAN's daemons."""
    import asyncio

    from p2p.errors import BadInput

    if not addresses and not _lan_possible(state):
        raise BadInput(
            "Say where to send it: --address HOST:PORT for each colleague's pli (this "
            "home's settings turn off looking for pli daemons on the local network)."
        )

    async def run() -> list[dict[str, Any]]:
        targets = list(dict.fromkeys([*addresses, *await _lan_daemons(state.home)]))
        return await _push_direct(revocation.to_wire(), targets) if targets else []

    return asyncio.run(run())


@click.command()
@click.option(
    "--certificate",
    "certificate_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The revocation certificate made by `pli init` (file or scanned QR code).",
)
@click.option(
    "--address",
    "addresses",
    metavar="HOST:PORT",
    multiple=True,
    help="A colleague's pli to tell (repeat for each); LAN daemons are found anyway.",
)
@click.option(
    "--yes", is_flag=True, help="Revoke THIS practice's own identity, now. It cannot be undone."
)
@click.pass_obj
def revoke(
    state: State, certificate_file: Path | None, addresses: tuple[str, ...], yes: bool
) -> None:
    """Push a revocation to every peer reachable: the paired peers of this home's daemon
    (if one runs), every pli daemon seen on the local network, and each --address.

    With --certificate it works from any computer with pli, even a new one with no
    identity and no daemon: the statement is pushed directly. With --yes (on the
    machine itself, e.g. when a colleague leaves) the running daemon signs it.
    """
    from p2p.errors import DaemonNotRunning

    if (certificate_file is None) == (not yes):
        raise click.UsageError("Give either --certificate FILE or --yes (not both).")
    checked = _checked(addresses)
    via_daemon = _daemon_running(state)
    if yes and not via_daemon:
        raise DaemonNotRunning(
            "`pli revoke --yes` needs this practice's daemon (it signs the statement and "
            "knows the paired peers). Start it with `pli daemon`, or use the printed "
            "certificate: pli revoke --certificate FILE --address HOST:PORT"
        )
    revocation = None if yes else _read_certificate(certificate_file)  # type: ignore[arg-type]
    if via_daemon:
        fingerprint, pushed = _through_daemon(state, revocation, checked)
        _report(state, fingerprint, pushed, via_daemon=True, own=yes)
    else:
        assert revocation is not None
        _from_here(state, revocation, checked)


def _from_here(state: State, revocation: Revocation, addresses: list[str]) -> None:
    """No daemon: push the certificate's statement directly, report, fail if nobody heard."""
    from p2p.errors import PliError

    pushed = _direct(state, revocation, addresses)
    _report(state, revocation.peer_id.fingerprint, pushed, via_daemon=False, own=False)
    if not any(p["result"] in ("stored", "known") for p in pushed):
        raise PliError(
            "No pli answered, so nobody was told yet. Check the addresses (host:port of each "
            "colleague's pli) and the network, then run the same command again."
        )


def _through_daemon(
    state: State, revocation: Revocation | None, addresses: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """The running daemon learns and pushes the statement (``None``: it signs its own)."""
    body: dict[str, Any] = {"addresses": addresses}
    body.update({"self": True} if revocation is None else {"statement": revocation.to_text()})
    answer = state.client.post("/v1/revocations", body)
    return str(answer["fingerprint"]), list(answer["pushed"])


def _lan_possible(state: State) -> bool:
    from p2p.storage import config

    return config.load(state.home).discovery


def _report(
    state: State, fingerprint: str, pushed: list[dict[str, Any]], *, via_daemon: bool, own: bool
) -> None:
    told = sum(1 for p in pushed if p["result"] in ("stored", "known"))
    if state.json:
        state.out.emit(
            {
                "revoked": fingerprint,
                "via": "daemon" if via_daemon else "direct",
                "told": told,
                "pushed": pushed,
            }
        )
        return
    state.out.line(f"Revocation of the identity {fingerprint}:")
    for item in pushed:
        who = item.get("name") or item["address"]
        state.out.line(f"  {who}: {RESULTS.get(item['result'], item['result'])}")
    if not pushed:
        state.out.line("  no pli daemon to tell was found.")
    state.out.line(
        f"{told} of {len(pushed)} told. Each one passes it on to its own paired "
        "colleagues, so those you could not reach learn it too."
    )
    if own:
        state.out.line(
            "This practice's identity is revoked for good. Stop this daemon; to go on with "
            "pli, create a new identity in a new home (`pli init`) and pair again."
        )


# --- showing the revoked state ---------------------------------------------------------


def revoked_mark(since: object) -> str:
    """`` (revoked since DATE)`` after a sender's name, or nothing."""
    if not isinstance(since, int):
        return ""
    return f" (revoked since {time.strftime('%Y-%m-%d', time.localtime(since))})"


def revoked_peer_advice(rows: list[dict[str, Any]]) -> list[str]:
    from p2p.cli.render import clean, when

    lines = []
    for row in rows:
        if row.get("state") != "revoked":
            continue
        lines.append(
            f"The key of {clean(row.get('name'))} was revoked (pli learned it "
            f"{when(row.get('revoked_since'))}): pli refuses it and sends it nothing more; the "
            "documents already exchanged stay. If your colleague goes on with a new key, pair "
            "again with it (`pli pair invite`, or `pli peers add FINGERPRINT --address ...`), "
            "after checking the new fingerprint with them by phone."
        )
    return lines


def revoked_document_warning(info: dict[str, Any]) -> list[str]:
    since = info.get("sender_revoked_since")
    if not isinstance(since, int):
        return []
    if info.get("signed_after_revocation"):
        return [
            "Warning: this document says it was written after its sender's key was revoked. "
            "Whoever holds that key now may not be your colleague: do not act on it without "
            "checking with them another way."
        ]
    return [
        "Its sender's key has since been revoked; this document came before that and its "
        "signature was checked when it arrived."
    ]
