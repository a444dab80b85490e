"""Checks on what a person types about a document: patient, INS, RPPS, dates, text.

What lives here:

- validators for the command line, each returning the normalised value or raising
  ``BadInput`` with a sentence a doctor can act on: ``check_rpps``, ``check_ins``
  (the INS / NIR number and its key), ``check_birthdate``, ``check_sex``, ``check_text``;
- ``clinical_metadata``: every clinical field of a document at once (patient names,
  birth date, sex, INS, author and recipient RPPS, subject), checked against each
  other (an INS says the patient's sex and year of birth), as the envelope's
  ``metadata`` map. The keys are listed in ``METADATA_KEYS`` (and docs/api.md);

Received file names are made harmless in ``documents/filenames.py`` and written by
``storage/files.py`` (``write_atomic``).

The wire's rules (text length, RPPS form) come from ``protocol``, the INS key from
python-stdnum (``stdnum.fr.nir``), both imported inside the functions that need them:
``protocol`` pulls in the crypto libraries and the CLI's start-up time matters. What
must not: talk to the daemon, or print anything.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from p2p.errors import BadInput

_INS = re.compile(r"([0-9]{5})([0-9]{2}|2A|2B)([0-9]{6})([0-9]{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INS_EXAMPLE = "2 55 08 14 168 025 38"


def max_text() -> int:
    """The longest text field a card or a document's metadata may carry (the wire's rule)."""
    from protocol import limits

    return limits.MAX_TEXT_FIELD


#: The French name of each text field ``check_text`` checks, for the page's sentences.
FIELD_NAMES_FR = {
    "subject": "L'objet",
    "patient's name": "Le nom du patient",
    "patient's family name": "Le nom de famille du patient",
    "patient's given names": "Les prénoms du patient",
    "name": "Le nom",
    "profession": "La profession",
    "practice name": "Le nom du cabinet",
    "note": "La note",
    "drug name": "Le médicament",
    "dosage": "La posologie",
    "duration": "La durée",
    "quantity": "La quantité",
}


def check_text(value: str, what: str) -> str:
    """A short text field (name, subject ...): no control characters, not too long."""
    value = value.strip()
    field = FIELD_NAMES_FR.get(what, f"Le champ « {what} »")
    if len(value) > max_text():
        raise BadInput(
            f"The {what} is too long ({len(value)} characters; at most {max_text()}).",
            french=f"{field} est trop long ({len(value)} caractères ; {max_text()} au plus).",
        )
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise BadInput(
            f"The {what} contains control characters (tabs, line breaks ...): type it on one line.",
            french=f"{field} contient des caractères de contrôle (tabulations, retours à la "
            "ligne…) : écrivez-le sur une seule ligne.",
        )
    return value


def check_rpps(value: str, option: str = "--rpps") -> str:
    """An RPPS number (the national directory of health professionals): 11 digits."""
    from protocol import MalformedMessage, check_rpps  # the rule a card is checked with

    cleaned = re.sub(r"\s", "", value)
    try:
        check_rpps(cleaned or "-")  # the wire allows "no RPPS"; a typed one is never empty
    except MalformedMessage:
        raise BadInput(
            f"“{value}” is not an RPPS number: it has exactly 11 digits (it is printed on the "
            f"CPS card). Leave {option} out if you do not have one.",
            french=f"« {value} » n'est pas un numéro RPPS : il a exactement 11 chiffres (ils "
            "sont imprimés sur la carte CPS). Laissez le champ vide si vous n'en avez pas.",
        ) from None
    return cleaned


def ins_key(number: str) -> int:
    """The 2-digit key of a 13-character NIR: ``97 - (number mod 97)`` (python-stdnum).

    Corsica's departments 2A and 2B count as 19 and 18 for the computation.
    """
    from stdnum.fr import nir  # imported here: the CLI's start-up time matters

    return int(nir.calc_check_digits(number[:13].upper()))


def check_ins(value: str) -> str:
    """A patient's INS (NIR + key), spaces allowed; returns the 15 characters, upper case."""
    from stdnum.exceptions import InvalidChecksum, ValidationError
    from stdnum.fr import nir

    cleaned = re.sub(r"[\s.\-]", "", value).upper()
    malformed = BadInput(
        f"“{value}” is not an INS: it has 13 digits (2A or 2B for Corsica) followed by a "
        f"2-digit key, 15 characters in all, for example {_INS_EXAMPLE}. Copy it from the "
        "patient's Carte Vitale or your practice software.",
        french=f"« {value} » n'est pas un INS : il a 13 chiffres (2A ou 2B pour la Corse) "
        f"suivis d'une clé de 2 chiffres, 15 caractères en tout, par exemple {_INS_EXAMPLE}. "
        "Recopiez-le depuis la carte Vitale du patient ou votre logiciel métier.",
    )
    if _INS.fullmatch(cleaned) is None:
        raise malformed
    if cleaned[0] not in "12378":
        raise BadInput(
            f"“{value}” is not an INS: it starts with 1 or 2 (or 3, 7, 8 for a "
            "temporary number). Check it against the Carte Vitale.",
            french=f"« {value} » n'est pas un INS : il commence par 1 ou 2 (ou 3, 7, 8 pour "
            "un numéro provisoire). Vérifiez-le sur la carte Vitale.",
        )
    try:
        nir.validate(cleaned)
    except InvalidChecksum:
        raise BadInput(
            f"The INS “{value}” does not match its key (the last two digits): one of the digits "
            "was probably mistyped. Check it against the Carte Vitale.",
            french=f"L'INS « {value} » ne correspond pas à sa clé (les deux derniers chiffres) : "
            "un chiffre a sans doute été mal recopié. Vérifiez-le sur la carte Vitale.",
        ) from None
    except ValidationError:
        raise malformed from None
    return cleaned


def check_birthdate(value: str, *, today: dt.date | None = None) -> str:
    """A birth date written YYYY-MM-DD: a real calendar date, not in the future."""
    today = today or dt.date.today()
    text = value.strip()
    if not _DATE.fullmatch(text):
        raise BadInput(
            f"“{value}” is not a date written YYYY-MM-DD, for example 1984-05-23.",
            french=f"« {value} » n'est pas une date de naissance : écrivez-la JJ/MM/AAAA, par "
            "exemple 23/05/1984.",
        )
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(
            f"“{value}” is not a real date (check the month and the day).",
            french=f"« {_french_date(text)} » n'est pas une date qui existe (vérifiez le jour "
            "et le mois).",
        ) from None
    if date > today:
        raise BadInput(
            f"The birth date {text} is in the future: check the year.",
            french=f"La date de naissance {_french_date(text)} est dans le futur : vérifiez "
            "l'année.",
        )
    if date.year < 1880:
        raise BadInput(
            f"The birth date {text} is too far in the past: check the year.",
            french=f"La date de naissance {_french_date(text)} est trop ancienne : vérifiez "
            "l'année.",
        )
    return text


def _french_date(iso: str) -> str:
    """``1984-05-23`` written as the page shows dates: ``23/05/1984``."""
    return "/".join(reversed(iso.split("-")))


#: The clinical metadata keys pli writes into an envelope (all optional, all text).
METADATA_KEYS = (
    "subject",
    "patient_name",  # as shown: "DUPONT Jean", or free text when not split
    "patient_family_name",  # nom de naissance
    "patient_given_names",  # prénoms
    "patient_birthdate",  # YYYY-MM-DD
    "patient_sex",  # F, M or U (unknown / other)
    "patient_ins",  # 15 characters, key checked
    "author_rpps",  # 11 digits: who wrote it
    "recipient_rpps",  # 11 digits: who it is for
    "in_reply_to",  # the full id of the document this answers
    "prescription_id",  # a prescription's own id (also inside its JSON file)
)

_SEXES = {
    "F": "F",
    "FEMME": "F",
    "FEMALE": "F",
    "W": "F",
    "M": "M",
    "H": "M",
    "HOMME": "M",
    "MALE": "M",
    "U": "U",
    "I": "U",
    "X": "U",
    "O": "U",
    "INCONNU": "U",
    "UNKNOWN": "U",
}


def check_sex(value: str) -> str:
    """The patient's sex as on the INS: ``F``, ``M``, or ``U`` (unknown or other)."""
    found = _SEXES.get(value.strip().upper())
    if found is None:
        raise BadInput(
            f"“{value}” is not a sex pli knows: write F (female), M (male) or U (unknown/other).",
            french=f"« {value} » n'est pas un sexe que pli connaît : F (femme), M (homme) ou "
            "U (inconnu ou autre).",
        )
    return found


def split_patient_name(value: str) -> tuple[str, str] | None:
    """``"DUPONT, Jean Pierre"`` → ``("DUPONT", "Jean Pierre")``; None without a comma.

    pli never guesses which words are the family name: only a comma (or the explicit
    options) splits a name, as identity-vigilance rules want.
    """
    if "," not in value:
        return None
    family, _, given = value.partition(",")
    if "," in given:
        raise BadInput(
            f"“{value}” has more than one comma: write the patient's name as "
            "“FAMILY NAME, Given names”, e.g. “DUPONT, Jean Pierre”.",
            french=f"« {value} » contient plusieurs virgules : écrivez le nom du patient "
            "« NOM, Prénoms », par exemple « DUPONT, Jean Pierre ».",
        )
    return family.strip(), given.strip()


def _check_ins_traits(ins: str, sex: str, birthdate: str) -> None:
    """An INS (NIR) encodes the sex (first digit) and the year and month of birth."""
    if ins[0] in "12" and sex in ("F", "M") and {"1": "M", "2": "F"}[ins[0]] != sex:
        said = "a man" if ins[0] == "1" else "a woman"
        dit = "d'un homme" if ins[0] == "1" else "d'une femme"
        raise BadInput(
            f"The INS {ins} is {said}'s (it starts with {ins[0]}) but the sex given is {sex}. "
            "Check both against the Carte Vitale.",
            french=f"L'INS {ins} est celui {dit} (il commence par {ins[0]}) mais le sexe "
            f"indiqué est {sex}. Vérifiez les deux sur la carte Vitale.",
        )
    if not birthdate or ins[0] not in "12":
        return
    year, month = birthdate[2:4], birthdate[5:7]
    ins_month = ins[3:5]
    if ins[1:3] != year or ("01" <= ins_month <= "12" and ins_month != month):
        raise BadInput(
            f"The INS {ins} says the patient was born in {ins_month}/…{ins[1:3]}, which does "
            f"not match the birth date {birthdate}. Check both against the Carte Vitale "
            "(leave --patient-ins out if the card really says so).",
            french=f"L'INS {ins} dit que le patient est né en {ins_month}/…{ins[1:3]}, ce qui "
            f"ne correspond pas à la date de naissance {_french_date(birthdate)}. Vérifiez les "
            "deux sur la carte Vitale (laissez l'INS vide si la carte dit bien cela).",
        )


def _patient_names(
    patient_name: str | None, family_name: str | None, given_names: str | None
) -> dict[str, str]:
    """``patient_name`` and, when known, ``patient_family_name`` / ``patient_given_names``.

    ``"FAMILY, Given"`` fills both parts; they must then agree with the parts given
    on their own. Empty values are left for the caller to drop.
    """
    meta: dict[str, str] = {}
    family = check_text(family_name, "patient's family name") if family_name else ""
    given = check_text(given_names, "patient's given names") if given_names else ""
    if patient_name is not None:
        name = check_text(patient_name, "patient's name")
        split = split_patient_name(name)
        if split is not None:
            if (family and family != split[0]) or (given and given != split[1]):
                raise BadInput(
                    "--patient-name and --patient-family-name / --patient-given-names "
                    "disagree: give the name once.",
                    french="Le nom du patient et ses nom de famille / prénoms ne concordent "
                    "pas : donnez le nom une seule fois.",
                )
            family, given = split
        meta["patient_name"] = name if split is None else ""
    if family or given:
        meta["patient_family_name"] = family
        meta["patient_given_names"] = given
        meta["patient_name"] = meta.get("patient_name") or f"{family.upper()} {given}".strip()
    return meta


def clinical_metadata(
    *,
    subject: str | None = None,
    patient_name: str | None = None,
    family_name: str | None = None,
    given_names: str | None = None,
    birthdate: str | None = None,
    sex: str | None = None,
    ins: str | None = None,
    author_rpps: str | None = None,
    recipient_rpps: str | None = None,
    today: dt.date | None = None,
) -> dict[str, str]:
    """The envelope's clinical ``metadata``, each field checked; empty fields left out.

    ``patient_name`` written ``"FAMILY, Given"`` fills the family and given names
    too; without a comma it is kept as typed. Raises ``BadInput``.
    """
    meta: dict[str, str] = {}
    if subject is not None:
        meta["subject"] = check_text(subject, "subject")
    meta.update(_patient_names(patient_name, family_name, given_names))
    if birthdate is not None:
        meta["patient_birthdate"] = check_birthdate(birthdate, today=today)
    if sex is not None:
        meta["patient_sex"] = check_sex(sex)
    if ins is not None:
        meta["patient_ins"] = check_ins(ins)
        _check_ins_traits(
            meta["patient_ins"], meta.get("patient_sex", ""), meta.get("patient_birthdate", "")
        )
    if author_rpps:
        meta["author_rpps"] = check_rpps(author_rpps, "--author-rpps")
    if recipient_rpps:
        meta["recipient_rpps"] = check_rpps(recipient_rpps, "--recipient-rpps")
    return {key: value for key, value in meta.items() if value}
