"""Writing a prescription, the same way from ``pli prescribe`` and from the page's form.

What lives here: ``check_item`` (one line of the ordonnance, its five fields
checked, each mistake said in English for the CLI and in French for the page) and
``parse_item`` (the same line typed as ``pli prescribe --item`` takes it:
``"drug; dosage; duration[; quantity[; renewals]]"``),
``prescriber`` (this practice as its signed card names it, with its RPPS checked)
and ``order`` (the prescription built by ``prescription.build`` from the checked
clinical metadata, and the envelope's metadata that goes with it: subject, author
RPPS, prescription id). The page has one field for each of a line's five.

What must not: talk to the daemon (the caller gives the identity it read), or
import ``protocol``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from p2p.documents import prescription
from p2p.documents.clinical import check_rpps, check_text
from p2p.errors import BadInput

ITEM_HELP_FR = (
    "Écrivez pour chaque ligne le médicament, la posologie et la durée, par exemple "
    "« Amoxicilline 1 g », « 1 comprimé matin et soir », « 7 jours »."
)


def check_item(
    drug: str, dosage: str, duration: str, quantity: str = "", renewals: str = ""
) -> dict[str, Any]:
    """One line of the prescription from its five fields; ``BadInput`` in both languages."""
    renewals_text = re.sub(r"(?i)\s*(fois|x)\s*", "", renewals.strip())
    if not re.fullmatch(r"\d{0,2}", renewals_text):
        raise BadInput(
            f"“{renewals}” is not a number of renewals: write a number from 0 to "
            f"{prescription.MAX_RENEWALS}.",
            french=f"« {renewals} » n'est pas un nombre de renouvellements : écrivez un nombre "
            f"de 0 à {prescription.MAX_RENEWALS}.",
        )
    count = int(renewals_text or 0)
    if count > prescription.MAX_RENEWALS:
        raise BadInput(
            f"{count} renewals is more than a prescription allows ({prescription.MAX_RENEWALS}).",
            french=f"{count} renouvellements, c'est plus qu'une ordonnance ne permet "
            f"({prescription.MAX_RENEWALS} au plus).",
        )
    return {
        "drug": _needed(drug, "drug name", "le médicament"),
        "dosage": _needed(dosage, "dosage", "la posologie"),
        "duration": _needed(duration, "duration", "la durée"),
        "quantity": check_text(quantity, "quantity"),
        "renewals": count,
    }


def parse_item(text: str) -> dict[str, Any]:
    """One ``--item``: ``drug; dosage; duration[; quantity[; renewals]]``. Raises ``BadInput``."""
    parts = [part.strip() for part in text.split(";")]
    if len(parts) < 3 or len(parts) > 5:
        raise BadInput(f"The item “{text}” has {len(parts)} part(s). {prescription.ITEM_HELP}")
    parts += [""] * (5 - len(parts))
    try:
        return check_item(*parts)
    except BadInput as exc:
        raise BadInput(f"{exc.message} (in the item “{text}”)", french=exc.french) from None


def _needed(value: str, what: str, french: str) -> str:
    value = check_text(value, what)
    if not value:
        raise BadInput(
            f"The {what} is missing. {prescription.ITEM_HELP}",
            french=f"Il manque {french}. {ITEM_HELP_FR}",
        )
    return value


def prescriber(identity: Mapping[str, Any], rpps: str | None = None) -> dict[str, str]:
    """This practice as the prescriber: its card (``GET /v1/identity``), ``rpps`` if given."""
    found = {key: str(identity.get(key) or "") for key in ("name", "profession", "practice")}
    found["fingerprint"] = str(identity.get("fingerprint", ""))
    given = (rpps or "").strip() or str(identity.get("rpps") or "")
    found["rpps"] = check_rpps(given) if given else ""
    return found


def patient_record(metadata: Mapping[str, str]) -> dict[str, str]:
    """The patient as the prescription names them, from the checked clinical metadata."""
    return {
        "name": metadata.get("patient_name", ""),
        "family_name": metadata.get("patient_family_name", ""),
        "given_names": metadata.get("patient_given_names", ""),
        "birthdate": metadata.get("patient_birthdate", ""),
        "sex": metadata.get("patient_sex", ""),
        "ins": metadata.get("patient_ins", ""),
    }


def check_patient(metadata: Mapping[str, str]) -> None:
    """A prescription names its patient: name and birth date (``BadInput`` otherwise)."""
    if not metadata.get("patient_name"):
        raise BadInput(
            "Give the patient's name (FAMILY, Given names).",
            french="Indiquez le nom du patient (NOM, Prénoms).",
        )
    if not metadata.get("patient_birthdate"):
        raise BadInput(
            "Give the patient's birth date.", french="Indiquez la date de naissance du patient."
        )


def order(
    metadata: Mapping[str, str],
    items: Sequence[Mapping[str, Any]],
    by: Mapping[str, str],
    *,
    note: str = "",
    today: dt.date | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The prescription for the patient of ``metadata`` (checked by
    ``clinical.clinical_metadata``), and the envelope's metadata to send it with."""
    check_patient(metadata)
    try:
        built = prescription.build(
            patient=patient_record(metadata),
            items=items,
            prescriber=by,
            note=check_text(note, "note"),
            today=today,
        )
    except BadInput as exc:
        raise BadInput(exc.message, french=_build_french(exc.message, len(items))) from None
    day = dt.date.fromisoformat(built["date"]).strftime("%d/%m/%Y")
    envelope = {
        **metadata,
        "subject": f"Ordonnance du {day}",
        "author_rpps": by["rpps"],
        "prescription_id": built["id"],
    }
    return built, envelope


def _build_french(message: str, items: int) -> str:
    """``prescription.build``'s refusals in French."""
    if not items:
        return f"Une ordonnance compte au moins une ligne. {ITEM_HELP_FR}"
    if items > prescription.MAX_ITEMS:
        return f"{prescription.MAX_ITEMS} lignes au plus par ordonnance : faites-en deux."
    if "RPPS" in message:
        return (
            "Une ordonnance porte le numéro RPPS du prescripteur, et votre profil n'en a "
            "pas : indiquez-le (les 11 chiffres de votre carte CPS)."
        )
    return message
