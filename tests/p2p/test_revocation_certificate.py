"""The revocation certificate made at `pli init` and shown by `pli id --revocation-certificate`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from p2p.storage import keystore
from protocol import Revocation

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse


def _init(home: Path) -> None:
    result = run("--home", home, "init", "--name", "Dr Alice Martin")
    assert result.exit_code == 0, result.output


def test_init_writes_a_private_printable_certificate_of_this_identity(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("--home", home, "init", "--name", "Dr Alice Martin")
    assert "Print it now and keep it away from this computer" in result.output
    text, page = home / "revocation-certificate.txt", home / "revocation-certificate.html"
    for path in (text, page):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    revocation = Revocation.from_text(text.read_text())
    assert revocation.identity == keystore.load(home).identity.public
    html = page.read_text()
    assert "<svg" in html  # the QR code
    assert Revocation.from_text(html) == revocation
    assert "Dr Alice Martin" in html
    assert "pli revoke --certificate" in text.read_text()


def test_id_shows_the_same_certificate_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _init(home)
    made = Revocation.from_text((home / "revocation-certificate.txt").read_text())
    shown = run("--home", home, "id", "--revocation-certificate")
    assert shown.exit_code == 0
    assert made.to_text() in shown.output
    as_json = json.loads(run("--home", home, "--json", "id", "--revocation-certificate").output)
    assert as_json["revocation"] == made.to_text()
    assert as_json["fingerprint"] == made.peer_id.fingerprint


def test_a_deleted_or_foreign_certificate_is_made_again_from_the_key(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    _init(home)
    _init(other)
    (home / "revocation-certificate.html").unlink()
    (home / "revocation-certificate.txt").write_text(
        (other / "revocation-certificate.txt").read_text()  # someone else's: never shown as ours
    )
    shown = json.loads(run("--home", home, "--json", "id", "--revocation-certificate").output)
    revocation = Revocation.from_text(shown["revocation"])
    assert revocation.identity == keystore.load(home).identity.public
    assert (home / "revocation-certificate.html").exists()
    assert Revocation.from_text((home / "revocation-certificate.txt").read_text()) == revocation
