"""Structured prescriptions (ordonnances): the JSON file ``pli prescribe`` signs and sends.

What lives here:

- ``ITEM_HELP``: how a line is written (``prescribing.parse_item`` checks one);
- ``build`` / ``to_bytes``: the prescription as a JSON object (patient, items,
  prescriber with RPPS, date, unique id) and its exact bytes, which go into the
  envelope as ``ordonnance-<date>.json`` (``application/json``) and are signed
  like every document;
- ``load``: read one back (it may come from a peer: every field is checked);
- ``render_draft``: the same page before it is signed (the page's preview), its QR
  code's place marked;
- ``render_html``: the printable page ``pli export`` writes next to it, with a
  QR code carrying the signature proof (``protocol.Evidence``, base64url). The
  page is a pure function of the prescription bytes and the evidence, so
  ``pli verify`` can rebuild it and notice any change to what it shows.

What must not: import ``protocol`` or talk to the daemon. ``segno`` is imported
only when a page is drawn.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from p2p.errors import BadInput

FORMAT = "pli-prescription/1"
MEDIA_TYPE = "application/json"
MAX_ITEMS = 30
MAX_RENEWALS = 12  # a prescription is valid a year at most: monthly renewals at most
ITEM_FIELDS = ("drug", "dosage", "duration", "quantity", "renewals")
ITEM_HELP = (
    'Write an item as "drug; dosage; duration" and optionally "; quantity; renewals", e.g. '
    '"Amoxicilline 1 g; 1 comprimé matin et soir; 7 jours; 1 boîte; 0".'
)
#: What a QR code carries: this prefix, then base64url (no padding) of ``Evidence.to_wire()``.
QR_PREFIX = "PLI1:"
#: Fallback when the proof does not fit a QR code (it always has so far): document id,
#: SHA-256 of the prescription file and signer fingerprint, to look the proof up.
QR_REF_PREFIX = "PLI1-REF:"
#: "2": dates written as a French reader reads them (23/05/1984); "1": as ISO 8601.
#: ``pli verify`` rebuilds a page with the version it says (``page_version``).
PAGE_VERSION = "2"
PAGE_VERSIONS = ("1", "2")
_QR_START, _QR_END = "<!-- qr -->", "<!-- /qr -->"
_PATIENT_KEYS = ("name", "family_name", "given_names", "birthdate", "sex", "ins")
_PRESCRIBER_KEYS = ("name", "profession", "rpps", "practice", "fingerprint")


def build(
    *,
    patient: Mapping[str, str],
    items: Sequence[Mapping[str, Any]],
    prescriber: Mapping[str, str],
    note: str = "",
    today: dt.date | None = None,
) -> dict[str, Any]:
    """A new prescription with a unique id, dated today."""
    if not items:
        raise BadInput(f"A prescription needs at least one --item. {ITEM_HELP}")
    if len(items) > MAX_ITEMS:
        raise BadInput(f"At most {MAX_ITEMS} items per prescription; write two prescriptions.")
    if not prescriber.get("rpps"):
        raise BadInput(
            "A prescription must carry the prescriber's RPPS number and your profile has none. "
            "Give it with --rpps (the 11 digits on your CPS card)."
        )
    return {
        "format": FORMAT,
        "id": str(uuid.uuid4()),
        "date": (today or dt.date.today()).isoformat(),
        "prescriber": {key: str(prescriber.get(key, "")) for key in _PRESCRIBER_KEYS},
        "patient": {key: str(patient.get(key, "")) for key in _PATIENT_KEYS},
        "items": [{key: item[key] for key in ITEM_FIELDS} for item in items],
        "note": note,
    }


def to_bytes(prescription: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return (json.dumps(prescription, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def file_name(prescription: Mapping[str, Any]) -> str:
    return f"ordonnance-{prescription['date']}.json"


def load(data: bytes) -> dict[str, Any]:
    """Read a prescription file (perhaps a peer's); raises ``ValueError`` if it is not one."""
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise ValueError("not a pli prescription")

    def strings(obj: Any, keys: Sequence[str]) -> dict[str, str]:
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k, ""), str) for k in keys):
            raise ValueError("a prescription field is not text")
        return {key: obj.get(key, "") for key in keys}

    items = value.get("items")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        raise ValueError("a prescription lists 1 to 30 items")
    checked = []
    for item in items:
        fields = strings(item, ITEM_FIELDS[:4])
        renewals = item.get("renewals", 0)
        if not isinstance(renewals, int) or isinstance(renewals, bool) or renewals < 0:
            raise ValueError("renewals is a number")
        checked.append({**fields, "renewals": renewals})
    top = strings(value, ("id", "date", "note"))
    return {
        "format": FORMAT,
        **top,
        "prescriber": strings(value.get("prescriber"), _PRESCRIBER_KEYS),
        "patient": strings(value.get("patient"), _PATIENT_KEYS),
        "items": checked,
    }


# --- the printable page ------------------------------------------------------------------


def qr_payload(evidence_wire: bytes) -> str:
    return QR_PREFIX + base64.urlsafe_b64encode(evidence_wire).decode("ascii").rstrip("=")


def decode_qr_payload(text: str) -> bytes:
    """The evidence bytes from a QR payload; raises ``ValueError``."""
    text = text.strip()
    if not text.startswith(QR_PREFIX):
        raise ValueError("not a pli proof")
    body = text[len(QR_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def qr_svg(payload: str, reference: str) -> tuple[str, bool]:
    """An inline SVG QR code of ``payload`` (binary mode, error level M).

    Returns ``(svg, full)``: ``full`` is False when the proof did not fit and the
    code carries ``reference`` (document id, file hash, signer) instead.
    """
    import segno

    try:
        code = segno.make(payload, error="m", mode="byte", boost_error=False, micro=False)
        full = True
    except segno.DataOverflowError:
        code = segno.make(reference, error="m", mode="byte", boost_error=False, micro=False)
        full = False
    svg: str = code.svg_inline(scale=3, border=4, title="pli signature proof")
    return svg, full


_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="generator" content="pli">
<meta name="pli-page" content="{version}">
<title>Ordonnance {pid}</title>
<style>
body {{ font-family: sans-serif; max-width: 18cm; margin: 1.5cm auto; color: #111; }}
header {{ display: flex; justify-content: space-between; border-bottom: 1px solid #444; }}
h1 {{ font-size: 1.3em; margin: 0 0 .3em 0; }}
ol li {{ margin: .6em 0; }} .small {{ font-size: .8em; color: #444; }}
.proof {{ display: flex; gap: 1em; align-items: center; margin-top: 2em;
  border-top: 1px solid #444; padding-top: 1em; }}
code {{ word-break: break-all; }} .proof svg {{ flex: 0 0 auto; }}
@media print {{ body {{ margin: 0 auto; }} }}
</style>
</head>
<body>
<header>
<div><h1>{prescriber_name}</h1>{prescriber_lines}</div>
<div><p>Le {date}</p></div>
</header>
<section>
<h2>Ordonnance</h2>
<p><strong>Patient :</strong> {patient}</p>
<ol>
{items}
</ol>
{note}
</section>
<section class="proof">
{qr_start}{qr}{qr_end}
<div class="small">
<p>Ordonnance n° <code>{pid}</code> — document pli <code>{doc_id}</code></p>
<p>Signée électroniquement par la clé dont l'empreinte est<br><code>{fingerprint}</code></p>
<p>{qr_note}</p>
<p>Pour vérifier : <code>pli verify</code> suivi du nom de ce fichier.</p>
</div>
</section>
<script type="application/pli-evidence" id="pli-evidence">{evidence}</script>
<script type="application/pli-prescription" id="pli-prescription" \
data-file-index="{file_index}">{content}</script>
</body>
</html>
"""


def _shown_date(iso: str, version: str) -> str:
    """A date of the prescription as the page shows it: 23/05/1984 (version 1: as stored)."""
    if version == "1":
        return iso
    try:
        return dt.date.fromisoformat(iso).strftime("%d/%m/%Y")
    except ValueError:
        return iso


def _patient_line(patient: Mapping[str, str], version: str) -> str:
    sex = {"F": "femme", "M": "homme"}.get(patient.get("sex", ""), "")
    birth = _shown_date(patient.get("birthdate", ""), version)
    parts = [
        patient.get("name")
        or f"{patient.get('family_name', '').upper()} {patient.get('given_names', '')}".strip(),
        f"né(e) le {birth}" if birth else "",
        sex,
        f"INS {patient['ins']}" if patient.get("ins") else "",
    ]
    return html.escape(", ".join(part for part in parts if part))


def _item_html(item: Mapping[str, Any]) -> str:
    e = html.escape
    details = [e(item["dosage"]), f"pendant {e(item['duration'])}"]
    if item.get("quantity"):
        details.append(f"quantité : {e(item['quantity'])}")
    renewals = int(item.get("renewals") or 0)
    details.append(f"à renouveler {renewals} fois" if renewals else "non renouvelable")
    return f"<li><strong>{e(item['drug'])}</strong><br>{' — '.join(details)}</li>"


def render_html(
    content: bytes,
    evidence_wire: bytes,
    *,
    document_id: str,
    signer_fingerprint: str,
    file_index: int,
    version: str = PAGE_VERSION,
) -> str:
    """The printable page of the prescription ``content`` (its exact signed bytes), as
    page ``version`` lays it out (``pli verify`` rebuilds older pages the way they were)."""
    import hashlib

    prescription = load(content)
    sha = hashlib.sha256(content).hexdigest()
    reference = f"{QR_REF_PREFIX}{document_id}:{sha}:{signer_fingerprint}"
    qr, full = qr_svg(qr_payload(evidence_wire), reference)
    qr_note = (
        "Le QR code contient la preuve de signature (pli)."
        if full
        else "Le QR code contient la référence du document ; la preuve complète est dans le "
        "fichier .pli.json exporté avec l'ordonnance."
    )
    return _page(
        prescription,
        qr=qr,
        qr_note=qr_note,
        document_id=document_id,
        fingerprint=signer_fingerprint,
        evidence=qr_payload(evidence_wire),
        file_index=file_index,
        content=content,
        version=version,
    )


_DRAFT_QR = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="117" role="img" '
    'aria-label="Emplacement du QR code de signature"><rect x="2" y="2" width="113" '
    'height="113" fill="none" stroke="#777" stroke-dasharray="6 4"/><text x="58" y="55" '
    'text-anchor="middle" font-size="11" fill="#555">QR code</text><text x="58" y="71" '
    'text-anchor="middle" font-size="11" fill="#555">à l\'envoi</text></svg>'
)
_DRAFT_BANNER = (
    '<p style="border: 2px dashed #b45309; padding: .5em">Aperçu avant envoi : cette ordonnance '
    "n'est pas encore signée. Le QR code de signature est ajouté quand elle est envoyée.</p>\n"
)


def render_draft(content: bytes) -> str:
    """The printable page of a prescription not signed yet (the page's preview before
    sending): the same page, its QR code's place marked, a banner saying it is a draft."""
    page = _page(
        load(content),
        qr=_DRAFT_QR,
        qr_note="Aperçu : pas encore signée.",
        document_id="(à l'envoi)",
        fingerprint="(à l'envoi)",
        evidence="",
        file_index=0,
        content=content,
        version=PAGE_VERSION,
    )
    return page.replace("<body>\n", "<body>\n" + _DRAFT_BANNER, 1)


def _page(
    prescription: Mapping[str, Any],
    *,
    qr: str,
    qr_note: str,
    document_id: str,
    fingerprint: str,
    evidence: str,
    file_index: int,
    content: bytes,
    version: str,
) -> str:
    e = html.escape
    prescriber = prescription["prescriber"]
    lines = [
        prescriber.get("profession", ""),
        prescriber.get("practice", ""),
        f"RPPS {prescriber['rpps']}" if prescriber.get("rpps") else "",
    ]
    note = prescription.get("note", "")
    return _PAGE.format(
        version=version,
        pid=e(prescription["id"]),
        prescriber_name=e(prescriber.get("name", "")),
        prescriber_lines="".join(f"<div>{e(line)}</div>" for line in lines if line),
        date=e(_shown_date(prescription["date"], version)),
        patient=_patient_line(prescription["patient"], version),
        items="\n".join(_item_html(item) for item in prescription["items"]),
        note=f"<p>{e(note)}</p>" if note else "",
        qr_start=_QR_START,
        qr=qr,
        qr_end=_QR_END,
        doc_id=e(document_id),
        fingerprint=e(fingerprint),
        qr_note=qr_note,
        evidence=evidence,
        file_index=file_index,
        content=base64.b64encode(content).decode("ascii"),
    )


def read_page(page: str) -> tuple[bytes, bytes, int, str]:
    """``(evidence wire, prescription bytes, file index, page without its QR)``.

    Raises ``ValueError`` when the page is not one pli wrote (or was cut).
    """
    evidence = re.search(
        r'<script type="application/pli-evidence" id="pli-evidence">([^<]*)<', page
    )
    content = re.search(
        r'<script type="application/pli-prescription" id="pli-prescription" '
        r'data-file-index="(\d{1,2})">([A-Za-z0-9+/=]*)<',
        page,
    )
    if evidence is None or content is None:
        raise ValueError("no pli proof in this page")
    return (
        decode_qr_payload(evidence.group(1)),
        base64.b64decode(content.group(2), validate=True),
        int(content.group(1)),
        without_qr(page),
    )


def page_version(page: str) -> str:
    """The layout version a page says it was written with (``PAGE_VERSIONS``), or ``ValueError``."""
    found = re.search(r'<meta name="pli-page" content="(\d{1,3})">', page)
    if found is None or found.group(1) not in PAGE_VERSIONS:
        raise ValueError("not a page layout this pli knows")
    return found.group(1)


def without_qr(page: str) -> str:
    """The page with its QR drawing left out (it depends on segno's version)."""
    start, end = page.find(_QR_START), page.find(_QR_END)
    if start < 0 or end < start:
        return page
    return page[: start + len(_QR_START)] + page[end:]
