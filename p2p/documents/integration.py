"""Why the practice software could not integrate a document: the error codes and their words.

A receipt ``not-integrated:NNN`` carries one of these three-digit codes, in the
style of the error codes French practice software and MSSanté clients return
when a received document cannot be filed (902: the patient is not known to the
software). The protocol accepts any three digits, so that a newer table can add
codes; a code this table does not know is shown with its number only. The API
accepts only the codes listed here, so that a sender can always read the reason.
"""

from __future__ import annotations

from typing import Final

#: code -> (French, English). French first: a practice reads these.
CODES: Final[dict[int, tuple[str, str]]] = {
    900: (
        "Intégration impossible (raison non précisée)",
        "Could not be integrated (no reason given)",
    ),
    901: ("Format du document non pris en charge", "Document format not supported"),
    902: ("Patient inconnu", "Unknown patient"),
    903: (
        "Identité du patient incohérente (INS, nom ou date de naissance)",
        "Patient identity does not match (INS, name or birth date)",
    ),
    904: ("Destinataire inconnu dans le logiciel", "Recipient unknown to the practice software"),
    905: ("Document déjà intégré (doublon)", "Document already integrated (duplicate)"),
    906: ("Document illisible ou endommagé", "Document unreadable or damaged"),
    907: ("Refusé par le professionnel destinataire", "Refused by the receiving professional"),
}


def label(code: int, lang: str = "fr") -> str:
    """The words for ``code`` in ``lang`` (``fr`` or ``en``), or the bare number."""
    words = CODES.get(code)
    if words is None:
        return f"code {code}"
    return words[1] if lang == "en" else words[0]


def listing() -> str:
    """Every known code and its French words, for an error message."""
    return "; ".join(f"{code} {words[0]}" for code, words in CODES.items())
