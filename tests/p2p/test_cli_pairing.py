"""``pli pair invite|accept`` and ``pli peers add|accept|pending`` against a fake API.

The real exchange between two daemons is in test_cli_flow.py; here, every answer
the daemon can give and every mistake a person can type, with its exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from p2p.services.pairing.wire import EXPIRED_MESSAGE, NOT_THAT_PEER_MESSAGE, PEER_REFUSED_MESSAGE
from protocol import WRONG_CODE_MESSAGE, LocalIdentity

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .fake_api import FakeApi

Api = tuple[Path, FakeApi]
FINGERPRINT = LocalIdentity.generate(now=0).peer_id.fingerprint
INVITATION = {
    "id": "a1",
    "code": "314-1592653",
    "nameplate": "314",
    "expires_at": 1.9e9,
    "address": "127.0.0.1:7717",
}


def status(state: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {
        "id": "a1",
        "kind": "code",
        "role": "inviter",
        "state": state,
        "sas": "123456",
        "peer_name": "Dr Bob",
        "fingerprint": FINGERPRINT,
        "peer_id": "cd" * 32,
        "message": None,
    }
    return 200, body | extra


def posted(server: FakeApi) -> list[tuple[str, Any]]:
    return [(path, body) for method, path, body in server.requests if method == "POST"]


# --- pair invite -----------------------------------------------------------------------------


def test_invite_prints_the_code_then_asks_and_confirms(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/invite"] = (201, INVITATION)
    server.answers["GET", "/v1/pair/a1"] = [status("needs-confirmation"), status("paired")]
    server.answers["POST", "/v1/pair/a1/confirm"] = status("waiting-for-peer")
    result = run("--home", home, "pair", "invite", answer="y\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("Pairing code: 314-1592653") < out.index("Check code: 123 456")
    assert "Does your colleague's screen show the same code? [y/N]" in out
    assert "Paired with Dr Bob" in out
    assert ("/v1/pair/invite", {"expires": 600, "yes": False}) in posted(server)
    assert ("/v1/pair/a1/confirm", {"yes": True}) in posted(server)


def test_invite_json_lines_code_first_then_outcome(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/invite"] = (201, INVITATION)
    server.answers["GET", "/v1/pair/a1"] = [status("waiting-for-peer"), status("paired")]
    result = run("--home", home, "--json", "pair", "invite", "--yes", "--expires", "90s")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["event"] == "invitation"
    assert lines[0]["code"] == "314-1592653"
    assert lines[-1]["event"] == "paired"
    assert lines[-1]["fingerprint"] == FINGERPRINT
    assert ("/v1/pair/invite", {"expires": 90, "yes": True}) in posted(server)


def test_invite_answered_no_is_a_security_failure(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/invite"] = (201, INVITATION)
    server.answers["GET", "/v1/pair/a1"] = status("needs-confirmation")
    server.answers["POST", "/v1/pair/a1/confirm"] = status("failed", message="refused")
    result = run("--home", home, "pair", "invite", answer="n\n")
    assert result.exit_code == 4
    assert "intercept" in result.stderr
    assert ("/v1/pair/a1/confirm", {"yes": False}) in posted(server)


def test_invite_no_wait_needs_yes(fake_api: Api) -> None:
    home, server = fake_api
    result = run("--home", home, "pair", "invite", "--no-wait")
    assert result.exit_code == 2
    assert "--no-wait needs --yes" in result.output
    assert server.requests == []
    server.answers["POST", "/v1/pair/invite"] = (201, INVITATION)
    quick = run("--home", home, "--json", "pair", "invite", "--no-wait", "--yes")
    assert quick.exit_code == 0, quick.output
    assert [json.loads(line)["event"] for line in quick.stdout.splitlines()] == ["invitation"]
    assert [m for m, _p, _b in server.requests] == ["POST"]


@pytest.mark.parametrize("expires", ["5s", "2d", "soon", "25h"])
def test_invite_rejects_a_bad_duration(tmp_path: Path, expires: str) -> None:
    result = run("--home", tmp_path, "pair", "invite", "--expires", expires)
    assert result.exit_code == 2


def test_invite_that_expires_exits_1(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/invite"] = (201, INVITATION)
    server.answers["GET", "/v1/pair/a1"] = status(
        "failed", message=EXPIRED_MESSAGE, reason="expired"
    )
    result = run("--home", home, "pair", "invite", "--yes")
    assert result.exit_code == 1
    assert "expired" in result.stderr


def test_invite_without_a_daemon_exits_3(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "pair", "invite")
    assert result.exit_code == 3
    assert "pli --home" in result.stderr


# --- pair accept -----------------------------------------------------------------------------


def test_accept_with_the_wrong_code_exits_4(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/accept"] = (202, {"id": "a1", "address": "127.0.0.1:7717"})
    server.answers["GET", "/v1/pair/a1"] = status(
        "failed", message=WRONG_CODE_MESSAGE, reason="wrong-code"
    )
    result = run("--home", home, "pair", "accept", "314-1592654", "--address", "127.0.0.1:7717")
    assert result.exit_code == 4
    assert "The pairing code was wrong, or someone tried to intercept the pairing" in result.stderr
    body = {"code": "314-1592654", "yes": False, "address": "127.0.0.1:7717"}
    assert ("/v1/pair/accept", body) in posted(server)


@pytest.mark.parametrize(
    ("message", "reason", "exit_code"),
    [
        (EXPIRED_MESSAGE, "expired", 1),
        (PEER_REFUSED_MESSAGE, "peer-refused", 4),
        ("Something else happened.", "rejected", 1),
        ("Something else happened.", None, 1),
    ],
)
def test_accept_failures_and_their_exit_codes(
    fake_api: Api, message: str, reason: str | None, exit_code: int
) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/pair/accept"] = (202, {"id": "a1", "address": "x:1"})
    server.answers["GET", "/v1/pair/a1"] = status("failed", message=message, reason=reason)
    result = run("--home", home, "--json", "pair", "accept", "314 1592653", "--yes")
    assert result.exit_code == exit_code
    error = json.loads(result.stdout.splitlines()[-1])
    assert error["error"]["message"] == message
    assert ("/v1/pair/accept", {"code": "314-1592653", "yes": True}) in posted(server)


@pytest.mark.parametrize(
    ("message", "reason", "exit_code"),
    [
        (WRONG_CODE_MESSAGE, "expired", 1),  # the sentence of an attack, the code of an expiry
        ("A sentence pli never wrote.", "wrong-code", 4),
        (PEER_REFUSED_MESSAGE, "timeout", 1),
        ("Une autre phrase.", "not-that-peer", 4),
        ("Une autre phrase.", "bad-commitment", 4),
    ],
)
def test_the_exit_code_follows_the_reason_code_not_the_sentence(
    fake_api: Api, message: str, reason: str, exit_code: int
) -> None:
    """Issue 9: the CLI read its exit code from the daemon's sentence; now from its code."""
    home, server = fake_api
    server.answers["POST", "/v1/pair/accept"] = (202, {"id": "a1", "address": "x:1"})
    server.answers["GET", "/v1/pair/a1"] = status("failed", message=message, reason=reason)
    result = run("--home", home, "pair", "accept", "314-1592653", "--yes")
    assert result.exit_code == exit_code, result.output
    assert message in result.stderr


@pytest.mark.parametrize("code", ["31-4159265", "314-15926", "abc-defghij", ""])
def test_accept_checks_the_code_before_asking_the_daemon(tmp_path: Path, code: str) -> None:
    result = run("--home", tmp_path, "pair", "accept", code)
    assert result.exit_code == 1, result.output
    assert "pairing code" in result.stderr.lower()


def test_accept_rejects_a_bad_address(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "pair", "accept", "314-1592653", "--address", "host:port")
    assert result.exit_code == 1
    assert "the port must be a number" in result.stderr


# --- peers add / accept / pending --------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            FINGERPRINT[:-1] + ("A" if FINGERPRINT[-1] != "A" else "B"),
            "group 8 of the fingerprint has a typo",
        ),
        ("ABCDE", "40 letters and digits"),
        ("9" * 40, "only the letters A-Z and the digits 2-7"),
    ],
)
def test_peers_add_catches_typos_before_any_network_call(
    fake_api: Api, typed: str, message: str
) -> None:
    home, server = fake_api
    result = run("--home", home, "peers", "add", typed, "--address", "127.0.0.1:7717")
    assert result.exit_code == 1
    assert message in result.stderr
    assert server.requests == []


def test_peers_add_without_an_address_asks_through_the_mailboxes(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/peers/add"] = (202, {"id": "a1"})
    server.answers["GET", "/v1/pair/a1"] = [status("waiting-for-peer"), status("paired")]
    result = run("--home", home, "peers", "add", FINGERPRINT)
    assert result.exit_code == 0, result.output
    assert "through the mailboxes" in result.stdout
    assert ("/v1/peers/add", {"fingerprint": FINGERPRINT}) in posted(server)


def test_peers_add_shows_the_check_code_and_waits(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/peers/add"] = (202, {"id": "a1"})
    server.answers["GET", "/v1/pair/a1"] = [status("waiting-for-peer"), status("paired")]
    typed = FINGERPRINT.replace("-", " ").lower()
    result = run("--home", home, "peers", "add", typed, "--address", "127.0.0.1:7717")
    assert result.exit_code == 0, result.output
    assert "Check code: 123 456" in result.stdout
    assert "pli peers accept" in result.stdout
    assert "Paired with Dr Bob" in result.stdout
    body = {"fingerprint": FINGERPRINT, "address": "127.0.0.1:7717"}
    assert ("/v1/peers/add", body) in posted(server)


def test_peers_add_to_another_computer_is_a_security_failure(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/peers/add"] = (202, {"id": "a1"})
    message = NOT_THAT_PEER_MESSAGE.format(address="127.0.0.1:7717", fingerprint=FINGERPRINT)
    server.answers["GET", "/v1/pair/a1"] = status("failed", message=message, reason="not-that-peer")
    result = run("--home", home, "peers", "add", FINGERPRINT, "--address", "127.0.0.1:7717")
    assert result.exit_code == 4
    assert "is not the practice with fingerprint" in result.stderr


def _request(**extra: Any) -> dict[str, Any]:
    return {
        "id": "r1",
        "kind": "fingerprint",
        "role": "responder",
        "sas": "654321",
        "peer_name": "Dr Bob",
        "fingerprint": FINGERPRINT,
        "profession": "cardiologue",
        "practice": "",
        "rpps": "",
    } | extra


def test_peers_pending_and_the_peers_list_show_requests(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/pair/pending"] = (200, [_request()])
    server.answers["GET", "/v1/peers"] = (200, [])
    pending = run("--home", home, "peers", "pending")
    assert pending.exit_code == 0, pending.output
    assert "654 321" in pending.stdout
    assert "Dr Bob" in pending.stdout
    listed = run("--home", home, "peers")
    assert "Pairing request waiting: Dr Bob" in listed.stdout
    assert "pli peers accept r1" in listed.stdout


def test_peers_accept_asks_then_accepts(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/pair/pending"] = (200, [_request()])
    server.answers["POST", "/v1/peers/accept"] = status("waiting-for-peer", id="r1")
    server.answers["GET", "/v1/pair/r1"] = status("paired", id="r1")
    result = run("--home", home, "peers", "accept", FINGERPRINT[:23], answer="y\n")
    assert result.exit_code == 0, result.output
    assert "Check code: 654 321" in result.stdout
    # the full fingerprint next to the check code, on the same line
    (line,) = [line for line in result.stdout.splitlines() if "Check code" in line]
    assert FINGERPRINT in line
    assert "Paired with Dr Bob" in result.stdout
    assert ("/v1/peers/accept", {"peer": "r1", "yes": True}) in posted(server)


def test_peers_accept_answered_no_declines(fake_api: Api) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/pair/pending"] = (200, [_request()])
    server.answers["POST", "/v1/peers/accept"] = status("failed", id="r1", message="declined")
    result = run("--home", home, "peers", "accept", "r1", answer="n\n")
    assert result.exit_code == 0, result.output
    assert "Declined" in result.stdout
    assert ("/v1/peers/accept", {"peer": "r1", "yes": False}) in posted(server)


def test_peers_accept_unknown_or_ambiguous(fake_api: Api) -> None:
    home, server = fake_api
    other = LocalIdentity.generate(now=0).peer_id.fingerprint
    twin = FINGERPRINT[:24] + other[24:]  # shares 4 groups and more: only a test can do that
    server.answers["GET", "/v1/pair/pending"] = (
        200,
        [_request(), _request(id="r2", fingerprint=twin)],
    )
    unknown = run("--home", home, "peers", "accept", other[:23], "--yes")
    assert unknown.exit_code == 1
    assert "No pairing request" in unknown.stderr
    ambiguous = run("--home", home, "peers", "accept", FINGERPRINT[:23], "--yes")
    assert ambiguous.exit_code == 1
    assert "several" in ambiguous.stderr
    assert posted(server) == []


@pytest.mark.parametrize("typed", ["Dr Bob", "FINGER", "r", "{short}", "{one_group}"])
def test_peers_accept_refuses_a_name_or_a_short_part_of_the_fingerprint(
    fake_api: Api, typed: str
) -> None:
    """Issue 8 §1.6: a lookalike key matched on its first group (about 10^6 tries to make).

    A stranger's request whose fingerprint starts like the colleague's, and that
    calls itself "Dr Bob", is not accepted by a name or by fewer than 4 groups.
    """
    home, server = fake_api
    lookalike = _request(id="r9", peer_name="Dr Bob", fingerprint=FINGERPRINT[:6] + "X" * 34)
    server.answers["GET", "/v1/pair/pending"] = (200, [lookalike])
    text = typed.format(short=FINGERPRINT[:17], one_group=FINGERPRINT[:5])
    result = run("--home", home, "peers", "accept", text, "--yes")
    assert result.exit_code == 1, result.output
    assert "at least the first 4 groups" in result.stderr
    assert posted(server) == []
