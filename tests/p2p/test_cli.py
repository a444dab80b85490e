"""The ``pli`` command: exit codes, messages, and the flows against real daemons.

Commands that need no daemon run in-process with click's ``CliRunner``. The client is
tested against a small fake API server on a unix socket. The end-to-end tests start
real ``python -m p2p daemon`` processes in temporary homes (marked ``slow``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from p2p import errors
from p2p.cli.client import Client
from p2p.daemon import harness

from .clirun import no_ambient_home, run  # noqa: F401 - the fixture is autouse
from .fake_api import FakeApi

COMMANDS = [
    "init",
    "id",
    "daemon",
    "status",
    "peers",
    "send",
    "inbox",
    "outbox",
    "show",
    "export",
    "pair",
    "prescribe",
    "verify",
    "demo",
    "profile",
    "passphrase",
    "web-user",
]
SUBCOMMANDS = [
    "profile set",
    "web-user set",
    "web-user remove",
    "peers remove",
    "peers add",
    "peers accept",
    "peers pending",
    "pair invite",
    "pair accept",
]


def init(home: Path, name: str = "Dr Alice Martin", *extra: str) -> Result:
    result = run("--home", home, "init", "--name", name, *extra)
    assert result.exit_code == 0, result.output
    return result


# --- help and start-up ---------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    assert "add-card" not in result.output


@pytest.mark.parametrize("command", [*COMMANDS, *SUBCOMMANDS])
def test_every_command_has_help_and_the_common_options(command: str) -> None:
    result = run(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert "--home" in result.output
    assert "--json" in result.output


def test_unknown_command_is_bad_usage() -> None:
    assert run("frobnicate").exit_code == 2


HEAVY = ("aiohttp", "rich", "nacl", "protocol", "p2p.daemon.core", "p2p.api.server")

PROBE = """
import sys
from p2p.cli.app import cli
try:
    cli.main(sys.argv[1:], prog_name="pli")
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"exit": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(*args: str) -> dict[str, Any]:
    code = "import json\n" + PROBE.format(heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    result: dict[str, Any] = json.loads(proc.stderr.strip().splitlines()[-1])
    return result


def test_help_imports_nothing_heavy() -> None:
    assert _probe("--help") == {"exit": 0, "heavy": []}


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\nfrom p2p.cli.app import cli\ntry:\n    cli.main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('p2p.cli.')), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "['p2p.cli.app']"


def test_every_command_is_in_a_table() -> None:
    """A command written in a module but named in no table would never run."""
    import importlib

    import click

    from p2p.cli.app import COMMANDS
    from p2p.cli.mailbox import MAILBOX_COMMANDS
    from p2p.cli.peers import PEERS_COMMANDS
    from p2p.cli.profile import PROFILE_COMMANDS
    from p2p.cli.tokens import TOKEN_COMMANDS
    from p2p.cli.webusers import WEB_USER_COMMANDS

    tables = [
        *COMMANDS.values(),
        *PEERS_COMMANDS.values(),
        *MAILBOX_COMMANDS.values(),
        *PROFILE_COMMANDS.values(),
        *TOKEN_COMMANDS.values(),
        *WEB_USER_COMMANDS.values(),
    ]
    tabled = {target for target, _help in tables}
    found = set()
    modules = (
        "setup",
        "daemon",
        "peers",
        "pairing",
        "documents",
        "documents_box",
        "mailbox",
        "verify",
        "revocation",
        "page",
        "profile",
        "tokens",
        "webusers",
    )
    for module in modules:
        for attr, value in vars(importlib.import_module(f"p2p.cli.{module}")).items():
            if isinstance(value, click.Command) and not attr.startswith("pair_"):
                found.add(f"p2p.cli.{module}:{attr}")
    assert found == tabled


def test_status_does_not_import_aiohttp(tmp_path: Path) -> None:
    assert _probe("--home", str(tmp_path), "status") == {"exit": 3, "heavy": []}


def test_help_starts_fast() -> None:
    best = min(_timed([sys.executable, "-m", "p2p", "--help"]) for _ in range(3))
    assert best < 0.5  # goal 0.15 s; generous here so a busy CI machine does not flake


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


# --- init and id (no daemon) ---------------------------------------------------------


def test_init_creates_private_keys_and_the_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = init(home, "Dr Alice Martin", "--rpps", "10003456789", "--profession", "MG")
    assert "Fingerprint:" in result.output
    key_file = home / "keys" / "identity.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    profile = json.loads((home / "profile.json").read_text())
    assert profile["name"] == "Dr Alice Martin"
    assert profile["rpps"] == "10003456789"


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init(home)
    before = (home / "keys" / "identity.json").read_bytes()
    result = run("--home", home, "init", "--name", "Someone else")
    assert result.exit_code == 1
    assert "never overwrites" in result.stderr
    assert (home / "keys" / "identity.json").read_bytes() == before
    assert json.loads((home / "profile.json").read_text())["name"] == "Dr Alice Martin"


@pytest.mark.parametrize("rpps", ["123", "1234567890a", "123456789012"])
def test_init_rejects_a_bad_rpps(tmp_path: Path, rpps: str) -> None:
    result = run("--home", tmp_path / "home", "init", "--name", "Dr A", "--rpps", rpps)
    assert result.exit_code == 1
    assert "11 digits" in result.stderr
    assert not (tmp_path / "home" / "keys").exists()


def test_init_needs_a_name(tmp_path: Path) -> None:
    assert run("--home", tmp_path, "init").exit_code == 2
    result = run("--home", tmp_path, "init", "--name", "  ")
    assert result.exit_code == 1
    assert "Give your name" in result.stderr


def test_home_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLI_HOME", str(tmp_path / "env-home"))
    init_result = run("init", "--name", "Dr Env")
    assert init_result.exit_code == 0
    assert (tmp_path / "env-home" / "keys" / "identity.json").exists()


def test_id_works_without_a_daemon(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fingerprint = init(home).output.split("Fingerprint: ")[1].split()[0]
    result = run("--home", home, "id")
    assert result.exit_code == 0
    assert "Dr Alice Martin" in result.output
    assert fingerprint in result.output
    as_json = run("id", "--home", home, "--json")  # the options also work after the command
    info = json.loads(as_json.output)
    assert info["fingerprint"] == fingerprint
    assert len(info["peer_id"]) == 64


def test_id_without_an_identity_says_how_to_create_one(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "id")
    assert result.exit_code == 1
    assert "init" in result.stderr


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    init(tmp_path)
    (tmp_path / "keys" / "identity.json").chmod(0o644)
    result = run("--home", tmp_path, "id")
    assert result.exit_code == 1
    assert "chmod 600" in result.stderr


def test_daemon_on_a_busy_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "p2p",
                "--home",
                str(tmp_path),
                "daemon",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 1
    assert f"{port} is already used" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- without a daemon ------------------------------------------------------------------


def test_status_without_a_daemon_exits_3_with_the_hint(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "status")
    assert result.exit_code == 3
    assert f"Start it with: pli --home {tmp_path} daemon" in result.stderr


def test_status_without_a_daemon_in_json(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "--json", "status")
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["error"]["code"] == "daemon-not-running"
    assert error["exit_code"] == 3


def test_a_stale_socket_is_daemon_not_running(tmp_path: Path) -> None:
    (tmp_path / "api.sock").write_text("")  # left behind by a crash: connecting is refused
    for command in (["status"], ["peers"], ["inbox"], ["outbox"], ["show", "abcdef"]):
        assert run("--home", tmp_path, *command).exit_code == 3


@pytest.fixture
def letter(tmp_path: Path) -> Path:
    path = tmp_path / "lettre.txt"
    path.write_text("Cher confrère,\nmerci de recevoir M. Dupont.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--patient-ins", "1 85 05 78 006 084 99"], "does not match its key"),
        (["--patient-ins", "12345"], "is not an INS"),
        (["--patient-birthdate", "2999-01-01"], "in the future"),
        (["--patient-birthdate", "2023-02-29"], "not a real date"),
        (["--patient-birthdate", "03/02/1950"], "YYYY-MM-DD"),
        (["--subject", "two\nlines"], "control characters"),
    ],
)
def test_send_checks_its_input_before_asking_the_daemon(
    tmp_path: Path, letter: Path, options: list[str], message: str
) -> None:
    result = run("--home", tmp_path, "send", "Dr Bob", letter, *options)
    assert result.exit_code == 1, result.output
    assert message in result.stderr


def test_send_names_a_missing_file(tmp_path: Path, letter: Path) -> None:
    missing = tmp_path / "absent.pdf"
    result = run("--home", tmp_path, "send", "Dr Bob", letter, missing)
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert "does not exist" in result.stderr


def test_send_refuses_a_folder(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "send", "Dr Bob", tmp_path)
    assert result.exit_code == 1
    assert "is a folder" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_send_names_an_unreadable_file(tmp_path: Path, letter: Path) -> None:
    letter.chmod(0)
    result = run("--home", tmp_path, "send", "Dr Bob", letter)
    assert result.exit_code == 1
    assert "cannot read" in result.stderr


def test_send_rejects_an_unknown_kind(tmp_path: Path, letter: Path) -> None:
    assert run("--home", tmp_path, "send", "Dr Bob", letter, "--kind", "fax").exit_code == 2


def test_send_kinds_are_the_protocol_kinds() -> None:
    from p2p.cli.sending import Kinds
    from protocol import KINDS

    assert Kinds().choices == tuple(KINDS)
    assert f"[{'|'.join(KINDS)}]" in run("send", "--help").output


def test_send_needs_a_file(tmp_path: Path) -> None:
    assert run("--home", tmp_path, "send", "Dr Bob").exit_code == 2


def test_export_into_a_missing_folder(tmp_path: Path) -> None:
    result = run("--home", tmp_path, "export", "abcd", "--to", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


# --- the client against a fake API -------------------------------------------------------


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def test_client_decodes_json(fake_api: tuple[Path, FakeApi]) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/status"] = (200, {"running": True})
    assert Client(home).get("/v1/status") == {"running": True}


@pytest.mark.parametrize(
    ("code", "cls", "exit_code"),
    [
        ("peer-unknown", errors.PeerUnknown, 1),
        ("peer-ambiguous", errors.AmbiguousPeer, 1),
        ("security", errors.SecurityFailure, 4),
        ("pairing-failed", errors.PairingFailed, 4),
        ("document-unknown", errors.DocumentUnknown, 1),
        ("something-new", errors.PliError, 1),
    ],
)
def test_client_maps_api_errors(
    fake_api: tuple[Path, FakeApi], code: str, cls: type[errors.PliError], exit_code: int
) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/peers"] = (400, _error(code, "What happened, what to do."))
    with pytest.raises(errors.PliError) as caught:
        Client(home).get("/v1/peers")
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert caught.value.message == "What happened, what to do."
    assert caught.value.exit_code == exit_code


def test_security_failure_from_the_api_exits_4(fake_api: tuple[Path, FakeApi]) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/peers"] = (422, _error("security", "A signature check failed."))
    result = run("--home", home, "peers")
    assert result.exit_code == 4
    assert "A signature check failed." in result.stderr


def test_an_error_without_json_is_still_a_sentence(fake_api: tuple[Path, FakeApi]) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/status"] = (500, b"<html>oops</html>")
    result = run("--home", home, "status")
    assert result.exit_code == 1
    assert "HTTP 500" in result.stderr


def test_peer_text_cannot_drive_the_terminal(fake_api: tuple[Path, FakeApi]) -> None:
    home, server = fake_api
    peer = {
        "peer_id": "ab" * 32,
        "name": "Dr \x1b[2J\x1b]0;pwned\x07Evil",
        "profession": "",
        "fingerprint": "AAAAA",
        "online": True,
        "addresses": [],
        "last_seen": None,
    }
    server.answers["GET", "/v1/peers"] = (200, [peer])
    result = run("--home", home, "peers")
    assert result.exit_code == 0
    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "Evil" in result.output


DOC = "ab" * 16


def _outbox_row(state: str, **extra: Any) -> dict[str, Any]:
    row = {
        "id": DOC,
        "to": "cd" * 32,
        "to_name": "Dr Bob",
        "size": 2_000,
        "state": state,
        "sent_bytes": None,
        "last_error": None,
        "receipt_time": None,
        "receipt_status": None,
    }
    return row | extra


def test_send_posts_the_documented_body_and_waits(
    fake_api: tuple[Path, FakeApi], letter: Path
) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/documents"] = (202, {"id": DOC, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = [
        (200, [_outbox_row("queued")]),
        (200, [_outbox_row("queued", last_error="Dr Bob's computer did not answer.")]),
        (200, [_outbox_row("sending", sent_bytes=1000)]),
        (200, [_outbox_row("delivered", receipt_time=1_800_000_000, receipt_status="ok")]),
    ]
    result = run(
        "--home",
        home,
        "send",
        "Dr Bob",
        letter,
        "--kind",
        "report",
        "--subject",
        "Bilan",
        "--patient-birthdate",
        "1950-02-03",
        "--wait",
    )
    assert result.exit_code == 0, result.output
    assert "Queued report abababababab for Dr Bob." in result.output
    assert "Waiting for Dr Bob: Dr Bob's computer did not answer." in result.output
    assert "Delivered to Dr Bob" in result.output
    posted = [body for method, _path, body in server.requests if method == "POST"]
    assert posted == [
        {
            "to": ["Dr Bob"],
            "kind": "report",
            "metadata": {"subject": "Bilan", "patient_birthdate": "1950-02-03"},
            "files": [
                {
                    "path": str(letter.resolve()),
                    "name": "lettre.txt",
                    "type": "text/plain; charset=utf-8",
                }
            ],
        }
    ]


def test_send_wait_in_json_prints_a_line_per_step(
    fake_api: tuple[Path, FakeApi], letter: Path
) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/documents"] = (202, {"id": DOC, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = [
        (200, [_outbox_row("queued")]),
        (200, [_outbox_row("queued")]),
        (200, [_outbox_row("delivered", receipt_time=1_800_000_000)]),
    ]
    result = run("--home", home, "--json", "send", "Dr Bob", letter, "--wait")
    assert result.exit_code == 0, result.output
    events = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert events == ["queued", "delivered"]
    polled = {path for method, path, _body in server.requests if method == "GET"}
    assert polled == {f"/v1/outbox?id={DOC}"}  # this document's rows, not the whole outbox


def test_send_wait_reports_a_refusal(fake_api: tuple[Path, FakeApi], letter: Path) -> None:
    home, server = fake_api
    server.answers["POST", "/v1/documents"] = (202, {"id": DOC, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = [
        (200, [_outbox_row("rejected", receipt_status="too-large")]),
    ]
    result = run("--home", home, "send", "Dr Bob", letter, "--wait")
    assert result.exit_code == 1
    assert "Dr Bob refused the document (too-large)" in result.stderr


def test_in_reply_to_is_resolved_to_the_full_id(
    fake_api: tuple[Path, FakeApi], letter: Path
) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abab"] = (200, {"id": DOC})
    server.answers["POST", "/v1/documents"] = (202, {"id": "ef" * 16, "to": ["cd" * 32]})
    server.answers["GET", "/v1/outbox"] = (200, [])
    result = run("--home", home, "send", "Dr Bob", letter, "--in-reply-to", "abab")
    assert result.exit_code == 0, result.output
    posted = [body for method, _path, body in server.requests if method == "POST"]
    assert posted[0]["metadata"] == {"in_reply_to": DOC}


def _document(name: str, size: int) -> dict[str, Any]:
    return {
        "id": DOC,
        "direction": "in",
        "kind": "letter",
        "created_at": 1_800_000_000,
        "sender": "cd" * 32,
        "recipients": ["ef" * 32],
        "metadata": {"subject": "Avis"},
        "files": [{"name": name, "size": size, "type": "text/plain"}],
        "receipts": [],
    }


def _evidence(*contents: bytes) -> dict[str, Any]:
    """What ``GET /v1/documents/{doc}/evidence`` answers (export checks the hashes only)."""
    return {
        "id": DOC,
        "evidence": "AAAA",
        "signer_fingerprint": "AAAAA",
        "files": [{"name": "x", "sha256": hashlib.sha256(c).hexdigest()} for c in contents],
    }


def test_export_sanitises_and_marks_exported(
    fake_api: tuple[Path, FakeApi], tmp_path: Path
) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abab"] = (200, _document("../../../.profile", 5))
    server.answers["GET", f"/v1/documents/{DOC}/receipts"] = (200, [])
    server.answers["GET", f"/v1/documents/{DOC}/evidence"] = (200, _evidence(b"hello"))
    server.answers["GET", f"/v1/documents/{DOC}/files/0"] = (200, b"hello")
    server.answers["POST", f"/v1/documents/{DOC}/exported"] = (200, {})
    result = run("--home", home, "export", "abab", "--to", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "profile").read_bytes() == b"hello"
    sidecar = json.loads((tmp_path / "profile.pli.json").read_text())
    assert sidecar["files"] == [
        {
            "index": 0,
            "name": "../../../.profile",
            "saved_as": "profile",
            "sha256": hashlib.sha256(b"hello").hexdigest(),
        }
    ]
    assert sidecar["evidence"]["evidence"] == "AAAA"
    assert ("POST", f"/v1/documents/{DOC}/exported", {}) in server.requests


def test_export_keeps_nothing_of_a_truncated_file(
    fake_api: tuple[Path, FakeApi], tmp_path: Path
) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abab"] = (200, _document("lettre.txt", 50))
    server.answers["GET", f"/v1/documents/{DOC}/receipts"] = (200, [])
    server.answers["GET", f"/v1/documents/{DOC}/evidence"] = (200, _evidence(b"x" * 50))
    server.answers["GET", f"/v1/documents/{DOC}/files/0"] = (200, b"only part")
    result = run("--home", home, "export", "abab", "--to", tmp_path)
    assert result.exit_code == 1
    assert "incomplete" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_show_prints_the_text_without_escape_sequences(fake_api: tuple[Path, FakeApi]) -> None:
    home, server = fake_api
    server.answers["GET", "/v1/documents/abab"] = (200, _document("lettre.txt", 22))
    server.answers["GET", f"/v1/documents/{DOC}/receipts"] = (200, [])
    server.answers["GET", f"/v1/documents/{DOC}/files/0"] = (200, b"Cher ami,\n\x1b[2Jbonjour")
    server.answers["GET", "/v1/peers"] = (200, [{"peer_id": "cd" * 32, "name": "Dr Bob"}])
    server.answers["GET", "/v1/identity"] = (200, {"peer_id": "ef" * 32, "name": "Dr Alice"})
    result = run("--home", home, "show", "abab")
    assert result.exit_code == 0, result.output
    assert "From:      Dr Bob" in result.output
    assert "To:        this practice (Dr Alice)" in result.output
    assert "Cher ami,\n[2Jbonjour" in result.output
    assert "\x1b" not in result.output


# --- against real daemons ------------------------------------------------------------------


class Practice:
    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.name = name
        self.daemon = harness.DaemonProcess(home, log=home / "daemon.log")

    @property
    def port(self) -> int:
        return self.daemon.port

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.daemon.proc

    def pli(self, *args: str | Path) -> Result:
        return run("--home", self.home, *args)

    def start(self) -> None:
        try:
            self.daemon.start()
        except harness.DaemonNotReady:
            pytest.fail(f"the daemon did not start: {self.log()}")

    def stop(self) -> None:
        self.daemon.stop()

    def log(self) -> str:
        return self.daemon.log_text()

    def card(self) -> str:
        return self.pli("id", "--card").output.strip()


@pytest.fixture
def practices() -> Iterator[tuple[Practice, Practice]]:
    # A short folder: a unix socket path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="pli-"))
    alice, bob = Practice(root / "a", "Dr Alice"), Practice(root / "b", "Dr Bob")
    try:
        for practice in (alice, bob):
            init(practice.home, practice.name)
            practice.start()
        yield alice, bob
    finally:
        alice.stop()
        bob.stop()
        shutil.rmtree(root, ignore_errors=True)


def pair(alice: Practice, bob: Practice) -> None:
    for me, other in ((alice, bob), (bob, alice)):
        result = me.pli("peers", "add-card", other.card(), "--address", f"127.0.0.1:{other.port}")
        assert result.exit_code == 0, result.output + me.log()


@pytest.mark.slow
def test_status_against_a_daemon(practices: tuple[Practice, Practice]) -> None:
    alice, _bob = practices
    fingerprint = json.loads(alice.pli("--json", "id").output)["fingerprint"]
    result = alice.pli("status")
    assert result.exit_code == 0, result.output
    assert fingerprint in result.output
    info = json.loads(alice.pli("--json", "status").output)
    assert info["running"] is True
    assert info["peer_port"] == alice.port


@pytest.mark.slow
def test_a_second_daemon_on_the_same_home_is_refused(
    practices: tuple[Practice, Practice],
) -> None:
    alice, _bob = practices
    result = alice.pli("daemon", "--listen", "127.0.0.1:0")
    assert result.exit_code == 1
    assert "already running" in result.stderr
    assert alice.pli("status").exit_code == 0


@pytest.mark.slow
def test_peers_add_list_remove(practices: tuple[Practice, Practice]) -> None:
    alice, bob = practices
    assert "No paired peers" in alice.pli("peers").output
    pair(alice, bob)
    listed = alice.pli("peers")
    assert "Dr Bob" in listed.output
    rows = [json.loads(line) for line in alice.pli("peers", "--json").output.splitlines()]
    assert [row["name"] for row in rows] == ["Dr Bob"]
    removed = alice.pli("peers", "remove", "dr bob")
    assert removed.exit_code == 0, removed.output
    assert "No paired peers" in alice.pli("peers").output
    assert alice.pli("peers", "remove", "dr bob").exit_code == 1


@pytest.mark.slow
def test_unknown_and_ambiguous_peers(
    practices: tuple[Practice, Practice], tmp_path: Path, letter: Path
) -> None:
    alice, _bob = practices
    added = []
    for twin in ("twin1", "twin2"):
        init(tmp_path / twin, "Dr Martin")
        card = run("--home", tmp_path / twin, "id", "--card").output.strip()
        added.append(alice.pli("peers", "add-card", card, "--address", "127.0.0.1:9"))
    # A second peer may not take a name another peer already has (issue 8 §1.2),
    # so a name never becomes ambiguous: the first Dr Martin keeps it.
    assert added[0].exit_code == 0
    assert added[1].exit_code == 4, added[1].output
    unknown = alice.pli("send", "Dr Nobody", letter)
    assert unknown.exit_code == 1
    assert "No paired peer" in unknown.stderr
    assert alice.pli("send", "Dr Martin", letter).exit_code == 0


@pytest.mark.slow
def test_send_wait_inbox_show_export(
    practices: tuple[Practice, Practice], tmp_path: Path, letter: Path
) -> None:
    alice, bob = practices
    pair(alice, bob)
    # A real `pli send --wait` process, with a deadline: it blocks until the receipt is back.
    args = [
        "send",
        "Dr Bob",
        str(letter),
        "--subject",
        "Avis",
        "--patient-name",
        "Jean Dupont",
        "--patient-birthdate",
        "1955-08-14",
        "--patient-ins",
        "2 55 08 14 168 025 38",
        "--wait",
    ]
    try:
        sent = subprocess.run(
            [sys.executable, "-m", "p2p", "--home", str(alice.home), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("not delivered within 60 s:\n" + alice.pli("outbox").output + bob.log())
    assert sent.returncode == 0, sent.stdout + sent.stderr + alice.log() + bob.log()
    assert "Delivered to Dr Bob" in sent.stdout
    assert "delivered" in alice.pli("outbox").output

    rows = [json.loads(line) for line in bob.pli("--json", "inbox").output.splitlines()]
    assert len(rows) == 1
    doc = rows[0]["id"]
    assert rows[0]["metadata"]["patient_ins"] == "255081416802538"
    assert "Jean Dupont" in bob.pli("inbox").output

    shown = bob.pli("show", doc[:12])
    assert shown.exit_code == 0, shown.output
    assert "merci de recevoir M. Dupont." in shown.output

    out = tmp_path / "export"
    out.mkdir()
    first = bob.pli("export", doc[:12], "--to", out)
    assert first.exit_code == 0, first.output + bob.log()
    assert (out / "lettre.txt").read_text(encoding="utf-8") == letter.read_text(encoding="utf-8")
    sidecar = json.loads((out / "lettre.txt.pli.json").read_text())
    assert sidecar["document"]["id"] == doc
    second = bob.pli("export", doc[:12], "--to", out)
    assert second.exit_code == 0
    assert (out / "lettre (1).txt").exists()
    assert (out / "lettre.txt").read_text(encoding="utf-8") == letter.read_text(encoding="utf-8")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_export_never_trusts_the_received_name(
    practices: tuple[Practice, Practice], tmp_path: Path, letter: Path
) -> None:
    alice, bob = practices
    pair(alice, bob)
    # The sender picks the name (the API lets a program set it); the protocol refuses paths,
    # the export must still not write a hidden file or follow invisible characters.
    answer = Client(alice.home).post(
        "/v1/documents",
        {
            "to": ["Dr Bob"],
            "kind": "file",
            "files": [
                {"path": str(letter), "name": ".bashrc"},
                {"path": str(letter), "name": "\u202etxt.exe"},
            ],
        },
    )
    deadline = time.monotonic() + 20
    while not any(r["id"] == answer["id"] for r in Client(bob.home).get("/v1/inbox")):
        assert time.monotonic() < deadline, alice.log() + bob.log()
        time.sleep(0.2)
    out = tmp_path / "export"
    out.mkdir()
    result = bob.pli("export", answer["id"], "--to", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["bashrc", "bashrc.pli.json", "txt.exe"]


@pytest.mark.slow
def test_unknown_document(practices: tuple[Practice, Practice]) -> None:
    alice, _bob = practices
    result = alice.pli("show", "abcdef12")
    assert result.exit_code == 1
    assert "No document" in result.stderr


@pytest.mark.slow
def test_status_after_the_daemon_stopped(practices: tuple[Practice, Practice]) -> None:
    alice, _bob = practices
    alice.stop()
    result = alice.pli("status")
    assert result.exit_code == 3
    assert "not running" in result.stderr


def test_outbox_shows_what_the_recipient_said_after_delivery(
    fake_api: tuple[Path, FakeApi],
) -> None:
    home, server = fake_api
    integrated = {"status": "integrated", "time": 1_800_000_100, "via": "direct", "code": None}
    failed = {
        "status": "not-integrated",
        "time": 1_800_000_100,
        "via": "mailbox",
        "code": 902,
        "label": "Patient inconnu",
        "label_en": "Unknown patient",
    }
    read = {"time": 1_800_000_200, "via": "direct"}
    delivered = {"receipt_time": 1_800_000_000, "receipt_status": "delivered"}
    server.answers["GET", "/v1/outbox"] = (
        200,
        [
            _outbox_row("delivered", **delivered, integrated=integrated, read=read),
            _outbox_row("delivered", **delivered, integrated=failed, read=None) | {"id": "ef" * 16},
            _outbox_row("queued", integrated=None, read=None) | {"id": "12" * 16},
        ],
    )
    result = run("--home", home, "outbox")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "integrated" in lines["abababababab"]
    assert "read" in lines["abababababab"]
    assert "not integrated (902): Unknown patient" in lines["efefefefefef"]
    assert "integrated" not in lines["121212121212"]
    as_json = run("--home", home, "--json", "outbox")
    first = json.loads(as_json.stdout.splitlines()[0])
    assert first["integrated"]["status"] == "integrated"
    assert first["read"]["time"] == 1_800_000_200
