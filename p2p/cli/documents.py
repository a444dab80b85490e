"""``pli send`` and ``pli prescribe``: write a document and queue it for a peer.

Both go through ``sending.send_document``; the structured prescription is built by
``documents/prescription.py``, imported when ``prescribe`` runs.

Size: ``prescribe`` spans some 60 lines, two thirds of them its option decorators,
its signature (click passes each option) and its ``--help`` text; its work is short.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from p2p.cli.app import State
from p2p.cli.render import clean
from p2p.cli.sending import (
    Kinds,
    Patient,
    check_file,
    delivery_options,
    media_type,
    own_rpps,
    patient_options,
    send_document,
)


@click.command()
@click.argument("peer")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--kind", type=Kinds(), default="letter", show_default=True)
@click.option("--subject", help="A short subject line.")
@patient_options
@click.option(
    "--author-rpps", metavar="RPPS", help="The author's RPPS (default: the one in your profile)."
)
@delivery_options
@click.pass_obj
def send(  # noqa: PLR0917 - click passes each option as an argument
    state: State,
    peer: str,
    files: tuple[str, ...],
    kind: str,
    subject: str | None,
    patient: Patient,
    author_rpps: str | None,
    recipient_rpps: str | None,
    in_reply_to: str | None,
    wait: bool,
) -> None:
    """Send FILE(S) to PEER as one encrypted, signed document (a letter and its attachments).

    PEER is a peer's name, its fingerprint (or the start of it) or its peer id. An IHE
    XDM zip among FILES is opened: its documents are sent, with its patient, title and
    author (the options given win). The clinical details (patient, RPPS, subject, the
    document answered) travel inside the encrypted envelope and are signed with the
    files. The document waits in the outbox until PEER's daemon returns a signed receipt.
    """
    from p2p.cli.xdm import merged_patient, unpacked
    from p2p.documents.clinical import clinical_metadata

    paths = [check_file(f) for f in files]
    with unpacked(list(files), paths, media_type) as found:  # an XDM zip: its documents
        metadata = clinical_metadata(
            subject=subject or found.metadata.get("subject"),
            **merged_patient(patient, found.metadata),
            author_rpps=own_rpps(state, author_rpps or found.metadata.get("author_rpps")),
            recipient_rpps=recipient_rpps,
        )
        attachments = [{"path": p, "name": n, "type": t} for n, p, t in found.files]
        if found.zips and not state.json:
            state.out.line(found.summary())
        send_document(state, peer, kind, metadata, attachments, in_reply_to=in_reply_to, wait=wait)


#: ``pli prescribe --item``: one line of the prescription, parsed by ``_order``.
_ITEM_OPTION = click.option(
    "--item",
    "items",
    multiple=True,
    required=True,
    metavar='"DRUG; DOSAGE; DURATION[; QUANTITY[; RENEWALS]]"',
    help="One line of the prescription; repeat for each drug.",
)


@click.command()
@click.argument("peer")
@patient_options
@_ITEM_OPTION
@click.option("--note", default="", help="A note printed under the items.")
@click.option("--rpps", metavar="RPPS", help="Your RPPS, if your profile has none.")
@delivery_options
@click.pass_obj
def prescribe(  # noqa: PLR0917 - click passes each option as an argument
    state: State,
    peer: str,
    patient: Patient,
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

    order, metadata = _order(
        state, patient, items, note=note, rpps=rpps, recipient_rpps=recipient_rpps
    )
    with private_file(prescription.file_name(order), prescription.to_bytes(order)) as path:
        files = [{"path": str(path), "name": path.name, "type": prescription.MEDIA_TYPE}]
        send_document(
            state, peer, "prescription", metadata, files, in_reply_to=in_reply_to, wait=wait
        )
    if not state.json:
        state.out.line(_sent_line(order, metadata, len(items)))


def _sent_line(order: dict[str, Any], metadata: dict[str, str], items: int) -> str:
    """What ``pli prescribe`` says once the prescription is queued."""
    count = f"{items} item{'s' if items > 1 else ''}"
    name = metadata.get("patient_name", "")
    return f"Prescription {order['id']} for {clean(name)}: {count}."


def _order(
    state: State,
    patient: Patient,
    items: tuple[str, ...],
    *,
    note: str,
    rpps: str | None,
    recipient_rpps: str | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The prescription from the options, checked, and the envelope's metadata for it
    (``documents/prescribing.py``, which the page's form uses too)."""
    from p2p.documents import prescribing
    from p2p.documents.clinical import clinical_metadata

    if not (patient["patient_name"] or patient["family_name"]):
        raise click.UsageError('Give the patient\'s name: --patient-name "FAMILY, Given names".')
    if not patient["birthdate"]:
        raise click.UsageError("Give the patient's birth date: --patient-birthdate YYYY-MM-DD.")
    lines = [prescribing.parse_item(item) for item in items]
    metadata = clinical_metadata(**patient, recipient_rpps=recipient_rpps)
    identity = state.client.get("/v1/identity")
    by = prescribing.prescriber(identity, rpps or own_rpps(state, None))
    return prescribing.order(metadata, lines, by, note=note)


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
