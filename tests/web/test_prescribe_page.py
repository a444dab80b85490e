"""The prescription form over HTTP, between two real daemons: what it sends, what its
printable pages may do (their own CSP: style, no script, framed by the page only), and
that a preview belongs to the session that made it."""

from __future__ import annotations

import re

from p2p.cli.practice import wait_until
from p2p.documents import prescription
from p2p.web.prescribe import PRINT_CSP
from tests.web.conftest import Practice
from tests.web.files import pdf
from tests.web.test_documents import compose
from tests.web.visitor import Visitor

RPPS = "10101234567"


def fields(visitor: Visitor, to: Practice, **more: str) -> dict[str, str]:
    return {
        "csrf": visitor.csrf("/prescribe"),
        "recipient": to.peer_id,
        "patient_name": "MARTIN, Hélène",
        "patient_birthdate": "14/07/1962",  # typed the French way: taken as well
        "rpps": RPPS,
        "drug": '<script>alert("x")</script>Amoxicilline 1 g',
        "dosage": "1 comprimé matin et soir",
        "duration": "7 jours",
        "quantity": "1 boîte",
        "renewals": "1",
        "note": "Au cours des repas.",
        **more,
    }


def test_a_prescription_from_the_form_reaches_the_colleague(
    practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = practices
    doctor = gp.visitor()
    form = doctor.get("/prescribe")
    assert 'data-testid="prescribe-form"' in form.text
    assert 'data-testid="rpps"' in form.text  # the profile has no RPPS: asked here
    assert doctor.get("/prescribe/draft").status == 404  # nothing previewed yet

    shown = doctor.post_form("/prescribe", {**fields(doctor, cardio), "action": "preview"})
    assert shown.status == 200
    assert 'data-testid="rx-draft"' in shown.text
    draft = doctor.get("/prescribe/draft")
    assert draft.headers["content-security-policy"] == PRINT_CSP
    assert "script-src" not in PRINT_CSP  # default-src 'none': no script runs
    assert draft.headers["x-frame-options"] == "SAMEORIGIN"
    assert draft.headers["x-content-type-options"] == "nosniff"
    assert "&lt;script&gt;alert" in draft.text
    assert "<script>alert" not in draft.text
    assert "né(e) le 14/07/1962" in draft.text
    assert cardio.visitor().get("/prescribe/draft").status == 404  # another session's
    assert gp.visitor().get("/prescribe/draft").status == 404

    sent = doctor.post_form("/prescribe", {**fields(doctor, cardio), "action": "send"})
    assert sent.status == 303, sent.text
    found = re.fullmatch(r"/documents/([0-9a-f]{32,})", sent.headers["location"])
    assert found is not None
    doc = found.group(1)
    wait_until(lambda: doc in cardio.inbox_ids(), 30)
    received = cardio.daemon.client.get(f"/v1/documents/{doc}")
    assert received["kind"] == "prescription"
    assert received["metadata"]["patient_birthdate"] == "1962-07-14"
    assert received["metadata"]["author_rpps"] == RPPS
    assert re.fullmatch(r"Ordonnance du \d\d/\d\d/\d{4}", received["metadata"]["subject"])
    (entry,) = received["files"]
    assert entry["type"] == prescription.MEDIA_TYPE
    printable = cardio.visitor().get(f"/documents/{doc}/ordonnance")
    assert printable.headers["content-security-policy"] == PRINT_CSP
    assert "<svg" in printable.text
    assert "à renouveler 1 fois" in printable.text
    download = cardio.visitor().get(f"/documents/{doc}/ordonnance?download=1")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.body == printable.body


def test_mistakes_are_said_and_a_letter_has_no_printable_page(
    practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = practices
    doctor = gp.visitor()
    wrong = doctor.post_form(
        "/prescribe",
        {**fields(doctor, cardio), "renewals": "20", "patient_ins": "1234", "action": "preview"},
    )
    assert wrong.status == 400
    assert "Ligne 1 : 20 renouvellements, c&#39;est plus qu&#39;une ordonnance" in wrong.text
    assert "« 1234 » n&#39;est pas un INS" in wrong.text
    assert 'data-testid="rx-draft"' not in wrong.text
    added = doctor.post_form("/prescribe", {**fields(doctor, cardio), "action": "add"})
    assert added.text.count('data-testid="rx-item"') == 2  # the line kept, one more
    forged = doctor.post_form("/prescribe", {**fields(doctor, cardio), "csrf": "x"})
    assert forged.status == 403
    letter = compose(
        doctor, cardio, {"subject": "Courrier"}, [("a.pdf", pdf("A"), "application/pdf")]
    )
    assert doctor.get(f"/documents/{letter}/ordonnance").status == 404
    assert 'data-testid="ordonnance"' not in doctor.get(f"/documents/{letter}").text
