"""End to end through the CLI only: two ``pli daemon`` processes on loopback ports.

Every step is a ``python -m p2p --home H ...`` process, as a practice (or a script)
would run it: init, pair with a code at an address, a PDF letter and a prescription,
the inbox on the other side, export, offline verify, the sender's outbox with the
receipt time, a reply threaded with --in-reply-to; then a tampered export and a
wrong pairing code fail with exit 4. And ``pli demo`` runs to the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2p.cli.demo_parts import tiny_pdf
from p2p.daemon import harness

pytestmark = pytest.mark.slow
INS = "2 55 08 14 168 025 38"


def pli(home: Path, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "p2p", "--home", str(home), *map(str, args)]
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:  # a failed assertion then shows what it printed
        out, err = (
            x.decode() if isinstance(x, bytes) else x or "" for x in (exc.stdout, exc.stderr)
        )
        return subprocess.CompletedProcess(argv, -9, out, err + f"\n(timed out after {timeout} s)")


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Daemon:
    def __init__(self, home: Path, name: str, rpps: str) -> None:
        self.home = home
        harness.prepare_home(home, name, "--rpps", rpps)
        self.process = harness.DaemonProcess(home)
        self.address = f"127.0.0.1:{self.process.start().port}"

    def logs(self) -> str:
        return self.process.log_text()[-4000:]

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def two() -> Iterator[tuple[Daemon, Daemon, Path]]:
    root = Path(tempfile.mkdtemp(prefix="pli-e2e-"))  # short: unix socket paths
    started: list[Daemon] = []
    try:
        started.append(Daemon(root / "a", "Dr Alice Martin", "10101234567"))
        started.append(Daemon(root / "b", "Dr Bob Benali", "10107654321"))
        yield started[0], started[1], root
    finally:
        for daemon in started:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def pair_by_code(alice: Daemon, bob: Daemon) -> None:
    invite = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2p",
            "--home",
            str(alice.home),
            "--json",
            "pair",
            "invite",
            "--yes",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert invite.stdout is not None
        first = json.loads(invite.stdout.readline())
        assert first["event"] == "invitation"
        accepted = pli(
            bob.home, "--json", "pair", "accept", first["code"], "--address", alice.address, "--yes"
        )
        assert accepted.returncode == 0, accepted.stderr
        assert lines(accepted)[-1]["event"] == "paired"
        rest, errors = invite.communicate(timeout=30)
        assert invite.returncode == 0, errors
        outcome = json.loads(rest.splitlines()[-1])
        assert outcome["event"] == "paired"
        assert outcome["peer_name"] == "Dr Bob Benali"
    finally:
        if invite.poll() is None:
            invite.kill()
            invite.communicate()


def test_two_practices_through_the_cli(two: tuple[Daemon, Daemon, Path]) -> None:
    alice, bob, root = two
    pair_by_code(alice, bob)
    assert "Dr Bob Benali" in pli(alice.home, "peers").stdout

    docs = root / "docs"
    docs.mkdir()
    letter = docs / "lettre.txt"
    letter.write_text("Cher confrère,\nje vous adresse Mme Dupont.\n", encoding="utf-8")
    pdf = docs / "ecg.pdf"
    pdf.write_bytes(tiny_pdf(["ECG de repos", "Rythme sinusal"]))
    sent = pli(
        alice.home,
        "send",
        "Dr Bob Benali",
        letter,
        pdf,
        "--subject",
        "Avis",
        "--patient-name",
        "DUPONT, Jeanne",
        "--patient-birthdate",
        "1955-08-14",
        "--patient-sex",
        "F",
        "--patient-ins",
        INS,
        "--recipient-rpps",
        "10107654321",
        "--wait",
    )
    assert sent.returncode == 0, sent.stderr + alice.logs() + bob.logs()
    assert "Delivered to Dr Bob Benali" in sent.stdout
    prescribed = pli(
        alice.home,
        "--json",
        "prescribe",
        "Dr Bob Benali",
        "--patient-name",
        "DUPONT, Jeanne",
        "--patient-birthdate",
        "1955-08-14",
        "--item",
        "Bisoprolol 2,5 mg; 1 comprimé le matin; 1 mois; 1 boîte; 2",
        "--wait",
    )
    assert prescribed.returncode == 0, prescribed.stderr
    events = [e["event"] for e in lines(prescribed)]
    assert events[0] == "queued"
    assert events[-1] == "delivered"

    inbox = {row["kind"]: row for row in lines(pli(bob.home, "--json", "inbox"))}
    assert set(inbox) == {"letter", "prescription"}
    got = inbox["letter"]
    assert [f["name"] for f in got["files"]] == ["lettre.txt", "ecg.pdf"]
    assert got["files"][1]["type"] == "application/pdf"
    assert got["from_name"] == "Dr Alice Martin"
    assert got["metadata"] == {
        "subject": "Avis",
        "patient_name": "DUPONT Jeanne",
        "patient_family_name": "DUPONT",
        "patient_given_names": "Jeanne",
        "patient_birthdate": "1955-08-14",
        "patient_sex": "F",
        "patient_ins": "255081416802538",
        "author_rpps": "10101234567",
        "recipient_rpps": "10107654321",
    }
    assert inbox["prescription"]["files"][0]["type"] == "application/json"
    assert inbox["prescription"]["metadata"]["author_rpps"] == "10101234567"

    out = root / "export"
    out.mkdir()
    for row in inbox.values():
        done = pli(bob.home, "export", row["id"][:10], "--to", out)
        assert done.returncode == 0, done.stderr
    assert (out / "lettre.txt").read_bytes() == letter.read_bytes()
    assert (out / "ecg.pdf").read_bytes() == pdf.read_bytes()
    (page,) = out.glob("ordonnance-*.html")
    order = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    assert order["prescriber"]["rpps"] == "10101234567"
    assert order["items"][0]["renewals"] == 2

    nowhere = root / "no-home"  # verify needs no daemon; without a home it trusts no key
    alice_fp = lines(pli(alice.home, "--json", "id"))[0]["fingerprint"]
    for target in (out / "ecg.pdf", out / "lettre.txt.pli.json", page):
        checked = pli(bob.home, "verify", target)  # Bob's daemon runs: its database is shared
        assert checked.returncode == 0, checked.stderr
        assert "The signature is valid" in checked.stdout
        unknown = pli(nowhere, "verify", target)
        assert unknown.returncode == 4, unknown.stderr
        assert "Anyone can make a key" in unknown.stderr
        assert pli(nowhere, "verify", target, "--signer", alice_fp).returncode == 0
    named = pli(bob.home, "verify", out / "ecg.pdf")
    assert "which is Dr Alice Martin, a paired peer." in named.stdout
    assert "Receipt: delivered by this practice (Dr Bob Benali)" in named.stdout  # offline

    forged = root / "forged"
    shutil.copytree(out, forged)
    sidecar = forged / "lettre.txt.pli.json"
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    data["receipts"][0]["receipt"] = data["receipts"][0]["receipt"][:-8] + "AAAAAAA="
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    refused_receipt = pli(nowhere, "verify", forged / "ecg.pdf")
    assert refused_receipt.returncode == 4
    assert "receipt" in refused_receipt.stderr

    outbox = lines(pli(alice.home, "--json", "outbox"))
    assert len(outbox) == 2
    assert all(row["state"] == "delivered" and row["receipt_time"] for row in outbox)
    assert "delivered" in pli(alice.home, "outbox").stdout

    reply = docs / "reponse.txt"
    reply.write_text("Chère consœur, vue ce jour.\n", encoding="utf-8")
    answered = pli(
        bob.home, "send", "Dr Alice Martin", reply, "--in-reply-to", got["id"][:8], "--wait"
    )
    assert answered.returncode == 0, answered.stderr
    (back,) = lines(pli(alice.home, "--json", "inbox"))
    assert back["metadata"]["in_reply_to"] == got["id"]

    tampered = root / "tampered"
    shutil.copytree(out, tampered)
    data = bytearray((tampered / "ecg.pdf").read_bytes())
    data[len(data) // 2] ^= 1
    (tampered / "ecg.pdf").write_bytes(bytes(data))
    refused = pli(nowhere, "verify", tampered / "ecg.pdf")
    assert refused.returncode == 4
    assert "This document was changed after it was signed" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_wrong_code_exits_4_and_burns_the_invitation(two: tuple[Daemon, Daemon, Path]) -> None:
    alice, bob, _root = two
    invited = pli(alice.home, "--json", "pair", "invite", "--yes", "--no-wait")
    assert invited.returncode == 0, invited.stderr
    code = lines(invited)[0]["code"]
    nameplate, secret = code.split("-")
    wrong = f"{nameplate}-{(int(secret) + 1) % 10**7:07d}"
    refused = pli(bob.home, "pair", "accept", wrong, "--address", alice.address, "--yes")
    assert refused.returncode == 4
    assert "The pairing code was wrong, or someone tried to intercept" in refused.stderr
    again = pli(bob.home, "pair", "accept", code, "--address", alice.address, "--yes")
    assert again.returncode == 1
    assert "already used" in again.stderr
    assert "No paired peers" in pli(alice.home, "peers").stdout


def test_pairing_by_fingerprint(two: tuple[Daemon, Daemon, Path]) -> None:
    alice, bob, _root = two
    fingerprint = json.loads(pli(alice.home, "--json", "id").stdout)["fingerprint"]
    asking = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2p",
            "--home",
            str(bob.home),
            "--json",
            "peers",
            "add",
            fingerprint,
            "--address",
            alice.address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (pending := lines(pli(alice.home, "--json", "peers", "pending"))):
            assert time.monotonic() < deadline, "the request never arrived"
            time.sleep(0.1)
        accepted = pli(alice.home, "peers", "accept", pending[0]["fingerprint"][:23], "--yes")
        assert accepted.returncode == 0, accepted.stderr
        assert "Paired with Dr Bob Benali" in accepted.stdout
        out, errors = asking.communicate(timeout=30)
        assert asking.returncode == 0, errors
        events = [json.loads(line)["event"] for line in out.splitlines()]
        assert events == ["requested", "waiting-for-peer", "paired"]
        assert json.loads(out.splitlines()[1])["sas"] == pending[0]["sas"]
    finally:
        if asking.poll() is None:
            asking.kill()
            asking.communicate()


def test_the_demo_runs_and_cleans_up() -> None:
    # A temporary folder of the demo's own (short: its sockets' paths fit in 108 bytes),
    # so a demo run at the same time by someone else on this machine does not count.
    own_tmp = Path(tempfile.mkdtemp(prefix="d"))
    result = subprocess.run(
        [sys.executable, "-m", "p2p", "--json", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(own_tmp)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    titles = [s["title"] for s in steps if "title" in s]
    assert titles[0] == "Two practices"
    assert titles[-1] == "Clean up"
    assert any(s.get("sas") for s in steps)
    assert any(s.get("valid") is False for s in steps)  # the altered copy is refused
    assert list(own_tmp.iterdir()) == [], "the demo leaves nothing behind"
    own_tmp.rmdir()
