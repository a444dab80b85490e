"""Prescribing on the page: the structured form, its preview, sending; the printable page.

The form (``GET``/``POST /prescribe``) has the colleague, the patient's fields, one
row of five fields per line of the ordonnance (drug, dosage, duration, quantity,
renewals; "add a line" adds a row, with no script) and a note. It is checked by the
code ``pli prescribe`` runs (``documents/prescribing.py``, ``documents/clinical.py``),
each mistake said in the page's language. *Preview* shows the printable page as it
will print, not signed yet (``prescription.render_draft``, kept for this session
only); *send* uploads the prescription's exact bytes (``POST /v1/uploads``) and
names them in ``POST /v1/documents`` (kind ``prescription``).

``GET /documents/{doc}/ordonnance``: the printable page of a sent or received
prescription with its QR code, ``prescription.render_html`` over the signed file and
the document's evidence — byte for byte the page ``pli export`` writes, so ``pli
verify`` checks a downloaded copy. These pages carry their own inline style and no
script: they are served with a CSP of their own, framed only by the page.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from p2p.documents import clinical, prescribing, prescription
from p2p.errors import BadInput
from p2p.web import guard
from p2p.web.api import API, Api, ApiError
from p2p.web.compose import iso_date, peer_choices
from p2p.web.preview import disposition
from p2p.web.render import lang_of, render
from p2p.web.words import word
from p2p.web.words_refusals import said

PATIENT = ("patient_name", "patient_birthdate", "patient_sex", "patient_ins")
ITEM = prescription.ITEM_FIELDS  # drug, dosage, duration, quantity, renewals
#: The printable pages' own policy: their inline style, no script, framed by the page only.
PRINT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
MAX_DRAFTS = 64


class Drafts:
    """The last previewed page of each session (memory only, a few dozen at most)."""

    def __init__(self) -> None:
        self._pages: OrderedDict[str, str] = OrderedDict()

    def keep(self, session: guard.Session, page: str) -> None:
        self._pages[session.csrf] = page
        self._pages.move_to_end(session.csrf)
        while len(self._pages) > MAX_DRAFTS:
            self._pages.popitem(last=False)

    def of(self, session: guard.Session) -> str | None:
        return self._pages.get(session.csrf)


DRAFTS: web.AppKey[Drafts] = web.AppKey("drafts", Drafts)


async def form(request: web.Request) -> web.Response:
    """The empty form: one line, the colleague to choose."""
    values = {"recipient": request.query.get("to", ""), "note": "", "rpps": ""}
    values.update(dict.fromkeys(PATIENT, ""))
    return await show(request, values, [dict.fromkeys(ITEM, "")], [])


async def show(
    request: web.Request,
    values: dict[str, str],
    items: list[dict[str, str]],
    problems: list[str],
    *,
    status: int = 200,
    previewed: bool = False,
) -> web.Response:
    identity = await request.app[API].get("/v1/identity")
    return await render(
        request,
        "prescribe.html",
        status=status,
        section="prescribe",
        form=values,
        items=items,
        problems=problems,
        peers=await peer_choices(request.app[API]),
        needs_rpps=not identity.get("rpps"),
        previewed=previewed,
    )


def read(posted: MultiDictProxy[Any]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The form's fields, and its lines (a line left empty is dropped)."""
    text = {key: str(value)[:4096] for key, value in posted.items() if isinstance(value, str)}
    values = {key: text.get(key, "").strip() for key in ("recipient", "note", "rpps", *PATIENT)}
    columns = [[str(v)[:4096] for v in posted.getall(name, [])] for name in ITEM]
    rows = max((len(column) for column in columns), default=0)
    items = [
        {
            name: column[row] if row < len(column) else ""
            for name, column in zip(ITEM, columns, strict=True)
        }
        for row in range(min(rows, prescription.MAX_ITEMS + 1))
    ]
    return values, [item for item in items if any(v.strip() for v in item.values())]


def checked(
    values: dict[str, str], items: list[dict[str, str]], identity: dict[str, Any], lang: str
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(the prescription, its envelope's metadata, problems): problems empty when it can go."""
    problems = [] if values.get("recipient") else [word(lang, "need_recipient")]
    lines = []
    for number, item in enumerate(items, start=1):
        try:
            lines.append(prescribing.check_item(*(item[name] for name in ITEM)))
        except BadInput as exc:
            problems.append(word(lang, "rx_line", number=number, problem=said(exc, lang)))
    metadata: dict[str, str] = {}
    by: dict[str, str] = {}
    try:
        metadata = clinical.clinical_metadata(
            patient_name=values["patient_name"] or None,
            birthdate=iso_date(values["patient_birthdate"] or None),
            sex=values["patient_sex"] or None,
            ins=values["patient_ins"] or None,
        )
        prescribing.check_patient(metadata)
    except BadInput as exc:
        problems.append(said(exc, lang))
    try:
        by = prescribing.prescriber(identity, values.get("rpps"))
    except BadInput as exc:
        problems.append(said(exc, lang))
    if problems:
        return {}, {}, problems
    try:
        order, envelope = prescribing.order(metadata, lines, by, note=values["note"])
    except BadInput as exc:
        return {}, {}, [said(exc, lang)]
    return order, envelope, []


async def submit(request: web.Request) -> web.StreamResponse:
    """Add a line, preview, or send (the button pressed says which)."""
    lang = lang_of(request)
    posted = await request.post()
    values, items = read(posted)
    action = str(posted.get("action", "preview"))
    if action == "add":
        rows = [*items, dict.fromkeys(ITEM, "")][: prescription.MAX_ITEMS]
        return await show(request, values, rows, [])
    api = request.app[API]
    order, envelope, problems = checked(values, items, await api.get("/v1/identity"), lang)
    if problems:
        return await show(request, values, items or [dict.fromkeys(ITEM, "")], problems, status=400)
    if action != "send":
        draft = prescription.render_draft(prescription.to_bytes(order))
        request.app[DRAFTS].keep(guard.session_of(request), draft)
        return await show(request, values, items, [], previewed=True)
    try:
        doc_id = await send(api, values["recipient"], order, envelope)
    except ApiError as exc:  # e.g. the colleague was removed or revoked meanwhile
        return await show(request, values, items, [said(exc, lang)], status=400)
    guard.session_of(request).notes.append(word(lang, "rx_sent"))
    raise web.HTTPSeeOther(f"/documents/{doc_id}")


async def send(api: Api, to: str, order: dict[str, Any], envelope: dict[str, str]) -> str:
    """Upload the prescription's bytes and queue it for ``to``; the document's id."""
    data = prescription.to_bytes(order)

    async def chunks() -> Any:
        yield data

    upload = await api.upload(chunks())
    file = {"upload": upload["upload"], "name": prescription.file_name(order)}
    body = {
        "to": [to],
        "kind": "prescription",
        "metadata": envelope,
        "files": [{**file, "type": prescription.MEDIA_TYPE}],
    }
    answer = await api.post("/v1/documents", body)  # sent or refused, the upload is gone
    return str(answer["id"])


async def draft(request: web.Request) -> web.Response:
    """The last preview of this session, as it will print (not signed yet)."""
    page = request.app[DRAFTS].of(guard.session_of(request))
    if page is None:
        raise web.HTTPNotFound(text=word(lang_of(request), "no_draft"))
    return printable(page)


def printable(page: str, *, download: str = "") -> web.Response:
    response = web.Response(text=page, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = PRINT_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    if download:
        response.headers["Content-Disposition"] = disposition("attachment", download)
    return response


async def ordonnance(request: web.Request) -> web.Response:
    """The printable page of a prescription, with its QR code (``?download=1``: the file)."""
    api = request.app[API]
    doc = quote(request.match_info["doc"], safe="")
    described = await api.get(f"/v1/documents/{doc}")
    found = prescription_file(described)
    if found is None:
        raise web.HTTPNotFound(text=word(lang_of(request), "not_printable"))
    index, name = found
    proof = await api.get(f"/v1/documents/{doc}/evidence")
    content = await read_file(api, f"/v1/documents/{doc}/files/{index}")
    try:
        page = prescription.render_html(
            content,
            base64.b64decode(proof["evidence"]),
            document_id=str(described["id"]),
            signer_fingerprint=str(proof["signer_fingerprint"]),
            file_index=index,
        )
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPNotFound(text=word(lang_of(request), "not_printable")) from None
    wanted = request.query.get("download") == "1"
    return printable(page, download=name.removesuffix(".json") + ".html" if wanted else "")


def prescription_file(described: dict[str, Any]) -> tuple[int, str] | None:
    """(index, safe name) of a document's prescription file, if it is a prescription."""
    from p2p.documents.filenames import safe_filename

    if described.get("kind") != "prescription":
        return None
    for index, entry in enumerate(described.get("files", [])):
        media = str(entry.get("type", "")).split(";")[0].strip()
        too_big = int(entry.get("size") or 0) > MAX_PRESCRIPTION
        if media == prescription.MEDIA_TYPE and not too_big:
            return index, safe_filename(str(entry.get("name", "")), index + 1)
    return None


MAX_PRESCRIPTION = 256 * 1024  # bytes: a prescription is a page, not a book


async def read_file(api: Api, path: str) -> bytes:
    """A small file's bytes from the API (a prescription: bounded)."""
    data = bytearray()
    async with api.stream(path) as response:
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > MAX_PRESCRIPTION:
                raise web.HTTPNotFound(text="pli: this prescription is too large to print.")
    return bytes(data)
