"""A prescription written from the page's form or ``pli prescribe``: the same checks and
words (English for the CLI, French for the page), its draft page, its printed dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from p2p.documents import prescribing, prescription
from p2p.errors import BadInput

from .clirun import no_ambient_home  # noqa: F401 - the fixture is autouse
from .test_cli_documents import TAMPERED, page, verify  # noqa: F401 - page: the fixture

IDENTITY = {"name": "Dr Alice Martin", "profession": "Médecin généraliste", "fingerprint": "ab"}
PATIENT = {"patient_name": "DUPONT Jeanne", "patient_birthdate": "1955-08-14"}


def refusal(call: object, *args: str) -> BadInput:
    with pytest.raises(BadInput) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize(
    ("fields", "english", "french"),
    [
        (("", "1 cp", "7 jours"), "The drug name is missing.", "Il manque le médicament."),
        (("Amoxicilline", "", "7 jours"), "The dosage is missing.", "Il manque la posologie."),
        (("Amoxicilline", "1 cp", ""), "The duration is missing.", "Il manque la durée."),
        (
            ("Amoxicilline", "1 cp", "7 jours", "", "deux"),
            "is not a number of renewals",
            "n'est pas un nombre de renouvellements",
        ),
        (
            ("Amoxicilline", "1 cp", "7 jours", "", "13"),
            "13 renewals is more than a prescription allows (12)",
            "13 renouvellements, c'est plus qu'une ordonnance ne permet (12 au plus).",
        ),
        (
            ("Amoxicilline\t1 g", "1 cp", "7 jours"),
            "contains control characters",
            "Le médicament contient des caractères de contrôle",
        ),
    ],
)
def test_a_line_is_checked_in_both_languages(
    fields: tuple[str, ...], english: str, french: str
) -> None:
    error = refusal(prescribing.check_item, *fields)
    assert english in error.message
    assert french in (error.french or "")


def test_a_line_and_the_cli_item_are_the_same() -> None:
    typed = prescribing.parse_item("Bisoprolol 2,5 mg; 1 comprimé le matin; 3 mois; 1 b; 2 fois")
    assert typed == prescribing.check_item(
        "Bisoprolol 2,5 mg", "1 comprimé le matin", "3 mois", "1 b", "2 fois"
    )
    assert typed["renewals"] == 2
    error = refusal(prescribing.parse_item, "Amoxicilline; 1 cp; 7 jours; 1 boîte; deux")
    assert "(in the item “Amoxicilline; 1 cp; 7 jours; 1 boîte; deux”)" in error.message


def test_an_order_names_its_patient_prescriber_and_date_in_french() -> None:
    by = prescribing.prescriber(IDENTITY, "1010 1234 567")
    assert by["rpps"] == "10101234567"
    line = prescribing.check_item("Amoxicilline 1 g", "1 cp matin et soir", "7 jours")
    order, envelope = prescribing.order(PATIENT, [line], by, today=dt.date(2027, 1, 2))
    assert order["patient"]["birthdate"] == "1955-08-14"  # the file keeps ISO dates
    assert order["prescriber"]["fingerprint"] == "ab"
    assert envelope == {
        **PATIENT,
        "subject": "Ordonnance du 02/01/2027",
        "author_rpps": "10101234567",
        "prescription_id": order["id"],
    }
    missing = refusal(lambda: prescribing.order({}, [line], by))
    assert missing.french == "Indiquez le nom du patient (NOM, Prénoms)."
    unborn = refusal(lambda: prescribing.order({"patient_name": "X"}, [line], by))
    assert unborn.french == "Indiquez la date de naissance du patient."
    no_rpps = refusal(lambda: prescribing.order(PATIENT, [line], prescribing.prescriber(IDENTITY)))
    assert "RPPS" in no_rpps.message
    assert "votre profil n'en a pas" in (no_rpps.french or "")
    empty = refusal(lambda: prescribing.order(PATIENT, [], by))
    assert (empty.french or "").startswith("Une ordonnance compte au moins une ligne.")
    bad = refusal(lambda: prescribing.prescriber(IDENTITY, "1234"))
    assert "n'est pas un numéro RPPS" in (bad.french or "")


def test_the_draft_page_is_the_printed_one_without_a_proof() -> None:
    by = prescribing.prescriber(IDENTITY, "10101234567")
    line = prescribing.check_item("Amoxicilline 1 g", "1 cp matin et soir", "7 jours", "", "1")
    order, _ = prescribing.order(PATIENT, [line], by, note="<b>au repas</b>")
    draft = prescription.render_draft(prescription.to_bytes(order))
    assert "Aperçu avant envoi : cette ordonnance n'est pas encore signée." in draft
    assert 'aria-label="Emplacement du QR code de signature"' in draft
    assert "né(e) le 14/08/1955" in draft
    assert "à renouveler 1 fois" in draft
    assert "&lt;b&gt;au repas&lt;/b&gt;" in draft  # what was typed is shown, never run
    assert '<script type="application/pli-evidence" id="pli-evidence"><' in draft  # no proof
    with pytest.raises(ValueError, match="not a pli proof"):
        prescription.read_page(draft)


def test_pages_of_both_layouts_verify_and_an_unknown_layout_is_refused(
    page: Path,  # noqa: F811 - the fixture
) -> None:
    text = page.read_text(encoding="utf-8")
    assert 'content="2"' in text
    assert "né(e) le 14/08/1955" in text  # dates as a French reader reads them
    wire, content, index, _shown = prescription.read_page(text)
    document_id = text.split("document pli <code>")[1].split("<")[0]
    fingerprint = text.split("l'empreinte est<br><code>")[1].split("<")[0]
    older = prescription.render_html(
        content,
        wire,
        document_id=document_id,
        signer_fingerprint=fingerprint,
        file_index=index,
        version="1",
    )
    assert "né(e) le 1955-08-14" in older  # as pli printed it before
    page.write_text(older, encoding="utf-8")
    assert verify(page).exit_code == 0
    page.write_text(text.replace('content="2"', 'content="9"'), encoding="utf-8")
    refused = verify(page)
    assert refused.exit_code == 4
    assert TAMPERED in refused.stderr
