"""``pli prescribe``, ``pli verify`` and ``pli demo`` (registered on ``cli.cli``).

The work is done elsewhere, imported when a command runs: ``prescription.py``
(the structured prescription), ``verify.py`` (offline checks), ``demo.py``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from p2p.cli.app import State, _author_rpps, _clean, _patient_options, cli, send_document
from p2p.errors import PliError


@cli.command(short_help="Write, sign and send a structured prescription.")
@click.argument("peer")
@_patient_options
@click.option("--item", "items", multiple=True, required=True,
              metavar='"DRUG; DOSAGE; DURATION[; QUANTITY[; RENEWALS]]"',
              help="One line of the prescription; repeat for each drug.")  # fmt: skip
@click.option("--note", default="", help="A note printed under the items.")
@click.option("--rpps", metavar="RPPS", help="Your RPPS, if your profile has none.")
@click.option("--recipient-rpps", metavar="RPPS", help="The recipient's RPPS (11 digits).")
@click.option("--in-reply-to", metavar="DOC", help="The id of the document this answers.")
@click.option("--wait", is_flag=True, help="Wait until the signed receipt is back.")
@click.pass_obj
def prescribe(  # noqa: PLR0917 - click passes each option as an argument
    state: State,
    peer: str,
    patient_name: str | None,
    patient_family_name: str | None,
    patient_given_names: str | None,
    patient_birthdate: str | None,
    patient_sex: str | None,
    patient_ins: str | None,
    items: tuple[str, ...],
    note: str,
    rpps: str | None,
    recipient_rpps: str | None,
    in_reply_to: str | None,
    wait: bool,
) -> None:
    """Build a prescription (patient, items, you as prescriber with your RPPS, date, unique
    id), sign it and send it to PEER (e.g. the patient's pharmacy or a colleague).

    Each --item is "drug; dosage; duration", optionally followed by "; quantity" and
    "; renewals" (a number, 0 by default), for example:

    \b
      --item "Amoxicilline 1 g; 1 comprimé matin et soir; 7 jours; 1 boîte"
      --item "Bisoprolol 2,5 mg; 1 comprimé le matin; 3 mois; 1 boîte de 30; 2"

    The receiver's `pli export` writes it as ordonnance-<date>.json plus a printable
    page with a QR code that `pli verify` checks.
    """
    from p2p.documents import prescription
    from p2p.documents.clinical import check_rpps, check_text, clinical_metadata

    if not (patient_name or patient_family_name):
        raise click.UsageError('Give the patient\'s name: --patient-name "FAMILY, Given names".')
    if not patient_birthdate:
        raise click.UsageError("Give the patient's birth date: --patient-birthdate YYYY-MM-DD.")
    lines = [prescription.parse_item(item) for item in items]
    note = check_text(note, "note")
    metadata = clinical_metadata(
        patient_name=patient_name,
        family_name=patient_family_name,
        given_names=patient_given_names,
        birthdate=patient_birthdate,
        sex=patient_sex,
        ins=patient_ins,
        recipient_rpps=recipient_rpps,
    )
    me = state.client.get("/v1/identity")
    prescriber = {key: str(me.get(key) or "") for key in ("name", "profession", "practice")}
    prescriber["fingerprint"] = str(me.get("fingerprint", ""))
    given_rpps = rpps or _author_rpps(state, None) or str(me.get("rpps") or "")
    prescriber["rpps"] = check_rpps(given_rpps) if given_rpps else ""
    patient = {
        "name": metadata.get("patient_name", ""),
        "family_name": metadata.get("patient_family_name", ""),
        "given_names": metadata.get("patient_given_names", ""),
        "birthdate": metadata.get("patient_birthdate", ""),
        "sex": metadata.get("patient_sex", ""),
        "ins": metadata.get("patient_ins", ""),
    }
    order = prescription.build(patient=patient, items=lines, prescriber=prescriber, note=note)
    metadata.update(
        subject=f"Ordonnance du {order['date']}",
        author_rpps=prescriber["rpps"],
        prescription_id=order["id"],
    )
    with private_file(prescription.file_name(order), prescription.to_bytes(order)) as path:
        files = [{"path": str(path), "name": path.name, "type": prescription.MEDIA_TYPE}]
        send_document(
            state, peer, "prescription", metadata, files, in_reply_to=in_reply_to, wait=wait
        )
    if not state.json:
        count = f"{len(lines)} item{'s' if len(lines) > 1 else ''}"
        state.out.line(f"Prescription {order['id']} for {_clean(patient['name'])}: {count}.")


@contextlib.contextmanager
def private_file(name: str, data: bytes) -> Any:
    """A file only this user can read, removed afterwards (the daemon seals it at once)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="pli-send-"))  # mode 0700
    try:
        path = folder / name
        path.touch(mode=0o600)
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@cli.command(short_help="Check an exported document or prescription offline.")
@click.argument("file", metavar="FILE")
@click.option(
    "--signer",
    "signers",
    multiple=True,
    metavar="FINGERPRINT",
    help="Also trust this key (its complete fingerprint, checked with the sender).",
)
@click.pass_obj
def verify(state: State, file: str, signers: tuple[str, ...]) -> None:
    """Check offline (no daemon needed) that FILE is exactly what a trusted key signed.

    FILE is an exported file (its .pli.json must be next to it), the .pli.json itself,
    a prescription's printable page, or a scanned QR code saved as text. Valid only
    when signed by this practice, a paired peer, or a --signer key. Exit 4 if anything
    was changed or the key is not one this practice trusts.
    """
    from p2p.documents.verify import verify_path

    keyring = _keyring(state, signers)
    report = verify_path(Path(file).expanduser(), keyring)
    if state.json:
        state.out.emit(report.as_dict())
        return
    _print_signer(state, report)
    _print_report(state, report, keyring)


def _keyring(state: State, signers: tuple[str, ...]) -> Any:
    """What this practice trusts, read from its home without the daemon (read-only)."""
    from p2p.documents.trust import Keyring, parse_signers
    from p2p.storage.trusted import known_keys

    given = parse_signers(signers)
    home = state.home
    keys = known_keys(home) if home.is_dir() else []
    return Keyring(tuple(keys), given, home if keys else None)


def _print_signer(state: State, report: Any) -> None:
    out, signer = state.out, report.signer
    out.line("The signature is valid: this is exactly what was signed, by a key you trust.")
    out.line(f"Signed by the key with fingerprint {report.signer_fingerprint}")
    if signer.relation == "self":
        out.line(f"  which is this practice's own key ({_clean(signer.name)}).")
    elif signer.relation == "paired":
        out.line(f"  which is {_clean(signer.name)}, a paired peer.")
    elif signer.relation == "revoked":
        from p2p.cli.render import when

        since = when(signer.revoked_since)
        out.line(f"  which is {_clean(signer.name)}, whose key has been revoked since {since};")
        out.line("  this document says it was signed before that.")
    else:
        out.line("  which is the key you gave with --signer.")


def _print_report(state: State, report: Any, keyring: Any) -> None:
    from p2p.cli.render import when

    out = state.out
    names = {
        peer: name
        for peer in [*report.recipients, *(r["recipient"] for r in report.receipts)]
        if (name := keyring.name_of(peer))
    }
    meta = report.metadata
    patient = meta.get("patient_name", "")
    if meta.get("patient_birthdate"):
        patient = f"{patient} (born {meta['patient_birthdate']})".strip()
    out.fields(
        [
            ("Document", f"{report.kind} {report.document_id}"),
            ("Written", when(report.created_at)),
            ("Subject", meta.get("subject")),
            ("Patient", patient),
            ("INS", meta.get("patient_ins")),
            ("Author RPPS", meta.get("author_rpps")),
            ("In reply to", meta.get("in_reply_to")),
            ("For", ", ".join(_clean(names.get(r, f)) for r, f in
                              zip(report.recipients, report.recipient_fingerprints, strict=True))),
        ]
    )  # fmt: skip
    for check in report.files:
        shown = check.saved_as or check.name
        state_text = (
            "intact (matches the signature)" if check.status == "intact"
            else "not found here (not checked)"
        )  # fmt: skip
        out.line(f"File {check.index + 1}: {_clean(shown)}: {state_text}")
    for receipt in report.receipts:
        who = _clean(names.get(receipt["recipient"], receipt["recipient_fingerprint"]))
        out.line(f"Receipt: {receipt['status']} by {who}, signed {when(receipt['time'])}")
    if report.prescription:
        for item in report.prescription["items"]:
            renewals = int(item.get("renewals") or 0)
            out.line(
                f"  - {_clean(item['drug'])}: {_clean(item['dosage'])}, {_clean(item['duration'])}"
                + (f", {_clean(item['quantity'])}" if item.get("quantity") else "")
                + (f", renew {renewals}x" if renewals else "")
            )


@cli.command(short_help="Watch two practices on this machine pair and exchange documents.")
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
