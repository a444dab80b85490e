"""``pli verify``: check an exported document or prescription offline.

The checks are in ``documents/verify.py`` and what this practice trusts in
``documents/trust.py`` (imported when the command runs); no daemon is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from p2p.cli.app import State
from p2p.cli.render import clean


@click.command()
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
        out.line(f"  which is this practice's own key ({clean(signer.name)}).")
    elif signer.relation == "paired":
        out.line(f"  which is {clean(signer.name)}, a paired peer.")
    elif signer.relation == "revoked":
        from p2p.cli.render import when

        since = when(signer.revoked_since)
        out.line(f"  which is {clean(signer.name)}, whose key has been revoked since {since};")
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
            (
                "For",
                ", ".join(
                    clean(names.get(r, f))
                    for r, f in zip(report.recipients, report.recipient_fingerprints, strict=True)
                ),
            ),
        ]
    )
    for check in report.files:
        shown = check.saved_as or check.name
        state_text = (
            "intact (matches the signature)"
            if check.status == "intact"
            else "not found here (not checked)"
        )
        out.line(f"File {check.index + 1}: {clean(shown)}: {state_text}")
    for receipt in report.receipts:
        who = clean(names.get(receipt["recipient"], receipt["recipient_fingerprint"]))
        out.line(f"Receipt: {receipt['status']} by {who}, signed {when(receipt['time'])}")
    if report.prescription:
        for item in report.prescription["items"]:
            renewals = int(item.get("renewals") or 0)
            out.line(
                f"  - {clean(item['drug'])}: {clean(item['dosage'])}, {clean(item['duration'])}"
                + (f", {clean(item['quantity'])}" if item.get("quantity") else "")
                + (f", renew {renewals}x" if renewals else "")
            )
