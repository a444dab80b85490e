"""What was dropped in the outbox folder, as a checked request to send — or why not.

A document comes with a sidecar ``<name>.json`` (``Sidecar``: the colleague, the
kind, the subject, the patient), or describes itself: an HPRIM-headed ``.hpr`` /
``.txt`` (the patient in lines 2–8, the recipient in line 12) or an IHE XDM zip
(``METADATA.XML``). A sidecar's fields win over what the file says. Every field is
checked as ``pli send`` checks it (``clinical.clinical_metadata``); a mistake is
``Refused``, whose French sentence (then pli's English one) goes to
``errors/<name>.error.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from p2p.documents import hprim
from p2p.documents.clinical import clinical_metadata
from p2p.errors import BadInput, PliError

MAX_SIDECAR = 64 * 1024
SIDECAR = ".json"
HPRIM_SUFFIXES = (".hpr", ".hprim", ".txt")
XDM_SUFFIX = ".zip"


class Refused(Exception):
    """Why a dropped document is not sent: French first, then what to do, then pli's words."""

    def __init__(self, french: str, advice: str, detail: str = "") -> None:
        super().__init__(french)
        self.french = french
        self.advice = advice
        self.detail = detail

    def text(self, name: str) -> str:
        lines = [
            f"pli n'a pas envoyé « {name} » : {self.french}.",
            f"Que faire : {self.advice}",
            "",
            f"pli did not send “{name}”: {self.detail or self.french}",
        ]
        return "\n".join(lines) + "\n"


def unknown_colleague(text: str, exc: PliError) -> Refused:
    return Refused(
        f"destinataire inconnu (« {text} » n'est pas un confrère appairé)",
        "corrigez « colleague » dans la fiche .json (nom, empreinte ou RPPS du confrère, "
        "comme `pli peers` les montre) ou appairez ce confrère, puis déposez à nouveau le fichier.",
        exc.message,
    )


def unreadable(exc: OSError) -> Refused:
    return Refused(
        "fichier illisible",
        "vérifiez que pli peut lire le fichier (droits) et qu'il n'est pas vide ou abîmé, "
        "puis déposez-le à nouveau.",
        f"the file could not be read ({exc.strerror or exc}).",
    )


def not_sent(exc: PliError) -> Refused:
    french = "INS invalide" if "INS" in exc.message else "document refusé"
    return Refused(
        french,
        "corrigez la fiche .json ou le fichier (l'explication en anglais est ci-dessous) "
        "et déposez-le à nouveau.",
        exc.message,
    )


class PatientFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: str | None = None  # "FAMILY, Given names"
    family_name: str | None = None
    given_names: str | None = None
    birthdate: str | None = None  # YYYY-MM-DD
    sex: str | None = None  # F, M or U
    ins: str | None = None


class Sidecar(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``<document>.json``: what the practice software says about the document beside it."""

    colleague: str | None = None  # a peer's name, fingerprint, peer id or RPPS
    kind: str | None = None  # letter (default), prescription, report, file
    subject: str | None = None
    patient: PatientFields = PatientFields()
    author_rpps: str | None = None
    recipient_rpps: str | None = None


def read_sidecar(path: Path) -> Sidecar:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SIDECAR + 1)
    except OSError as exc:
        raise unreadable(exc) from None
    if len(data) > MAX_SIDECAR:
        raise Refused(
            "fiche .json trop longue", "une fiche tient en quelques lignes.", "sidecar over 64 KiB"
        )
    try:
        return msgspec.json.decode(data, type=Sidecar)
    except msgspec.DecodeError as exc:
        raise Refused(
            "fiche .json incorrecte",
            'écrivez un objet JSON, par exemple {"colleague": "Dr Durand", "subject": "Avis", '
            '"patient": {"name": "DUPONT, Marie", "birthdate": "1955-08-14", "ins": '
            '"255081416802538"}}; les champs sont décrits dans docs/folders.md.',
            f"the sidecar {path.name} is not what pli reads: {exc}.",
        ) from None


@dataclass(frozen=True)
class Request:
    colleague: str  # what names the peer: a name, fingerprint, peer id or RPPS
    kind: str
    metadata: dict[str, str]  # checked, as the envelope carries it
    xdm: bool  # an XDM zip: its documents are sent, not the zip


@dataclass(frozen=True)
class Described:
    """What the dropped file says about itself (HPRIM header, XDM metadata)."""

    colleague: str = ""
    patient: PatientFields = field(default_factory=PatientFields)
    subject: str = ""
    author_rpps: str = ""
    recipient_rpps: str = ""
    xdm: bool = False


def self_describing(path: Path, head: bytes) -> bool:
    """A file that needs no sidecar: an XDM zip, or an HPRIM-headed text."""
    suffix = path.suffix.lower()
    if suffix == XDM_SUFFIX:
        return True
    return suffix in (".hpr", ".hprim") or (suffix == ".txt" and hprim.looks_like_hprim(head))


def from_hprim(data: bytes) -> Described:
    try:
        header = hprim.parse(data)
    except BadInput as exc:
        raise Refused(
            "en-tête HPRIM incorrect",
            "vérifiez les 12 lignes de l'en-tête (docs/folders.md) ou ajoutez une fiche .json.",
            exc.message,
        ) from None
    return Described(
        colleague=header.recipient_rpps or header.recipient,
        patient=PatientFields(
            family_name=header.family_name or None,
            given_names=header.given_names or None,
            birthdate=header.birthdate or None,
            ins=header.ins or None,
        ),
        subject=header.title,
        recipient_rpps=header.recipient_rpps,
    )


def build(
    described: Described, sidecar: Sidecar | None, *, default_author_rpps: str = ""
) -> Request:
    """The request: the sidecar's fields, else the file's own; every field checked."""
    side = sidecar or Sidecar()
    colleague = (side.colleague or described.colleague).strip()
    if not colleague:
        raise Refused(
            "aucun destinataire",
            "ajoutez à côté du fichier une fiche <nom du fichier>.json avec "
            '{"colleague": "nom du confrère"} (docs/folders.md).',
            "no colleague is named: add a sidecar with “colleague”.",
        )
    patient = side.patient if side.patient != PatientFields() else described.patient
    kind = side.kind or "letter"
    from protocol import KINDS

    if kind not in KINDS:
        raise Refused(
            f"type de document « {kind} » inconnu",
            f"« kind » vaut l'un de {', '.join(KINDS)}.",
            f"unknown kind “{kind}”.",
        )
    try:
        metadata = clinical_metadata(
            subject=side.subject or described.subject or None,
            patient_name=patient.name,
            family_name=patient.family_name,
            given_names=patient.given_names,
            birthdate=patient.birthdate,
            sex=patient.sex,
            ins=patient.ins,
            author_rpps=side.author_rpps or described.author_rpps or default_author_rpps,
            recipient_rpps=side.recipient_rpps or described.recipient_rpps or None,
        )
    except BadInput as exc:
        raise not_sent(exc) from None
    return Request(colleague, kind, metadata, described.xdm)
