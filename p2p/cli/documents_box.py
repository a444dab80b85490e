"""``pli inbox``, ``pli outbox``, ``pli show`` and ``pli export``: the documents exchanged.

Lists and details come from the local API; ``export`` does its work in ``export.py``
(decrypt, check against the signature, write the sidecar and the printable page).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from p2p.cli.app import State
from p2p.cli.render import clean, size, when
from p2p.errors import BadInput

if TYPE_CHECKING:
    from p2p.cli.client import Client
    from p2p.cli.render import Output

TEXT_SHOWN_UP_TO = 1_000_000  # bytes: ``pli show`` prints text files up to this size


def _patient(meta: dict[str, str]) -> str:
    name = meta.get("patient_name", "")
    birth = meta.get("patient_birthdate", "")
    return f"{name} ({birth})" if name and birth else name or birth


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also list documents already exported.")
@click.option("--follow", is_flag=True, help="Then print each new document as it arrives.")
@click.pass_obj
def inbox(state: State, show_all: bool, follow: bool) -> None:
    """Documents received (by default only those not exported yet).

    With --follow, pli keeps listening to the daemon's event stream and prints each
    new document when it arrives (Ctrl-C stops); nothing polls.
    """
    from p2p.cli.revocation import revoked_mark

    rows = [r for r in state.client.get("/v1/inbox") if show_all or not r.get("exported_at")]
    headers = ["ID", "From", "Kind", "Subject", "Patient", "Received"]

    def cells(row: dict[str, Any]) -> list[object]:
        meta = row.get("metadata") or {}
        sender = f"{row.get('from_name')}{revoked_mark(row.get('sender_revoked_since'))}"
        line = [
            row["id"][:12],
            sender,
            row.get("kind"),
            meta.get("subject", ""),
            _patient(meta),
            when(row.get("received_at")),
        ]
        return [*line, when(row.get("exported_at"))] if show_all else line

    empty = (
        "No documents received." if show_all else "No new documents (`pli inbox --all` lists all)."
    )
    state.out.listing(rows, [*headers, "Exported"] if show_all else headers, cells, empty=empty)
    if follow:
        try:
            _follow(state, cells)
        except KeyboardInterrupt:
            return


def _follow(state: State, cells: Any) -> None:
    """Print each document the daemon receives from now on (``GET /v1/events``)."""
    import json

    out = state.out
    with state.client.lines("/v1/events") as lines:
        for line in lines:
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") != "document-received":
                continue
            row = [r for r in state.client.get("/v1/inbox") if r.get("id") == event["id"]]
            if row and out.json:
                out.emit(row[0])
            elif row:
                out.line("  ".join(clean(str(cell or "")) for cell in cells(row[0])))


@click.command()
@click.pass_obj
def outbox(state: State) -> None:
    """Documents sent, with their state: queued, sending, delivered (receipt time), rejected;
    then integrated into the recipient's software (or why not) and read, when it says so."""
    rows = state.client.get("/v1/outbox")
    with_kind = any(row.get("kind") for row in rows)  # the API may not say it (yet)

    def cells(row: dict[str, Any]) -> list[object]:
        st = str(row.get("state"))
        if st == "sending" and row.get("size"):
            st = f"sending {100 * int(row.get('sent_bytes') or 0) // int(row['size'])}%"
        with_error = row.get("state") in ("queued", "cancelled")
        note = row.get("last_error") if with_error else row.get("receipt_status")
        line = [row["id"][:12], row.get("to_name"), st, when(row.get("receipt_time"))]
        line.append(later_receipts(row))
        line.append(path_words(row.get("via")))
        line.append("" if note in (None, row.get("state")) else note)
        return [*line[:2], row.get("kind", ""), *line[2:]] if with_kind else line

    headers = ["ID", "To", "Kind", "State", "Receipt", "Then", "Via", "Note"]
    if not with_kind:
        headers.remove("Kind")
    state.out.listing(rows, headers, cells, empty="Nothing sent yet.")


def path_words(via: object) -> str:
    """Which way a document went: ``direct``, ``mailbox HOST:PORT``, or nothing yet."""
    from p2p.storage.mailboxes import host_words

    if not isinstance(via, str):
        return ""
    if via.startswith("mailbox "):
        return "mailbox " + host_words(via.removeprefix("mailbox "))
    return via


def later_receipts(row: dict[str, Any]) -> str:
    """What the recipient said after delivery: integrated (or why not), read; with their times."""
    said = []
    integrated = row.get("integrated")
    if isinstance(integrated, dict):
        if integrated.get("status") == "integrated":
            said.append(f"integrated {when(integrated.get('time'))}")
        else:
            reason = clean(integrated.get("label_en") or "")
            said.append(f"not integrated ({integrated.get('code')}): {reason}")
    read = row.get("read")
    if isinstance(read, dict):
        said.append(f"read {when(read.get('time'))}")
    return ", ".join(said)


def later_lines(receipt: dict[str, Any]) -> list[str]:
    """``pli show``'s lines for what one recipient said after delivery, each signed."""
    lines = []
    integrated = receipt.get("integrated")
    if isinstance(integrated, dict) and integrated.get("status") == "integrated":
        lines.append(f"Integrated into their software: {when(integrated.get('time'))} (signed)")
    elif isinstance(integrated, dict):
        reason = clean(integrated.get("label_en") or "")
        lines.append(
            f"Not integrated: {when(integrated.get('time'))}, error {integrated.get('code')} "
            f"{reason} (signed)"
        )
    read = receipt.get("read")
    if isinstance(read, dict):
        lines.append(f"Read: {when(read.get('time'))} (signed)")
    return lines


def _peer_names(client: Client) -> dict[str, str]:
    names = {str(p["peer_id"]): str(p["name"]) for p in client.get("/v1/peers")}
    me = client.get("/v1/identity")
    names[str(me["peer_id"])] = f"this practice ({me['name']})"
    return names


def _is_text(entry: dict[str, Any]) -> bool:
    kind = str(entry.get("type") or "").split(";")[0].strip().lower()
    return kind == "text/plain" or str(entry.get("name", "")).lower().endswith(".txt")


@click.command()
@click.argument("doc")
@click.pass_obj
def show(state: State, doc: str) -> None:
    """A document's metadata, receipts, and the text of a text document."""
    from p2p.cli.client import quote_part

    client, out = state.client, state.out
    info = client.get(f"/v1/documents/{quote_part(doc)}")
    doc_id = str(info["id"])
    receipts = client.get(f"/v1/documents/{doc_id}/receipts")
    texts = [
        (i, entry)
        for i, entry in enumerate(info.get("files", []))
        if _is_text(entry) and int(entry.get("size") or 0) <= TEXT_SHOWN_UP_TO
    ]
    if out.json:
        out.emit({**info, "receipts_signed": receipts})
        for i, entry in texts:
            text = _fetch_text(client, doc_id, i)
            out.emit({"id": doc_id, "file": i, "name": entry.get("name"), "text": text})
        return
    _show_details(out, info, receipts, _peer_names(client))
    for i, entry in texts:
        out.line(f"\n--- {clean(entry.get('name'))} ---")
        out.line(clean(_fetch_text(client, doc_id, i), keep_newlines=True))


def _show_details(
    out: Output, info: dict[str, Any], receipts: list[dict[str, Any]], names: dict[str, str]
) -> None:
    """``pli show`` on a terminal: the fields, the files, and every receipt."""
    from p2p.cli.revocation import revoked_document_warning, revoked_mark

    def who(peer_hex: str) -> str:
        return names.get(peer_hex) or f"(unknown peer {peer_hex[:12]})"

    meta = info.get("metadata") or {}
    incoming = info.get("direction") == "in"
    out.fields(
        [
            ("Document", info["id"]),
            ("Kind", info.get("kind")),
            ("From", who(info["sender"]) + revoked_mark(info.get("sender_revoked_since"))),
            ("To", ", ".join(who(r) for r in info.get("recipients", []))),
            ("Written", when(info.get("created_at"))),
            ("Subject", meta.get("subject")),
            ("Patient", _patient(meta)),
            ("Sex", meta.get("patient_sex")),
            ("INS", meta.get("patient_ins")),
            ("Author RPPS", meta.get("author_rpps")),
            ("Recipient RPPS", meta.get("recipient_rpps")),
            ("Prescription", meta.get("prescription_id")),
            ("In reply to", meta.get("in_reply_to")),
            ("Signature", "checked when the document was received" if incoming else None),
        ]
    )
    for line in revoked_document_warning(info):
        out.line(line)
    for i, entry in enumerate(info.get("files", [])):
        out.line(
            f"File {i + 1}: {clean(entry.get('name'))} ({size(entry.get('size'))}, "
            f"{clean(entry.get('type'))})"
        )
    for receipt in info.get("receipts", []):
        got = f"signed receipt {when(receipt['time'])}" if receipt.get("time") else "no receipt yet"
        out.line(f"To {who(receipt['peer'])}: {receipt.get('state')}, {got}")
        for line in later_lines(receipt):
            out.line(f"  {line}")
    for receipt in receipts if incoming else []:
        out.line(f"Our signed receipt: {clean(receipt.get('status'))}, {when(receipt.get('time'))}")


def _fetch_text(client: Client, doc_id: str, index: int) -> str:
    with client.download(f"/v1/documents/{doc_id}/files/{index}") as chunks:
        data = b"".join(chunks)
    return data.decode("utf-8", errors="replace")


@click.command()
@click.argument("doc")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False),
    default=".",
    help="The folder to write into (default: the current folder).",
)
@click.pass_obj
def export(state: State, doc: str, folder: str) -> None:
    """Write a document's decrypted file(s) and a signed-metadata sidecar (<name>.pli.json).

    Each file is checked against the sender's signature on the way. The sidecar holds
    the signature proof `pli verify` checks offline; a prescription also gets a
    printable page with a QR code. Never overwrites a file (adds " (1)", " (2)" ...)
    and never trusts the name the sender chose: it is reduced to a plain file name.
    """
    from p2p.cli.export import export_document

    target = Path(folder).expanduser()
    if not target.is_dir():
        raise BadInput(
            f"The folder “{folder}” does not exist. Create it, or choose another with --to."
        )
    done = export_document(state.client, doc, target)
    out = state.out
    if out.json:
        out.emit(
            {
                "id": done.doc_id,
                "kind": done.kind,
                "files": [str(p) for p in done.files],
                "sidecar": str(done.sidecar),
                "page": str(done.page) if done.page else None,
            }
        )
        return
    for path in done.files:
        out.line(f"Saved {path}")
    if done.page is not None:
        out.line(f"Saved the printable prescription in {done.page}")
    out.line(f"Saved the document's details, receipts and signature proof in {done.sidecar}")
    for note in done.notes:
        out.line(note)
    out.line(f"Check it any time, offline: pli verify {done.sidecar}")
