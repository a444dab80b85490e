"""Revocation from the command line: the printed certificate, and ``pli revoke``.

- ``write_certificate`` / ``certificate``: the revocation certificate made at
  ``pli init`` (and by ``pli daemon`` when it creates an identity), kept in the
  home as ``revocation-certificate.txt`` and ``.html`` (mode 0600), shown again
  by ``pli id --revocation-certificate`` (re-made from the key if the files
  were deleted or damaged).

What must not: print or log the identity key; the statement itself is public
(anyone holding it can revoke, which is the point of printing it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2p.cli.app import State
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
    return Written(found.to_text(), text_path, home / page.PAGE_NAME, found.revoked_at,
                   found.peer_id.fingerprint)  # fmt: skip


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
        state.out.emit({
            "revocation": written.statement, "fingerprint": written.fingerprint,
            "made_at": written.made_at, "text": str(written.text), "page": str(written.page),
        })  # fmt: skip
        return
    state.out.line(written.text.read_text(encoding="utf-8").rstrip("\n"))
    state.out.line("")
    for line in advice(written):
        state.out.line(line)
