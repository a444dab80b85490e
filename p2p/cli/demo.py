"""``pli demo``: two practices on this machine, narrated step by step for a newcomer.

``run_demo`` creates two temporary homes (Dr Claire Martin, GP; Dr Karim Benali,
cardiologist), starts a real ``pli daemon`` process for each on a free loopback
port (``--listen 127.0.0.1:0``, and ``interfaces = ["127.0.0.1"]`` in their
config.toml: nothing is ever announced on the machine's real network), pairs them
with a one-time code found by mDNS on loopback, sends a letter with a PDF and a
prescription, waits for the signed receipts, exports and verifies on the other
side, and sends the specialist's answer back. It talks to the daemons through the
same local API and the same modules as the commands. Whatever happens (an error,
Ctrl-C, SIGTERM) both daemons are stopped and both homes deleted.

``Narrator`` prints: rich on a terminal, plain text otherwise, one JSON object per
line with ``--json``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2p.cli.client import Client
from p2p.errors import PliError

if TYPE_CHECKING:
    from p2p.daemon.harness import DaemonProcess

STEP_TIMEOUT = 20.0  # seconds any single step may take before the demo gives up
LOOPBACK_CONFIG = """\
# pli demo: discovery and the peer port stay on loopback, never on the real network.
discovery = true
interfaces = ["127.0.0.1"]
retry_min = 0.2
retry_max = 2.0
"""
PATIENT: dict[str, Any] = {
    "patient_name": "DUPONT, Jeanne",
    "birthdate": "1955-08-14",
    "sex": "F",
    "ins": "2 55 08 14 168 025 38",
}


class Narrator:
    """Numbered steps, each with a title, some text and details."""

    def __init__(self, *, json_lines: bool) -> None:
        from p2p.cli.render import Output

        self.out = Output(json_lines=json_lines)
        self.number = 0
        self.console: Any = None
        if self.out.tty:
            from rich.console import Console

            self.console = Console(highlight=False)

    def step(self, title: str, text: str = "", **data: Any) -> None:
        self.number += 1
        if self.out.json:
            self.out.emit({"step": self.number, "title": title, "text": text, **data})
            return
        if self.console is not None:
            from rich.text import Text

            self.console.print()
            self.console.rule(Text(f"{self.number}. {title}", style="bold cyan"), align="left")
            if text:
                self.console.print(Text(text))
            return
        self.out.line(f"\n== {self.number}. {title} ==")
        if text:
            self.out.line(text)

    def detail(self, text: str, **data: Any) -> None:
        if self.out.json:
            self.out.emit({"step": self.number, "detail": text, **data})
        elif self.console is not None:
            from rich.text import Text

            self.console.print(Text(f"  {text}"))
        else:
            self.out.line(f"  {text}")

    def command(self, line: str) -> None:
        """What a person would type for this step."""
        if self.out.json:
            return
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(f"  $ {line}", style="dim"))
        else:
            self.out.line(f"  $ {line}")

    def table(self, headers: list[str], rows: list[list[object]], empty: str) -> None:
        if not self.out.json:
            self.out.table(headers, rows, empty=empty)


class Practice:
    """One demo practice: a temporary home and its ``pli daemon`` process."""

    def __init__(self, root: Path, key: str, **profile: str) -> None:
        self.home = root / key
        self.key = key
        self.profile = profile
        self.name = profile["name"]
        self.daemon: DaemonProcess | None = None
        self.port = 0
        self.client = Client(self.home)
        self.fingerprint = ""

    def create(self) -> None:
        from p2p.storage import config, keystore

        self.home.mkdir(mode=0o700)
        (self.home / config.CONFIG_FILE).write_text(LOOPBACK_CONFIG, encoding="utf-8")
        keys = keystore.create(self.home, passphrase=None)
        config.save_profile(self.home, **self.profile)
        self.fingerprint = keys.identity.peer_id.fingerprint

    def start(self) -> None:
        from p2p.daemon.harness import DaemonNotReady, DaemonProcess

        env = {k: v for k, v in os.environ.items() if k not in ("PLI_HOME", "PLI_PASSPHRASE")}
        # Its own session: Ctrl-C reaches the demo, which stops the daemon cleanly.
        self.daemon = DaemonProcess(self.home, env=env, new_session=True)
        try:
            self.port = self.daemon.start(timeout=STEP_TIMEOUT).port
        except DaemonNotReady as exc:
            if exc.exited:
                log = self.daemon.log_text()[-1500:]
                raise PliError(f"{self.name}'s daemon stopped at start:\n{log}") from None
            raise PliError(
                f"The demo gave up waiting for {self.name}'s daemon to start "
                f"after {STEP_TIMEOUT:.0f} s."
            ) from None

    def log(self) -> str:
        return self.daemon.log_text() if self.daemon is not None else ""

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


def wait_for(probe: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
    """Call ``probe`` until it returns something true; give up after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise PliError(f"The demo gave up waiting for {what} after {timeout:.0f} s.")
        time.sleep(0.1)


def tiny_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF (A4, Helvetica) showing ``lines``; no dependency."""

    def text(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = " T* ".join(f"({text(line)}) Tj" for line in lines)
    stream = f"BT /F1 12 Tf 16 TL 72 770 Td {shown} ET".encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C does: through the clean-up."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(*, json_lines: bool = False) -> None:
    """Run the whole demo; raises ``PliError`` if a step fails. Always cleans up."""
    say = Narrator(json_lines=json_lines)
    root = Path(tempfile.mkdtemp(prefix="pli-demo-"))  # short: a socket path fits in 108 bytes
    gp = Practice(
        root,
        "martin",
        name="Dr Claire Martin",
        profession="médecin généraliste",
        rpps="10101234567",
        practice="Cabinet médical des Tilleuls, Lyon",
    )
    cardio = Practice(
        root,
        "benali",
        name="Dr Karim Benali",
        profession="cardiologue",
        rpps="10107654321",
        practice="Cabinet de cardiologie, Villeurbanne",
    )
    started = time.monotonic()
    try:
        with _stopped_by_sigterm():
            _story(say, root, gp, cardio)
    finally:
        for practice in (gp, cardio):
            practice.stop()
        shutil.rmtree(root, ignore_errors=True)
    say.step(
        "Clean up",
        "Both daemons are stopped and both temporary practices deleted. The demo took "
        f"{time.monotonic() - started:.1f} s. Start for real with `pli init` (see README).",
        seconds=round(time.monotonic() - started, 1),
    )


def _story(say: Narrator, root: Path, gp: Practice, cardio: Practice) -> None:
    say.step(
        "Two practices",
        "Each practice has its own folder holding its keys, profile and documents. Here two "
        f"temporary ones under {root}: a GP in Lyon and a cardiologist in Villeurbanne.",
        home_gp=str(gp.home),
        home_cardio=str(cardio.home),
    )
    for practice in (gp, cardio):
        practice.create()
        p = practice.profile
        say.command(
            f'pli --home {practice.home} init --name "{p["name"]}" '
            f'--profession "{p["profession"]}" --rpps {p["rpps"]}'
        )
        say.detail(
            f"{practice.name}: fingerprint {practice.fingerprint}",
            name=practice.name,
            fingerprint=practice.fingerprint,
        )
    say.detail("A fingerprint identifies a practice's key: print it on your letterhead.")

    say.step(
        "Start both daemons",
        "A daemon runs on each practice's computer (as a service, usually). Here each one "
        "listens on 127.0.0.1 only and announces itself by mDNS on loopback only: nothing "
        "of this demo reaches your network.",
    )
    for practice in (gp, cardio):
        practice.start()
        say.command(f"pli --home {practice.home} daemon --listen 127.0.0.1:0")
        say.detail(
            f"{practice.name}'s daemon is up, peer port {practice.port}.",
            name=practice.name,
            port=practice.port,
        )

    _pair(say, gp, cardio)
    letter_id, prescription_id = _send(say, root, gp, cardio)
    _receipts(say, gp, [letter_id, prescription_id])
    _inbox(say, cardio)
    _export_and_verify(say, root, cardio, letter_id, prescription_id)
    _reply(say, root, gp, cardio, letter_id)


def _pair(say: Narrator, gp: Practice, cardio: Practice) -> None:
    say.step(
        "Pair with a one-time code",
        "Dr Martin makes an invitation and reads the code to Dr Benali on the phone. "
        "Dr Benali types it; pli finds the invitation on the local network by mDNS.",
    )
    invitation = gp.client.post("/v1/pair/invite", {})
    say.command(f"pli --home {gp.home} pair invite")
    say.detail(
        f"Pairing code: {invitation['code']} (works once, for 10 minutes)", code=invitation["code"]
    )
    say.command(f"pli --home {cardio.home} pair accept {invitation['code']}")
    attempt = cardio.client.post("/v1/pair/accept", {"code": invitation["code"]}, timeout=60)
    sides = [(gp, str(invitation["id"])), (cardio, str(attempt["id"]))]
    statuses = [_pair_status(p, key, "needs-confirmation,failed") for p, key in sides]
    for (practice, _key), status in zip(sides, statuses, strict=True):
        say.detail(
            f"{practice.name}'s screen shows check code {status['sas']} for {status['peer_name']}",
            name=practice.name,
            sas=status["sas"],
        )
    if statuses[0]["sas"] != statuses[1]["sas"]:
        raise PliError("The check codes differ: the pairing was intercepted.")
    say.detail("Same code on both screens: nobody sits in the middle. Both confirm.")
    for practice, key in sides:
        practice.client.post(f"/v1/pair/{key}/confirm", {"yes": True})
    for practice, key in sides:
        final = _pair_status(practice, key, "paired,failed")
        say.detail(
            f"{practice.name} is now paired with {final['peer_name']}.",
            name=practice.name,
            peer=final["peer_name"],
        )


def _pair_status(practice: Practice, key: str, until: str) -> dict[str, Any]:
    status: dict[str, Any] = practice.client.get(
        f"/v1/pair/{key}?timeout={STEP_TIMEOUT:.0f}&until={until}", timeout=STEP_TIMEOUT + 10
    )
    if status["state"] == "failed":
        raise PliError(f"Pairing failed on {practice.name}'s side: {status.get('message')}")
    if status["state"] not in until.split(","):
        raise PliError(f"Pairing did not progress on {practice.name}'s side in time.")
    return status


def _send(say: Narrator, root: Path, gp: Practice, cardio: Practice) -> tuple[str, str]:
    from p2p.documents import prescription
    from p2p.documents.clinical import clinical_metadata

    say.step(
        "Send a letter with a PDF attachment",
        "Dr Martin refers a patient. The letter and the ECG travel in one envelope, "
        "encrypted for Dr Benali and signed by Dr Martin, with the patient's details inside.",
    )
    work = root / "documents"
    work.mkdir()
    letter = work / "lettre.txt"
    letter.write_text(
        "Cher confrère,\n\nJe vous adresse Mme Jeanne Dupont, 71 ans, pour un "
        "avis cardiologique : dyspnée d'effort récente.\nECG ci-joint.\n\n"
        "Bien confraternellement,\nDr Claire Martin\n",
        encoding="utf-8",
    )
    ecg = work / "ecg.pdf"
    ecg.write_bytes(
        tiny_pdf(
            [
                "ECG de repos - Mme Jeanne Dupont",
                "Rythme sinusal, 72/min.",
                "(document de démonstration)",
            ]
        )
    )
    metadata = clinical_metadata(
        subject="Avis cardiologique",
        **PATIENT,
        author_rpps="10101234567",
        recipient_rpps="10107654321",
    )
    say.command(
        f'pli --home {gp.home} send "Dr Karim Benali" {letter} {ecg} --subject '
        '"Avis cardiologique" --patient-name "DUPONT, Jeanne" --patient-birthdate '
        "1955-08-14 --patient-sex F --patient-ins '2 55 08 14 168 025 38'"
    )
    letter_id = _queue(
        gp,
        cardio,
        "letter",
        metadata,
        [
            {"path": str(letter), "name": letter.name, "type": "text/plain; charset=utf-8"},
            {"path": str(ecg), "name": ecg.name, "type": "application/pdf"},
        ],
    )
    say.detail(
        f"Queued letter {letter_id[:12]} (lettre.txt + ecg.pdf, {ecg.stat().st_size} "
        "bytes of PDF).",
        id=letter_id,
    )

    say.step(
        "Send a prescription",
        "pli prescribe builds a structured prescription (patient, items, prescriber "
        "with RPPS, date, unique id) and sends it signed, like any document.",
    )
    gp_identity = gp.client.get("/v1/identity")
    order = prescription.build(
        patient={
            "name": "DUPONT Jeanne",
            "family_name": "DUPONT",
            "given_names": "Jeanne",
            "birthdate": "1955-08-14",
            "sex": "F",
            "ins": "255081416802538",
        },
        items=[
            prescription.parse_item(
                "Bisoprolol 2,5 mg; 1 comprimé le matin; 1 mois; 1 boîte de 30; 2"
            ),
            prescription.parse_item("Holter ECG des 24 heures; 1 examen; 1 jour"),
        ],
        prescriber={
            **{
                k: str(gp_identity.get(k) or "")
                for k in ("name", "profession", "practice", "fingerprint")
            },
            "rpps": "10101234567",
        },
    )
    say.command(
        f'pli --home {gp.home} prescribe "Dr Karim Benali" --patient-name '
        '"DUPONT, Jeanne" --patient-birthdate 1955-08-14 --item "Bisoprolol 2,5 mg; '
        '1 comprimé le matin; 1 mois; 1 boîte de 30; 2" --item "Holter ECG des 24 '
        'heures; 1 examen; 1 jour"'
    )
    path = work / prescription.file_name(order)
    path.write_bytes(prescription.to_bytes(order))
    meta = {**metadata, "subject": f"Ordonnance du {order['date']}", "prescription_id": order["id"]}
    prescription_id = _queue(
        gp,
        cardio,
        "prescription",
        meta,
        [{"path": str(path), "name": path.name, "type": prescription.MEDIA_TYPE}],
    )
    say.detail(
        f"Queued prescription {prescription_id[:12]} (id {order['id']}).",
        id=prescription_id,
        prescription=order["id"],
    )
    return letter_id, prescription_id


def _queue(
    sender: Practice, to: Practice, kind: str, metadata: dict[str, str], files: list[dict[str, str]]
) -> str:
    body = {"to": [to.name], "kind": kind, "metadata": metadata, "files": files}
    answer = sender.client.post("/v1/documents", body, timeout=60)
    return str(answer["id"])


def _receipts(say: Narrator, sender: Practice, ids: list[str]) -> None:
    from p2p.cli.render import when

    say.step(
        "Signed receipts",
        "Each document stays in Dr Martin's outbox until Dr Benali's daemon returns a "
        "receipt signed with its key: proof of delivery, checkable later.",
    )

    def delivered() -> list[dict[str, Any]] | None:
        rows = [r for r in sender.client.get("/v1/outbox") if r["id"] in ids]
        if any(r["state"] == "rejected" for r in rows):
            raise PliError(f"A document was refused: {rows}")
        return rows if rows and all(r["state"] == "delivered" for r in rows) else None

    for row in wait_for(delivered, "the signed receipts"):
        say.detail(
            f"{row.get('kind', 'document')} {row['id'][:12]}: delivered to "
            f"{row['to_name']}, receipt signed {when(row['receipt_time'])}",
            id=row["id"],
            receipt_time=row["receipt_time"],
        )
    say.command(f"pli --home {sender.home} outbox")


def _inbox(say: Narrator, practice: Practice) -> None:
    from p2p.cli.render import when

    say.step(
        "Dr Benali's inbox",
        "The daemon checked the signature of each document before accepting it.",
    )
    say.command(f"pli --home {practice.home} inbox")
    rows = practice.client.get("/v1/inbox")
    for row in rows:
        meta = row.get("metadata") or {}
        say.detail(
            f"{row['kind']} {row['id'][:12]} from {row['from_name']}: {meta.get('subject', '')}",
            id=row["id"],
            kind=row["kind"],
            metadata=meta,
        )
    say.table(
        ["ID", "From", "Kind", "Subject", "Patient", "Received"],
        [
            [
                r["id"][:12],
                r["from_name"],
                r["kind"],
                (r.get("metadata") or {}).get("subject"),
                (r.get("metadata") or {}).get("patient_name"),
                when(r["received_at"]),
            ]
            for r in rows
        ],
        empty="(empty)",
    )


def _export_and_verify(say: Narrator, root: Path, practice: Practice, *ids: str) -> None:
    from p2p.cli.export import export_document
    from p2p.documents.trust import Keyring
    from p2p.documents.verify import verify_path
    from p2p.storage.trusted import known_keys

    say.step(
        "Export and verify, offline",
        "Export writes the files, a .pli.json with the signature proof, and for the "
        "prescription a printable page with a QR code. pli verify needs no daemon; it "
        "accepts only signatures by keys this practice trusts (its own, its paired peers').",
    )
    folder = root / "export"
    folder.mkdir()
    pages = []
    for doc_id in ids:
        say.command(f"pli --home {practice.home} export {doc_id[:12]} --to {folder}")
        done = export_document(practice.client, doc_id, folder)
        names = ", ".join(p.name for p in [*done.files, done.sidecar, *filter(None, [done.page])])
        say.detail(f"Exported {done.kind}: {names}", files=[p.name for p in done.files])
        if done.page is not None:
            pages.append(done.page)
    keyring = Keyring(tuple(known_keys(practice.home)), home=practice.home)
    for target in [folder / "ecg.pdf", *pages]:
        say.command(f"pli --home {practice.home} verify {target}")
        report = verify_path(target, keyring)
        signer = report.signer.name if report.signer else "?"
        say.detail(
            f"{target.name}: signature valid, signed by {report.signer_fingerprint} "
            f"({signer}, a paired peer), {report.kind} for {report.metadata.get('patient_name')}",
            file=target.name,
            valid=True,
        )
    copy = folder / "ecg-altered.pdf"
    data = bytearray((folder / "ecg.pdf").read_bytes())
    data[-40] ^= 1
    copy.write_bytes(bytes(data))
    sidecar = folder / "ecg-altered.pdf.pli.json"
    sidecar.write_text(
        (folder / "lettre.txt.pli.json")
        .read_text(encoding="utf-8")
        .replace('"saved_as": "ecg.pdf"', '"saved_as": "ecg-altered.pdf"'),
        encoding="utf-8",
    )
    try:
        verify_path(copy, keyring)
    except PliError as exc:
        say.detail(
            f"A copy of ecg.pdf with one bit changed is refused (exit {exc.exit_code}): "
            f"{exc.message}",
            file=copy.name,
            valid=False,
        )
    else:
        raise PliError("pli verify accepted an altered file: this is a bug.")


def _reply(say: Narrator, root: Path, gp: Practice, cardio: Practice, letter_id: str) -> None:
    say.step(
        "The specialist answers",
        "Dr Benali replies; --in-reply-to threads the answer to Dr Martin's letter.",
    )
    answer = root / "documents" / "reponse.txt"
    answer.write_text(
        "Chère consœur,\n\nJ'ai vu Mme Dupont ce jour. ECG et examen rassurants ; "
        "Holter prescrit.\n\nBien confraternellement,\nDr Karim Benali\n",
        encoding="utf-8",
    )
    say.command(
        f'pli --home {cardio.home} send "Dr Claire Martin" {answer} '
        f'--subject "Re: Avis cardiologique" --in-reply-to {letter_id[:12]} --wait'
    )
    reply_id = _queue(
        cardio,
        gp,
        "letter",
        {
            "subject": "Re: Avis cardiologique",
            "in_reply_to": letter_id,
            "patient_name": "DUPONT Jeanne",
            "author_rpps": "10107654321",
        },
        [{"path": str(answer), "name": answer.name, "type": "text/plain; charset=utf-8"}],
    )

    def arrived() -> dict[str, Any] | None:
        return next((r for r in gp.client.get("/v1/inbox") if r["id"] == reply_id), None)

    row = wait_for(arrived, "the answer to arrive")
    say.detail(
        f"Dr Martin received {row['id'][:12]} from {row['from_name']}, in reply to "
        f"{row['metadata'].get('in_reply_to', '')[:12]} (her letter).",
        id=row["id"],
        in_reply_to=row["metadata"].get("in_reply_to"),
    )
