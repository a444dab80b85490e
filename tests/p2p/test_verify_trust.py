"""``pli verify`` says "valid" only for a key this practice trusts (issue 8 §1.3).

Bob's home is a real daemon's (started on loopback, Alice's card added as a paired
peer); the documents are sealed for real and exported through the fake API. A
never-paired key (the forger) signs a prescription under Alice's name: its page, its
QR text and its sidecar are all correct signatures, and all exit 4. A sidecar planted
next to a genuine export is refused, ``--signer`` trusts a key given by hand, and the
home is read without the daemon and without being changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import Result

from p2p.storage import config as config_mod
from p2p.storage import keystore
from protocol import LocalIdentity, PeerId

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .conftest import Running, start_daemon
from .fake_api import FakeApi
from .test_cli_documents import LETTER, META, PDF, Sent, _prescription, export

Api = tuple[Path, FakeApi]
ALICE = LocalIdentity.generate(now=0)  # paired with Bob
FORGER = LocalIdentity.generate(now=0)  # never paired with anyone
ANYONE = "Anyone can make a key and sign any document with it"
ORDER = "ordonnance-2027-01-02.json"


@pytest.fixture
async def bob(tmp_path: Path) -> AsyncIterator[Running]:
    bob = await start_daemon(tmp_path / "bob", "Dr Bob Durand")
    await bob.daemon.add_peer(ALICE.card(1, name="Dr Alice Martin").sign(ALICE.identity), [])
    yield bob
    await bob.stop()


def verify(home: Path, path: Path, *extra: str) -> Result:
    return run("--home", home, "verify", path, *extra)


def prescription_forms(api: Api, folder: Path, sender: LocalIdentity) -> dict[str, Path]:
    """A prescription signed by ``sender`` under Alice's name: its page, QR text, sidecar."""
    home, server = api
    content = _prescription(sender, name="Dr Alice Martin")
    sent = Sent(server, "prescription", [(ORDER, content, "application/json")], META, sender)
    done = export(home, sent.id, folder)
    page = Path(done["page"])
    scan = folder / "scan.txt"
    scan.write_text(page.read_text(encoding="utf-8").split('id="pli-evidence">')[1].split("<")[0])
    return {"page": page, "qr": scan, "sidecar": Path(done["sidecar"])}


@pytest.mark.parametrize("form", ["page", "qr", "sidecar"])
async def test_a_never_paired_key_exits_4(
    bob: Running, fake_api: Api, tmp_path: Path, form: str
) -> None:
    forged = prescription_forms(fake_api, tmp_path / "forged", FORGER)[form]
    result = verify(bob.home, forged)
    assert result.exit_code == 4, result.output
    assert "NOT VALID: the signature is correct" in result.stderr
    assert ANYONE in result.stderr
    assert FORGER.peer_id.fingerprint in result.stderr
    assert "Dr Alice" not in result.stdout
    assert "valid" not in result.stdout


@pytest.mark.parametrize("form", ["page", "qr", "sidecar"])
async def test_a_paired_peer_is_valid_and_named(
    bob: Running, fake_api: Api, tmp_path: Path, form: str
) -> None:
    genuine = prescription_forms(fake_api, tmp_path / "genuine", ALICE)[form]
    result = verify(bob.home, genuine)
    assert result.exit_code == 0, result.output
    assert "The signature is valid" in result.stdout
    assert "which is Dr Alice Martin, a paired peer." in result.stdout
    report = json.loads(verify(bob.home, genuine, "--json").stdout)
    assert report["valid"] is True
    assert report["signer"] == {
        "relation": "paired",
        "name": "Dr Alice Martin",
        "fingerprint": ALICE.peer_id.fingerprint,
    }


async def test_signer_trusts_exactly_the_key_given(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    page = prescription_forms(fake_api, tmp_path / "f", FORGER)["page"]
    given = verify(bob.home, page, "--signer", FORGER.peer_id.fingerprint.lower())
    assert given.exit_code == 0, given.output
    assert "which is the key you gave with --signer." in given.stdout
    other = verify(bob.home, page, "--signer", ALICE.peer_id.fingerprint)
    assert other.exit_code == 4
    assert ANYONE in other.stderr
    typo = FORGER.peer_id.fingerprint[:-1] + ("A" if FORGER.peer_id.fingerprint[-1] != "A" else "B")
    refused = verify(bob.home, page, "--signer", typo)
    assert refused.exit_code == 1
    assert "--signer needs the complete fingerprint" in refused.stderr


async def test_this_practice_trusts_its_own_key(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    own = bob.daemon.me
    sent = Sent(fake_api[1], "letter", [("lettre.txt", LETTER, "text/plain")], META, own)
    done = export(fake_api[0], sent.id, tmp_path / "out")
    result = verify(bob.home, Path(done["files"][0]))
    assert result.exit_code == 0, result.output
    assert "which is this practice's own key (Dr Bob Durand)." in result.stdout


async def test_a_removed_peer_is_no_longer_trusted(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    page = prescription_forms(fake_api, tmp_path / "p", ALICE)["page"]
    await bob.daemon.remove_peer(ALICE.peer_id.hex)
    result = verify(bob.home, page)
    assert result.exit_code == 4
    assert "the key of “Dr Alice Martin”, a peer this practice has removed" in result.stderr


async def test_verify_names_a_peer_by_the_name_in_use(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    """Issue 8 §1.2: a new name on the peer's card is not the one verify gives until accepted."""
    page = prescription_forms(fake_api, tmp_path / "p", ALICE)["page"]
    newer = ALICE.card(2, name="Dr Alice Renamed")
    wire = newer.sign(ALICE.identity)
    await asyncio.to_thread(bob.daemon.peers.card_updated, ALICE.peer_id.hex, newer, wire)
    assert "which is Dr Alice Martin, a paired peer." in verify(bob.home, page).stdout
    await bob.daemon.peers.accept_name(ALICE.peer_id.fingerprint)
    assert "which is Dr Alice Renamed, a paired peer." in verify(bob.home, page).stdout


async def test_a_prescription_must_name_its_signer_as_prescriber(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    content = _prescription(ALICE, fingerprint="")
    sent = Sent(fake_api[1], "prescription", [(ORDER, content, "application/json")], {}, ALICE)
    done = export(fake_api[0], sent.id, tmp_path / "out")
    for target in (Path(done["page"]), Path(done["sidecar"])):
        result = verify(bob.home, target)
        assert result.exit_code == 4, result.output
        assert "does not name its prescriber's key" in result.stderr


async def test_a_planted_sidecar_is_refused(bob: Running, fake_api: Api, tmp_path: Path) -> None:
    home, server = fake_api
    files = [("lettre.txt", LETTER, "text/plain"), ("ecg.pdf", PDF, "application/pdf")]
    genuine = Sent(server, "letter", files, META, ALICE)
    out = tmp_path / "out"
    export(home, genuine.id, out)
    assert verify(bob.home, out / "ecg.pdf").exit_code == 0
    other = {**META, "patient_name": "DURAND Paul"}
    planted = Sent(server, "letter", [("ecg.pdf", PDF, "application/pdf")], other, FORGER)
    elsewhere = export(home, planted.id, tmp_path / "elsewhere")
    # Sorted first in the folder: the old lookup took the first sidecar listing the name.
    (out / "a.pli.json").write_bytes(Path(elsewhere["sidecar"]).read_bytes())

    ambiguous = verify(bob.home, out / "ecg.pdf")
    assert ambiguous.exit_code == 4, ambiguous.output
    assert "Several signature files next to “ecg.pdf” describe it" in ambiguous.stderr
    assert "DURAND" not in ambiguous.output

    (out / "lettre.txt.pli.json").unlink()  # left alone, the planted one is the forger's
    alone = verify(bob.home, out / "ecg.pdf")
    assert alone.exit_code == 4
    assert ANYONE in alone.stderr


async def test_a_sidecar_listing_the_name_with_another_hash_is_not_chosen(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    home, server = fake_api
    sent = Sent(server, "letter", [("ecg.pdf", PDF, "application/pdf")], META, ALICE)
    out = tmp_path / "out"
    export(home, sent.id, out)
    (out / "ecg.pdf.pli.json").rename(out / "zz.pli.json")
    (out / "ecg.pdf").write_bytes(PDF + b"\n")
    result = verify(bob.home, out / "ecg.pdf")
    assert result.exit_code == 4
    assert "ecg.pdf is not the file that was signed" in result.stderr


async def test_verify_reads_the_home_without_the_daemon_and_changes_nothing(
    bob: Running, fake_api: Api, tmp_path: Path
) -> None:
    page = prescription_forms(fake_api, tmp_path / "p", ALICE)["page"]
    await bob.stop()
    before = {p.name: p.stat().st_mtime_ns for p in bob.home.iterdir()}
    result = verify(bob.home, page)
    assert result.exit_code == 0, result.output
    assert "which is Dr Alice Martin, a paired peer." in result.stdout
    after = {p.name: p.stat().st_mtime_ns for p in bob.home.iterdir()}
    assert after == before


def test_a_home_with_a_passphrase_trusts_its_own_key(fake_api: Api, tmp_path: Path) -> None:
    home = tmp_path / "locked"
    keys = keystore.create(home, passphrase="correct horse")
    config_mod.save_profile(home, name="Dr Carole Petit")
    sent = Sent(fake_api[1], "letter", [("lettre.txt", LETTER, "text/plain")], META, keys.identity)
    done = export(fake_api[0], sent.id, tmp_path / "out")
    result = verify(home, Path(done["sidecar"]))  # no PLI_PASSPHRASE: the public key suffices
    assert result.exit_code == 0, result.output
    assert "which is this practice's own key (Dr Carole Petit)." in result.stdout
    assert not (home / "pli.db").exists()


def test_no_home_trusts_nothing_but_signer(fake_api: Api, tmp_path: Path) -> None:
    sent = Sent(fake_api[1], "letter", [("lettre.txt", LETTER, "text/plain")], META, ALICE)
    done = export(fake_api[0], sent.id, tmp_path / "out")
    result = verify(tmp_path / "nowhere", Path(done["sidecar"]))
    assert result.exit_code == 4
    assert "no pli home was found" in result.stderr
    assert PeerId(ALICE.peer_id.digest).fingerprint in result.stderr


def test_an_older_home_gets_its_public_key_file_back(tmp_path: Path) -> None:
    home = tmp_path / "older"
    keys = keystore.create(home, passphrase="correct horse")
    (home / keystore.PUBLIC_FILE).unlink()  # made before public.json existed
    assert keystore.public_key(home) is None  # the secrets are sealed: nothing to read
    keystore.load(home, passphrase="correct horse")  # what the daemon does at start
    assert keystore.public_key(home) == keys.identity.public.key
