"""What ``pli send`` and ``pli prescribe`` share: checking the files, the patient options,
queuing one envelope through the API and following its receipts (with a progress bar
on a terminal for a large document).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import click

from p2p.cli.render import clean
from p2p.errors import BadInput, DocumentUnknown, PliError

if TYPE_CHECKING:
    from p2p.cli.app import State
    from p2p.cli.render import Output


class Kinds(click.Choice[str]):
    """``--kind``: one of ``protocol.KINDS``, read only when a command uses it.

    Importing ``protocol`` costs ~90 ms that ``pli --help`` must not pay, so the
    choices are looked up when click first needs them (a value, or the command's help).
    """

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        from protocol import KINDS

        return tuple(KINDS)

    @choices.setter
    def choices(self, _value: object) -> None:
        """click's own ``__init__`` sets the choices; they are always protocol's."""


POLL_SECONDS = 0.2  # longest pause between two looks at the outbox (--wait)
POLL_FIRST = 0.005  # shortest
PROGRESS_BAR_FROM = 1_000_000  # bytes: smaller documents go out faster than a bar can draw
#: Outbox states after which nothing more happens to a (document, recipient).
FINAL_STATES = ("delivered", "rejected", "cancelled")


def check_file(text: str) -> str:
    from p2p.documents.clinical import max_text

    path = Path(text).expanduser()
    if not path.exists():
        raise BadInput(f"The file “{text}” does not exist. Check its name and folder.")
    if path.is_dir():
        raise BadInput(
            f"“{text}” is a folder, not a file: send the files inside it (or a zip of the folder)."
        )
    if not path.is_file():
        raise BadInput(f"“{text}” is not an ordinary file, so it cannot be sent.")
    try:
        with open(path, "rb"):
            pass
    except OSError:
        raise BadInput(
            f"pli cannot read the file “{text}” (permission denied). "
            "Check its permissions, or copy it to a folder of yours."
        ) from None
    if not os.access(path, os.R_OK):
        raise BadInput(f"pli cannot read the file “{text}”. Check its permissions.")
    if len(path.name) > max_text() or any(ord(ch) < 32 or ord(ch) == 127 for ch in path.name):
        raise BadInput(
            f"The name of the file “{text}” is too long or contains control "
            "characters; rename it (a short plain name) and send it again."
        )
    return str(path.resolve())


class Patient(TypedDict):
    """The patient options, keyed as ``clinical.clinical_metadata`` takes them."""

    patient_name: str | None
    family_name: str | None
    given_names: str | None
    birthdate: str | None
    sex: str | None
    ins: str | None


PATIENT_OPTIONS = {  # option -> key of ``Patient``
    "patient_name": "patient_name",
    "patient_family_name": "family_name",
    "patient_given_names": "given_names",
    "patient_birthdate": "birthdate",
    "patient_sex": "sex",
    "patient_ins": "ins",
}


def patient_options(command: Any) -> Any:
    """The patient options shared by ``send`` and ``prescribe``, given to the command as
    one ``patient`` dict keyed for ``clinical_metadata`` (``family_name``, ``ins``...)."""

    @functools.wraps(command)
    def with_patient(*args: Any, **kwargs: Any) -> Any:
        patient = {key: kwargs.pop(option) for option, key in PATIENT_OPTIONS.items()}
        return command(*args, patient=patient, **kwargs)

    options = [
        click.option(
            "--patient-name",
            metavar="NAME",
            help='The patient\'s name; "FAMILY, Given names" fills both fields.',
        ),
        click.option(
            "--patient-family-name",
            metavar="NAME",
            help="The patient's family (birth) name, as on the INS.",
        ),
        click.option("--patient-given-names", metavar="NAMES", help="The patient's given names."),
        click.option("--patient-birthdate", metavar="YYYY-MM-DD", help="The patient's birth date."),
        click.option("--patient-sex", metavar="F|M|U", help="The patient's sex, as on the INS."),
        click.option(
            "--patient-ins", metavar="INS", help="The patient's INS (15 characters, with key)."
        ),
    ]
    wrapped: Any = with_patient
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def delivery_options(command: Any) -> Any:
    """``--recipient-rpps``, ``--in-reply-to`` and ``--wait``: last on send and prescribe."""
    options = [
        click.option("--recipient-rpps", metavar="RPPS", help="The recipient's RPPS (11 digits)."),
        click.option("--in-reply-to", metavar="DOC", help="The id of the document this answers."),
        click.option("--wait", is_flag=True, help="Wait until the signed receipt is back."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def own_rpps(state: State, given: str | None) -> str | None:
    """``--author-rpps``, else the RPPS of this practice's profile (``pli init --rpps``)."""
    if given:
        return given
    from p2p.storage.config import load_profile

    try:
        return str(load_profile(state.home).get("rpps") or "") or None
    except PliError:
        return None


def send_document(
    state: State,
    peer: str,
    kind: str,
    metadata: dict[str, str],
    files: list[dict[str, str]],
    *,
    in_reply_to: str | None = None,
    wait: bool = False,
) -> str:
    """Queue one envelope through the API, report it, optionally wait for the receipts."""
    from p2p.cli.client import quote_part

    client = state.client
    if in_reply_to is not None:
        metadata["in_reply_to"] = client.get(f"/v1/documents/{quote_part(in_reply_to)}")["id"]
    body = {
        "to": [peer],
        "kind": kind,
        "metadata": {k: v for k, v in metadata.items() if v},
        "files": files,
    }
    answer = client.post("/v1/documents", body, timeout=None)  # sealing a big file takes time
    doc_id = str(answer["id"])
    rows = client.get(f"/v1/outbox?id={doc_id}")
    names = ", ".join(clean(r.get("to_name")) for r in rows) or clean(peer)
    out = state.out
    if out.json:
        out.emit({"event": "queued", "id": doc_id, "to": answer.get("to", []), "kind": kind})
    else:
        out.line(f"Queued {kind} {doc_id[:12]} for {names}.")
    if not wait:
        if not out.json:
            out.line("It will be delivered as soon as they are reachable; `pli outbox` shows it.")
        return doc_id
    try:
        _wait_for_receipts(state, doc_id)
    except KeyboardInterrupt:
        raise PliError(
            f"Stopped waiting. The document stays in the outbox and will be delivered "
            f"when {names} can be reached (`pli outbox` shows it)."
        ) from None
    return doc_id


def media_type(path: str) -> str:
    """The file's media type from its extension, so the receiver knows a text from a PDF."""
    import mimetypes
    import re

    guessed, encoding = mimetypes.guess_type(path, strict=False)
    plain = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,100}"  # what the protocol accepts
    if guessed is None or encoding is not None or not re.fullmatch(f"{plain}/{plain}", guessed):
        return "application/octet-stream"  # unknown, or compressed (.gz ...): plain bytes
    return f"{guessed}; charset=utf-8" if guessed == "text/plain" and _is_utf8(path) else guessed


def _is_utf8(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut at the end of the sample
    return True


def _wait_for_receipts(state: State, doc_id: str) -> None:
    """Poll the outbox until every recipient's receipt is back (or it was refused)."""
    out, client = state.out, state.client
    seen: dict[str, tuple[Any, ...]] = {}  # recipient -> (state, last error) last reported
    bar: Any = None
    task: Any = None
    started = time.monotonic()
    try:
        while True:
            rows = client.get(f"/v1/outbox?id={doc_id}")
            if not rows:
                raise DocumentUnknown(f"The document {doc_id[:12]} is no longer in the outbox.")
            total = sum(int(r.get("size") or 0) for r in rows)
            done = sum(_sent(r) for r in rows)
            finished = all(r.get("state") in FINAL_STATES for r in rows)
            sending = any(r.get("state") == "sending" for r in rows)
            if bar is None and sending and out.tty and total >= PROGRESS_BAR_FROM:
                bar, task = _progress_bar(total)
            if bar is not None:
                bar.update(task, completed=done)
                if finished:
                    bar.stop()
                    bar = None
            for row in rows:
                key = (row.get("state"), row.get("last_error"))
                if seen.setdefault(row["to"], ("queued", None)) != key:
                    seen[row["to"]] = key
                    _report_step(out, row, bar)
            if finished:
                break
            # Often at first (a letter's receipt is back within milliseconds), then
            # less: the wait overshoots the receipt by at most ~2 % of the time waited.
            time.sleep(min(POLL_SECONDS, max(POLL_FIRST, (time.monotonic() - started) / 50)))
    finally:
        if bar is not None:
            bar.stop()
    cancelled = [r for r in rows if r.get("state") == "cancelled"]
    if cancelled:
        who = ", ".join(clean(r.get("to_name")) for r in cancelled)
        raise PliError(
            f"The document to {who} was cancelled: {clean(cancelled[0].get('last_error'))}"
        )
    refused = [r for r in rows if r.get("state") == "rejected"]
    if refused:
        who = ", ".join(clean(r.get("to_name")) for r in refused)
        reason = clean(refused[0].get("receipt_status") or refused[0].get("last_error") or "")
        raise PliError(
            f"{who} refused the document{f' ({reason})' if reason else ''}. "
            "Call them to find out why; nothing more will be tried."
        )


def _sent(row: dict[str, Any]) -> int:
    if row.get("state") in FINAL_STATES:
        return int(row.get("size") or 0)
    return int(row.get("sent_bytes") or 0)


def _progress_bar(total: int) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("Sending"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("send", total=total)


def _report_step(out: Output, row: dict[str, Any], bar: Any) -> None:
    """Say what changed for one recipient (above the progress bar when one is drawn)."""
    from p2p.cli.render import when

    state, name = row.get("state"), clean(row.get("to_name"))
    if out.json:
        keys = ("id", "to", "receipt_time", "receipt_status", "last_error")
        out.emit({"event": state, **{key: row.get(key) for key in keys}})
        return
    if state == "delivered":
        received = when(row.get("receipt_time"))
        text = f"Delivered to {name} at {received}: their signed receipt is stored."
    elif state == "queued" and row.get("last_error"):
        text = f"Waiting for {name}: {clean(row.get('last_error'))} (pli keeps trying)."
    elif state == "sending" and bar is None:
        text = f"Sending to {name}…"
    else:
        return
    if bar is None:
        out.line(text)
    else:
        from rich.text import Text

        bar.console.print(Text(text))
