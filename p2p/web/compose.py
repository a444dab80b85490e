"""Writing a document: the form, and sending it with its files streamed to the daemon.

The form's fields are checked by ``documents/clinical.py``, the same checks and
sentences as ``pli send``. Files are multipart parts; each is relayed chunk by chunk
to the local API's ``POST /v1/uploads`` as it arrives (memory does not grow with the
file), then ``POST /v1/documents`` names the uploads. The fields come before the
files in the form, so a mistake is reported before any file is read. With the
page's script the answer is JSON (``{"location"}`` or ``{"problems"}``); without,
a redirect or the form again with its problems.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, web

from p2p.documents import clinical
from p2p.errors import BadInput
from p2p.web import guard
from p2p.web.api import API, Api, ApiError
from p2p.web.render import lang_of, render
from p2p.web.words import word
from p2p.web.words_refusals import said
from protocol import KINDS

FIELDS = (
    "recipient",
    "kind",
    "subject",
    "patient_name",
    "patient_birthdate",
    "patient_sex",
    "patient_ins",
    "in_reply_to",
)
MAX_FIELD = 8 * 1024
MAX_FILES = 64
CHUNK = 256 * 1024
_FRENCH_DATE = re.compile(r"\s*(\d{1,2})[/.](\d{1,2})[/.](\d{4})\s*")
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,100}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,100}")


async def form(request: web.Request) -> web.Response:
    """The empty form; ``?to=PEER`` chooses the colleague (a colleague's "write to"
    link), ``?reply_to=DOC`` prefills the answer to a document."""
    values = dict.fromkeys(FIELDS, "")
    values["kind"] = "letter"
    values["recipient"] = request.query.get("to", "")[:200]
    reply_to = request.query.get("reply_to", "")
    if reply_to:
        doc = await request.app[API].get(f"/v1/documents/{quote(reply_to, safe='')}")
        meta = doc.get("metadata") or {}
        subject = str(meta.get("subject", ""))
        values.update(
            recipient=str(doc.get("sender", "")),
            in_reply_to=str(doc["id"]),
            subject=subject if subject.lower().startswith("re:") else f"Re: {subject}".strip(),
            patient_name=_name_for_form(meta),
            patient_birthdate=str(meta.get("patient_birthdate", "")),
            patient_sex=str(meta.get("patient_sex", "")),
            patient_ins=str(meta.get("patient_ins", "")),
        )
    shown = values["subject"].removeprefix("Re: ") or word(lang_of(request), "no_subject")
    return await show_form(request, values, [], reply_subject=shown if reply_to else "")


def _name_for_form(meta: dict[str, Any]) -> str:
    """The patient's name as the form takes it: ``FAMILY, Given`` when split."""
    family, given = meta.get("patient_family_name"), meta.get("patient_given_names")
    if family or given:
        return f"{family or ''}, {given or ''}".strip(", ")
    return str(meta.get("patient_name", ""))


async def show_form(
    request: web.Request,
    values: dict[str, str],
    problems: list[str],
    status: int = 200,
    reply_subject: str = "",
) -> web.Response:
    peers = await peer_choices(request.app[API])
    return await render(
        request,
        "compose.html",
        status=status,
        section="compose",
        form=values,
        problems=problems,
        peers=peers,
        reply_subject=reply_subject,
    )


async def peer_choices(api: Api) -> list[dict[str, str]]:
    """The colleagues a document can go to (paired, not revoked), labelled for a choice."""
    return [
        {"peer_id": p["peer_id"], "label": _label(p)}
        for p in await api.get("/v1/peers")
        if p.get("state") == "paired" and not p.get("revoked_since")
    ]


def _label(peer: dict[str, Any]) -> str:
    extra = " · ".join(str(peer[k]) for k in ("profession", "practice", "rpps") if peer.get(k))
    return f"{peer.get('name', '')} — {extra}" if extra else str(peer.get("name", ""))


def metadata(values: dict[str, str]) -> dict[str, str]:
    """The envelope's metadata from the form, or ``BadInput`` with the CLI's sentence."""

    def given(name: str) -> str | None:
        return values.get(name, "").strip() or None

    meta = clinical.clinical_metadata(
        subject=given("subject"),
        patient_name=given("patient_name"),
        birthdate=iso_date(given("patient_birthdate")),
        sex=given("patient_sex"),
        ins=given("patient_ins"),
    )
    if given("in_reply_to"):
        meta["in_reply_to"] = str(given("in_reply_to"))
    return meta


def iso_date(text: str | None) -> str | None:
    """A date typed as the practice writes it (23/05/1984) made ``YYYY-MM-DD``; any
    other text as it was (the date input sends ``YYYY-MM-DD`` already)."""
    found = _FRENCH_DATE.fullmatch(text or "")
    if found is None:
        return text
    day, month, year = found.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def check(values: dict[str, str], lang: str) -> tuple[dict[str, str], list[str]]:
    """The metadata and what is wrong with the form (empty when it can be sent)."""
    problems = []
    if not values.get("recipient"):
        problems.append(word(lang, "need_recipient"))
    if values.get("kind") not in KINDS:
        values["kind"] = "letter"
    try:
        meta = metadata(values)
    except BadInput as exc:
        problems.append(said(exc, lang))
        meta = {}
    return meta, problems


async def send(request: web.Request) -> web.StreamResponse:
    lang = lang_of(request)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    values = dict.fromkeys(FIELDS, "")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise web.HTTPBadRequest(text=word(lang, "not_a_form")) from None
    api = request.app[API]
    uploads: list[dict[str, str]] = []
    try:
        problems = await read_form(api, reader, values, lang, uploads)
        answer, problems = await _queue(api, values, uploads, problems, lang)
    finally:
        await release(api, uploads)  # refused or abandoned: the daemon holds them no more
    if problems:
        if wants_json:
            return web.json_response({"problems": problems}, status=400)
        return await show_form(request, values, problems, status=400)
    guard.session_of(request).notes.append(word(lang, "queued"))
    location = f"/documents/{answer['id']}"
    if wants_json:
        return web.json_response({"location": location, "id": answer["id"]})
    raise web.HTTPSeeOther(location)


async def _queue(
    api: Api, values: dict[str, str], uploads: list[dict[str, str]], problems: list[str], lang: str
) -> tuple[dict[str, Any], list[str]]:
    """``POST /v1/documents`` for a form read without problems: (its answer, problems).

    Once named there, ``uploads`` are the daemon's (sealed, or deleted with the
    refusal): the list is emptied so that they are not released twice."""
    meta, more = check(values, lang) if not problems else ({}, [])
    problems = problems + more
    if not problems and not uploads:
        problems.append(word(lang, "need_file"))
    if problems:
        return {}, problems
    body = {"to": [values["recipient"]], "kind": values["kind"], "metadata": meta}
    named, uploads[:] = list(uploads), []
    try:
        return await api.post("/v1/documents", {**body, "files": named}), []
    except ApiError as exc:
        return {}, [said(exc, lang)]


async def release(api: Api, uploads: list[dict[str, str]]) -> None:
    """Release ``uploads`` (no document will name them); a daemon gone is not a problem
    here: the daemon deletes unused uploads after an hour and at start."""
    for entry in uploads:
        with contextlib.suppress(ApiError):
            await api.release(entry["upload"])
    uploads.clear()


async def read_form(
    api: Api,
    reader: MultipartReader,
    values: dict[str, str],
    lang: str,
    uploads: list[dict[str, str]],
) -> list[str]:
    """Read the fields, then stream each file to the API, adding it to ``uploads`` as
    soon as it is held (so that a failure part way releases it); the problems."""
    checked = False
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            return [word(lang, "not_a_form")]
        if part.filename is None:
            if part.name in values:
                text = await part.read(decode=True)
                values[str(part.name)] = bytes(text[:MAX_FIELD]).decode("utf-8", errors="replace")
            continue
        if not checked:  # the first file: the fields are all in
            _meta, problems = check(values, lang)
            if problems:
                return problems
            checked = True
        if not part.filename:  # the file input left empty
            await part.release()
            continue
        if len(uploads) >= MAX_FILES:
            return [word(lang, "too_many_files", count=MAX_FILES)]
        try:
            done = await api.upload(_chunks(part))
        except ApiError as exc:
            return [said(exc, lang)]
        media_type = (part.headers.get("Content-Type") or "").split(";")[0].strip()
        uploads.append(
            {
                "upload": done["upload"],
                "name": part.filename or "document",
                "type": media_type if _TYPE.fullmatch(media_type) else "application/octet-stream",
            }
        )
    return []


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield bytes(chunk)
