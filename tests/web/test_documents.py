"""The page's inbox, documents and compose form, between two real daemons.

A document is written on the GP's page (a multipart form, its files streamed to
the daemon), sealed, delivered and shown on the cardiologist's page; what a
sender chose (file names, types, subjects) is shown inert and never rendered.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from p2p.cli.client import UnixHTTPConnection
from p2p.cli.practice import PracticeProcess, wait_until
from tests.web.conftest import Practice, delivered
from tests.web.files import HOSTILE_HTML, HOSTILE_NAME, HOSTILE_SVG, pdf, png
from tests.web.visitor import Visitor

LETTER = {
    "kind": "letter",
    "subject": "Avis cardiologique",
    "patient_name": "DUPONT, Jean",
    "patient_birthdate": "1984-05-23",
}


def compose(
    visitor: Visitor, to: Practice, fields: dict[str, str], files: list[tuple[str, bytes, str]]
) -> str:
    """Send from ``visitor``'s page; the new document's id."""
    token = visitor.csrf("/compose")
    peer = to.daemon.identity()["peer_id"]
    answer = visitor.post_multipart(f"/compose?csrf={token}", {"recipient": peer, **fields}, files)
    assert answer.status == 303, answer.text
    found = re.fullmatch(r"/documents/([0-9a-f]{32,})", answer.headers["location"])
    assert found is not None
    return found.group(1)


def test_a_letter_written_on_the_page_reaches_the_colleague(
    practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = practices
    page = gp.visitor()
    form = page.get("/compose").text
    assert 'data-testid="compose-form"' in form
    assert "Dr Durand" in form
    doc = compose(page, cardio, LETTER, [("courrier.pdf", pdf("Courrier"), "application/pdf")])
    wait_until(lambda: doc in cardio.inbox_ids(), 30)
    delivered(gp, doc)
    assert list((gp.daemon.home / "uploads").iterdir()) == []  # the upload went with it
    sent = page.get(f"/documents/{doc}").text
    assert 'data-testid="receipt"' in sent
    assert "Dr Durand : Remis" in sent
    assert "Remis le " in sent
    inbox = cardio.visitor().get("/").text
    row = inbox.split(f'data-id="{doc}"')[1].split("</tr>")[0]
    assert f'data-id="{doc}" class="unread"' in inbox
    for shown in ("Dr Martin", "Avis cardiologique", "DUPONT Jean", "23/05/1984", "Signé"):
        assert shown in row


def test_bad_patient_fields_get_the_cli_sentence_and_no_file_is_read(
    practices: tuple[Practice, Practice],
) -> None:
    gp, cardio = practices
    page = gp.visitor()
    token = page.csrf("/compose")
    peer = cardio.daemon.identity()["peer_id"]
    fields = {**LETTER, "recipient": peer, "patient_birthdate": "1984-13-40"}
    answer = page.post_multipart(
        f"/compose?csrf={token}", fields, [("a.txt", b"x" * 100_000, "text/plain")]
    )
    assert answer.status == 400
    french = "« 40/13/1984 » n'est pas une date qui existe (vérifiez le jour et le mois)."
    assert french in html.unescape(answer.text)
    assert 'value="DUPONT, Jean"' in answer.text  # the form comes back as typed
    assert list((gp.daemon.home / "uploads").iterdir()) == []
    as_json = page.post_multipart(
        f"/compose?csrf={token}", {**fields, "recipient": ""}, [], Accept="application/json"
    )
    problems = json.loads(as_json.body)["problems"]
    assert problems == ["Choisissez le destinataire.", french]
    page.post_form("/lang", {"csrf": token, "lang": "en", "back": "/compose"})
    in_english = page.post_multipart(
        f"/compose?csrf={token}", {**fields, "recipient": ""}, [], Accept="application/json"
    )
    assert json.loads(in_english.body)["problems"] == [
        "Choose the recipient.",
        "“1984-13-40” is not a real date (check the month and the day).",  # the CLI's words
    ]
    for typed, said in (
        ("23/05/2984", "La date de naissance 23/05/2984 est dans le futur : vérifiez l'année."),
        ("DUPONT, Jean, Paul", "contient plusieurs virgules"),
    ):
        page.post_form("/lang", {"csrf": token, "lang": "fr", "back": "/compose"})
        field = "patient_name" if "," in typed else "patient_birthdate"
        again = page.post_multipart(
            f"/compose?csrf={token}", {**fields, field: typed}, [], Accept="application/json"
        )
        assert said in json.loads(again.body)["problems"][0], typed


def test_hostile_files_and_names_are_shown_inert(practices: tuple[Practice, Practice]) -> None:
    gp, cardio = practices
    files = [
        (HOSTILE_NAME, HOSTILE_HTML, "text/html"),
        ("dessin.svg", HOSTILE_SVG, "image/svg+xml"),
        ("faux.pdf", HOSTILE_HTML, "application/pdf"),
        ("vrai.pdf", pdf("Vrai"), "application/pdf"),
        ("photo.png", png(), "image/png"),
    ]
    subject = '<script>alert("s")</script>\u202eRe'
    doc = compose(gp.visitor(), cardio, {"kind": "file", "subject": subject}, files)
    wait_until(lambda: doc in cardio.inbox_ids(), 30)
    page = cardio.visitor()
    shown = page.get(f"/documents/{doc}").text
    assert "<script>alert" not in shown
    assert "<img src=x" not in shown
    assert "\u202e" not in shown
    assert "&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in shown  # as text
    assert 'data-testid="preview" class="preview-text"' in shown
    base = f"/documents/{doc}/files"
    for index in (0, 1, 2):  # HTML, SVG, HTML posing as a PDF: downloads, never pages
        answer = page.get(f"{base}/{index}/view")
        assert answer.status == 200
        assert answer.body in (HOSTILE_HTML, HOSTILE_SVG)
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["content-security-policy"].startswith("sandbox")
        assert answer.headers["x-content-type-options"] == "nosniff"
    real = page.get(f"{base}/3/view")
    assert real.headers["content-type"] == "application/pdf"
    assert real.headers["content-disposition"].startswith("inline;")
    assert "frame-ancestors 'self'" in real.headers["content-security-policy"]
    image = page.get(f"{base}/4/view")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-security-policy"].startswith("sandbox")
    download = page.get(f"{base}/0/download")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "\u202e" not in download.headers["content-disposition"]
    assert page.get(f"{base}/9/view").status == 404


def test_the_inbox_searches_filters_and_marks_read(practices: tuple[Practice, Practice]) -> None:
    gp, cardio = practices
    page = gp.visitor()
    older = compose(
        page,
        cardio,
        {
            "kind": "report",
            "subject": "Bilan",
            "patient_name": "MARTIN, Hélène",
            "patient_birthdate": "1950-02-01",
        },
        [("bilan.txt", b"Tension 12/8", "text/plain")],
    )
    time.sleep(1.1)  # received_at has a one-second resolution
    newer = compose(
        page,
        cardio,
        {
            "kind": "letter",
            "subject": "Suivi",
            "patient_name": "LEROY, Paul",
            "patient_birthdate": "1962-07-14",
        },
        [("suivi.txt", b"RAS", "text/plain")],
    )
    wait_until(lambda: {older, newer} <= set(cardio.inbox_ids()), 30)
    reader = cardio.visitor()
    listing = reader.get("/").text
    assert listing.index(newer) < listing.index(older)  # new first
    assert older in reader.get("/?q=helene").text
    assert newer not in reader.get("/?q=helene").text
    assert newer in reader.get("/?q=14/07/1962").text
    by_kind = reader.get("/?kind=report").text
    assert older in by_kind
    assert newer not in by_kind
    assert older not in reader.get("/?since=2999-01-01").text
    assert "MARTIN Hélène" in reader.get(f"/documents/{older}").text
    token = reader.csrf(f"/documents/{older}")
    marked = reader.post_form(f"/documents/{older}/read", {"csrf": token})
    assert marked.status == 303
    assert f'data-id="{older}" class="read"' in reader.get("/").text
    reply = reader.get(f"/compose?reply_to={older}").text
    assert 'value="MARTIN, Hélène"' in reply
    assert 'value="Re: Bilan"' in reply
    assert f'value="{older}"' in reply  # in_reply_to
    assert f'value="{gp.daemon.identity()["peer_id"]}" selected' in reply


def test_the_api_streams_events_and_takes_bytes(
    practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = practices
    events = UnixHTTPConnection(cardio.daemon.home / "api.sock", timeout=30)
    events.request("GET", "/v1/events")
    stream = events.getresponse()
    assert stream.headers["Content-Type"] == "text/event-stream"
    upload = UnixHTTPConnection(gp.daemon.home / "api.sock")
    upload.request(
        "POST", "/v1/uploads", body=iter([b"%PDF-1.4 ", b"streamed"]), encode_chunked=True
    )
    answer = json.loads(upload.getresponse().read())
    assert answer["size"] == 17
    body = {
        "to": [cardio.daemon.identity()["peer_id"]],
        "kind": "file",
        "files": [{"upload": answer["upload"], "name": "flux.pdf"}],
    }
    doc = gp.daemon.client.post("/v1/documents", body)["id"]
    lines: list[str] = []
    while not any(doc in line for line in lines):
        lines.append(stream.readline().decode())
    assert "event: document-received\n" in lines
    data = json.loads(next(line for line in lines if doc in line).removeprefix("data: "))
    assert data == {
        "type": "document-received",
        "id": doc,
        "from": gp.daemon.identity()["peer_id"],
        "size": data["size"],
    }
    events.close()


def test_a_waiting_document_can_be_retried_or_cancelled(
    practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, _ = practices
    away = PracticeProcess(tmp_path / "away", "Dr Absent").start()
    gp.daemon.trust(away)
    away.trust(gp.daemon)
    away.stop()  # paired, then gone: what the GP sends waits in the outbox
    page = gp.visitor()
    away_practice = Practice(away)
    first = compose(page, away_practice, {"subject": "En attente"}, [("a.txt", b"a", "text/plain")])
    second = compose(page, away_practice, {"subject": "Annulé"}, [("b.txt", b"b", "text/plain")])
    peer = away_practice.peer_id
    listing = page.get("/outbox").text
    assert f'action="/outbox/{first}/{peer}/retry"' in listing
    token = page.csrf("/outbox")
    assert page.post_form(f"/outbox/{first}/{peer}/retry", {"csrf": token}).status == 303
    assert "Nouvel essai lancé." in page.get("/outbox").text
    assert page.post_form(f"/outbox/{second}/{peer}/cancel", {"csrf": token}).status == 303
    assert gp.daemon.outbox_state(second) == "cancelled"
    assert gp.daemon.outbox_state(first) == "queued"
    again = page.post_form(f"/outbox/{second}/{peer}/cancel", {"csrf": token})
    assert again.status == 400
    assert "Cet envoi est déjà annulé." in again.text  # the page speaks French
    assert "Only a document" not in again.text
    row = page.get("/outbox").text.split(f'data-id="{second}"')[1].split("</tr>")[0]
    assert "Annulé" in row
    assert "retry" not in row
    unknown = page.post_form(f"/outbox/{'0' * 32}/{peer}/retry", {"csrf": token})
    assert unknown.status == 404
    assert "Aucun document envoyé à ce destinataire n'a cet identifiant." in html.unescape(
        unknown.text
    )


def test_pli_inbox_follow_prints_new_documents_without_polling(
    practices: tuple[Practice, Practice], tmp_path: Path
) -> None:
    gp, cardio = practices
    command = [
        sys.executable,
        "-m",
        "p2p",
        "--home",
        str(cardio.daemon.home),
        "--json",
        "inbox",
        "--all",
        "--follow",
    ]
    follower = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        time.sleep(1.5)  # the follower has listed the inbox and listens to /v1/events
        doc = compose(
            gp.visitor(),
            cardio,
            {"subject": "Suivi en direct"},
            [("direct.txt", b"live", "text/plain")],
        )
        for _ in range(200):
            line = follower.stdout.readline()
            if doc in line:
                break
        row = json.loads(line)
        assert row["id"] == doc
        assert row["metadata"]["subject"] == "Suivi en direct"
    finally:
        follower.terminate()
        follower.wait(10)
