"""The practice's profile fields as a person types them, checked: one rule for all.

``pli init``, ``pli profile set`` and the page's settings form give name,
profession, RPPS and practice; ``checked`` returns the ones given (None means
"unchanged"), cleaned, or raises ``BadInput`` with the sentence to show. What is
checked is what the signed card will carry (``protocol``'s card rules).
"""

from __future__ import annotations

from p2p.documents.clinical import check_rpps, check_text
from p2p.errors import BadInput

FIELDS = ("name", "profession", "rpps", "practice")


def checked(
    name: str | None = None,
    profession: str | None = None,
    rpps: str | None = None,
    practice: str | None = None,
    *,
    rpps_option: str = "--rpps",
) -> dict[str, str]:
    """The fields given, cleaned; ``BadInput`` for an empty name, a bad RPPS, a long text."""
    fields: dict[str, str] = {}
    if name is not None:
        fields["name"] = check_text(name, "name")
        if not fields["name"]:
            raise BadInput(
                'Your name cannot be empty: colleagues see it ("Dr Marie Curie").',
                french="Votre nom ne peut pas être vide : vos confrères le voient "
                "(« Dr Marie Curie »).",
            )
    if profession is not None:
        fields["profession"] = check_text(profession, "profession")
    if rpps is not None:
        fields["rpps"] = check_rpps(rpps, rpps_option) if rpps.strip() else ""
    if practice is not None:
        fields["practice"] = check_text(practice, "practice name")
    return fields
