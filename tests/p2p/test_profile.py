"""Issue 11: the profile and the key passphrase, from the CLI and the local API.

Real daemons on loopback. A changed profile is a new signed card (a higher
``seq``) that reaches every paired peer: at once for those reachable, at the next
session for one that was off. ``pli profile`` shows it without the daemon;
``pli profile set`` goes through the daemon, or writes the home when none runs.
``pli passphrase`` adds, changes and removes the passphrase of the key file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import Result

from p2p.errors import KeystoreError
from p2p.storage import keystore
from p2p.storage.config import load_profile
from protocol import ProfileCard

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .conftest import Running, start_daemon, wait_for

Three = tuple[Running, Running, Running]
PASSPHRASE = "correct horse battery staple"


async def pli(home: Path, *args: str | Path, answer: str | None = None) -> Result:
    return await asyncio.to_thread(run, "--home", home, *args, answer=answer)


def card_of(holder: Running, peer: Running) -> ProfileCard:
    row = holder.daemon.store.peer(peer.daemon.me.peer_id.hex)
    assert row is not None
    return ProfileCard.from_wire(row.card)


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest Argon2id settings pli accepts: these tests are about the steps."""
    real = keystore._kdf_params
    monkeypatch.setattr(keystore, "_kdf_params", lambda: {**real(), "ops": 1, "mem": 8192})


async def test_a_new_profile_reaches_every_paired_peer(three: Three) -> None:
    a, b, m = three
    before = card_of(a, b).seq
    status, answer = await b.api(
        "POST", "/v1/profile", {"profession": "cardiologue", "rpps": "10003456789"}
    )
    assert status == 200, answer
    assert answer["profession"] == "cardiologue"
    assert answer["sent_to"] == 2
    await wait_for(lambda: card_of(a, b).profession == "cardiologue")
    await wait_for(lambda: card_of(m, b).profession == "cardiologue")
    assert card_of(a, b).seq > before
    assert card_of(m, b).rpps == "10003456789"

    status, answer = await b.api("POST", "/v1/profile", {"name": "Dr Robert Durand"})
    assert status == 200, answer
    await wait_for(lambda: card_of(a, b).name == "Dr Robert Durand")
    _, peers = await a.api("GET", "/v1/peers")
    shown = next(p for p in peers if p["peer_id"] == b.daemon.me.peer_id.hex)
    assert shown["name"] == "Dr Bob Durand"  # a new name waits for Alice to accept it
    assert shown["pending_name"] == "Dr Robert Durand"


async def test_a_peer_that_was_off_gets_the_card_at_its_next_session(
    two: tuple[Running, Running], tmp_path: Path
) -> None:
    a, b = two
    port = b.port
    await b.stop()
    status, answer = await a.api("POST", "/v1/profile", {"practice": "Cabinet du Port, Brest"})
    assert status == 200, answer
    back = await start_daemon(tmp_path / "b", "Dr Bob Durand", port=port)
    try:
        assert card_of(back, a).practice == ""
        await a.daemon.dialler.connect(back.daemon.me.peer_id.hex)  # any session will do
        await wait_for(lambda: card_of(back, a).practice == "Cabinet du Port, Brest")
        assert a.daemon.cards.sent(back.daemon.me.peer_id.hex) == answer["seq"]
    finally:
        await back.stop()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"rpps": "1234"}, "11 digits"),
        ({"name": "  "}, "cannot be empty"),
        ({"practice": "Cabinet\nSecret"}, "one line"),
        ({}, "Say what to change"),
        ({"colour": "blue"}, "“colour” is not a field"),
        ({"name": 12}, "“name”"),
    ],
)
async def test_a_bad_profile_is_refused_in_words(
    two: tuple[Running, Running], body: dict[str, object], words: str
) -> None:
    a, b = two
    seq = card_of(b, a).seq
    status, answer = await a.api("POST", "/v1/profile", body)
    assert status == 400
    assert words in answer["error"]["message"]
    assert card_of(b, a).seq == seq
    assert (await asyncio.to_thread(load_profile, a.home))["name"] == "Dr Alice Martin"


async def test_pli_profile_shows_and_sets_through_the_daemon(two: tuple[Running, Running]) -> None:
    a, b = two
    shown = await pli(a.home, "profile", "--json")
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert info["name"] == "Dr Alice Martin"
    assert info["fingerprint"] == a.daemon.me.peer_id.fingerprint
    assert info["protected"] is False

    done = await pli(a.home, "profile", "set", "--profession", "médecin généraliste", "--json")
    assert done.exit_code == 0, done.output
    line = json.loads(done.output)
    assert line["profession"] == "médecin généraliste"
    assert line["daemon"] is True
    await wait_for(lambda: card_of(b, a).profession == "médecin généraliste")
    text = await pli(a.home, "profile")
    assert "médecin généraliste" in text.output


def test_pli_profile_set_without_a_daemon_writes_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("--home", home, "init", "--name", "Dr Alice Martin").exit_code == 0
    seq = int(load_profile(home)["seq"])
    done = run("--home", home, "profile", "set", "--rpps", "100 0345 6789")
    assert done.exit_code == 0, done.output
    assert "sends the new card to your colleagues when it starts" in done.output
    assert load_profile(home)["rpps"] == "10003456789"
    assert int(load_profile(home)["seq"]) == seq + 1
    bad = run("--home", home, "profile", "set", "--rpps", "12")
    assert bad.exit_code == 1
    assert "11 digits" in bad.output
    assert run("--home", home, "profile", "set").exit_code == 2  # nothing to change
    assert load_profile(home)["rpps"] == "10003456789"


def test_pli_passphrase_adds_changes_and_removes_it(tmp_path: Path, fast_kdf: None) -> None:
    home = tmp_path / "home"
    assert run("--home", home, "init", "--name", "Dr Alice Martin").exit_code == 0
    made = keystore.load(home).identity.peer_id

    added = run("--home", home, "passphrase", answer=f"{PASSPHRASE}\n{PASSPHRASE}\n")
    assert added.exit_code == 0, added.output
    assert "PLI_PASSPHRASE" in added.output
    assert PASSPHRASE not in added.output
    assert keystore.protected(home)
    assert keystore.load(home, passphrase=PASSPHRASE).identity.peer_id == made
    with pytest.raises(KeystoreError, match="protected by a passphrase"):
        keystore.load(home)
    assert PASSPHRASE.encode() not in keystore.key_path(home).read_bytes()

    wrong = run("--home", home, "passphrase", answer="not it\nnew one here\nnew one here\n")
    assert wrong.exit_code == 1
    assert "Wrong passphrase" in wrong.output
    assert keystore.load(home, passphrase=PASSPHRASE).identity.peer_id == made

    short = run("--home", home, "passphrase", answer=f"{PASSPHRASE}\nshort\nshort\n")
    assert short.exit_code == 1
    assert "too short" in short.output

    changed = run("--home", home, "passphrase", answer=f"{PASSPHRASE}\nune autre phrase\n")
    assert changed.exit_code == 1  # the confirmation did not come: nothing changed
    assert keystore.load(home, passphrase=PASSPHRASE).identity.peer_id == made
    new = "une autre phrase longue"
    changed = run("--home", home, "passphrase", "--json", answer=f"{PASSPHRASE}\n{new}\n{new}\n")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout.strip().splitlines()[-1]) == {"protected": True}
    assert keystore.load(home, passphrase=new).identity.peer_id == made

    removed = run("--home", home, "passphrase", "--remove", answer=f"{new}\n")
    assert removed.exit_code == 0, removed.output
    assert not keystore.protected(home)
    assert keystore.load(home).identity.peer_id == made


async def test_the_api_changes_the_passphrase_and_the_daemon_goes_on(
    two: tuple[Running, Running], fast_kdf: None
) -> None:
    a, b = two
    status, answer = await a.api("POST", "/v1/passphrase", {"new": PASSPHRASE})
    assert (status, answer) == (200, {"protected": True})
    status, answer = await a.api("GET", "/v1/profile")
    assert answer["protected"] is True
    status, answer = await a.api("POST", "/v1/passphrase", {"current": "wrong", "new": None})
    assert status == 400
    assert "Wrong passphrase" in answer["error"]["message"]
    status, answer = await a.api("POST", "/v1/passphrase", {"new": "another passphrase"})
    assert status == 400
    assert "type the current one" in answer["error"]["message"]
    assert await asyncio.to_thread(keystore.protected, a.home)
    status, _ = await a.api("POST", "/v1/profile", {"profession": "pédiatre"})
    assert status == 200  # the running daemon keeps its keys in memory
    await wait_for(lambda: card_of(b, a).profession == "pédiatre")
