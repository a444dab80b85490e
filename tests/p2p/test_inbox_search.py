"""A page of the inbox is searched inside its sealed index (``GET /v1/inbox/page``).

The rows are written as the inbox writes them at commit (an ``inbox`` row and its
index row sealed by the daemon's ``IndexKey``), into a real daemon's store; the
API is asked over its unix socket.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from p2p.documents.describe import describe
from p2p.storage.index import IndexKey
from p2p.storage.search import InboxQuery, search_key
from p2p.storage.store import InboxRow
from protocol import DocumentMeta, FileEntry, LocalIdentity, new_document_id

from .conftest import Running, start_daemon

DAY = 86_400
NOW = int(time.time())


def letter(
    sender: LocalIdentity, me: LocalIdentity, kind: str, age_days: int, **metadata: str
) -> tuple[DocumentMeta, int]:
    meta = DocumentMeta(
        document_id=new_document_id(),
        created_at=NOW - age_days * DAY,
        kind=kind,
        sender=sender.public,
        recipients=(me.public,),
        files=(FileEntry("courrier.pdf", 1000, "application/pdf"),),
        metadata=metadata,
    )
    return meta, NOW - age_days * DAY + 60


def store_all(
    running: Running, sender: LocalIdentity, letters: list[Any], *, old: bool = False
) -> None:
    """Write the rows as the inbox commits them (``old``: sealed before search keys)."""
    daemon, peer = running.daemon, sender.peer_id.hex
    rows, sealed = [], []
    for meta, received_at in letters:
        doc = meta.document_id.hex()
        rows.append(InboxRow(doc, peer, 1000, os.urandom(32), received_at, os.urandom(150)))
        box = daemon.archive.index_key.seal(doc, peer, describe(meta))
        if old:
            box = seal_without_key(daemon.archive.index_key, doc, peer, describe(meta))
        sealed.append(box)
    daemon.store.received_many(rows, sealed)


def seal_without_key(key: IndexKey, doc: str, peer: str, described: dict[str, Any]) -> bytes:
    """A row as pli sealed it before the search key: the JSON members alone."""
    import json

    from p2p.storage.index import NONCE_SIZE, associated

    plain = b'"id":"%s","from":"%s",' % (doc.encode(), peer.encode())
    plain += json.dumps(described)[1:-1].encode()
    nonce = os.urandom(NONCE_SIZE)
    return nonce + key._aead.encrypt(nonce, plain, associated(doc, peer))


@pytest.fixture
async def practice(tmp_path: Path) -> Any:
    running = await start_daemon(tmp_path / "cardio", "Dr Durand")
    sender = LocalIdentity.generate(now=NOW)
    card = sender.card(1, name="Dr Hélène Martin").sign(sender.identity)
    await running.daemon.add_peer(card, [])
    yield running, sender
    await running.stop()


async def page(running: Running, query: str) -> dict[str, Any]:
    status, answer = await running.api("GET", f"/v1/inbox/page?{query}")
    assert status == 200, answer
    return dict(answer)


def ids(answer: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in answer["documents"]]


async def test_words_birth_dates_kinds_dates_and_senders_are_found(practice: Any) -> None:
    running, sender = practice
    me = running.daemon.me
    dupont = letter(
        sender,
        me,
        "letter",
        40,
        subject="Avis cardiologique",
        patient_name="DUPONT-LEFÈVRE Jeanne",
        patient_birthdate="1950-02-03",
    )
    leroy = letter(
        sender,
        me,
        "report",
        2,
        subject="Bilan sanguin",
        patient_name="LEROY Paul",
        patient_birthdate="1962-07-14",
    )
    await asyncio.to_thread(store_all, running, sender, [dupont, leroy])
    first, second = dupont[0].document_id.hex(), leroy[0].document_id.hex()
    assert ids(await page(running, "")) == [second, first]  # newest first
    assert ids(await page(running, "q=lefevre+JEANNE")) == [first]  # no accents, any case
    assert ids(await page(running, "q=03/02/1950")) == [first]  # the French way
    assert ids(await page(running, "q=1962-07-14")) == [second]
    assert ids(await page(running, "q=bilan")) == [second]
    assert ids(await page(running, "q=helene+leroy")) == [second]  # the sender's name too
    assert ids(await page(running, "q=dupont+bilan")) == []  # every word must be found
    assert ids(await page(running, "kind=report")) == [second]
    since = time.strftime("%Y-%m-%d", time.localtime(NOW - 10 * DAY))
    until = time.strftime("%Y-%m-%d", time.localtime(NOW - 30 * DAY))
    assert ids(await page(running, f"since={since}")) == [second]
    assert ids(await page(running, f"until={until}")) == [first]
    assert ids(await page(running, f"until={until}&q=leroy")) == []
    answer = await page(running, "q=dupont")
    assert (answer["total"], answer["unread"]) == (1, 2)
    assert answer["documents"][0]["metadata"]["patient_name"] == "DUPONT-LEFÈVRE Jeanne"


async def test_pages_are_cut_by_the_query_and_counted(practice: Any) -> None:
    running, sender = practice
    me = running.daemon.me
    letters = [
        letter(sender, me, "letter" if n % 2 else "report", n, subject=f"Suivi {n:03d}")
        for n in range(120)
    ]
    await asyncio.to_thread(store_all, running, sender, letters)
    newest = [meta.document_id.hex() for meta, _ in letters]  # age 0 first
    first = await page(running, "limit=50")
    assert (first["total"], ids(first)) == (120, newest[:50])
    last = await page(running, "offset=100&limit=50")
    assert ids(last) == newest[100:]
    reports = await page(running, "kind=report&offset=50&limit=5")
    assert reports["total"] == 60
    assert ids(reports) == [d for n, d in enumerate(newest) if n % 2 == 0][50:55]
    searched = await page(running, "q=suivi&offset=110")
    assert (searched["total"], ids(searched)) == (120, newest[110:])


async def test_replies_are_found_and_the_answered_subject_given(practice: Any) -> None:
    running, sender = practice
    me = running.daemon.me
    asked = letter(sender, me, "letter", 3, subject="Question")
    question = asked[0].document_id.hex()
    answer_to = letter(sender, me, "letter", 1, subject="Re: Question", in_reply_to=question)
    other = letter(sender, me, "letter", 0, subject="Autre", in_reply_to="ab" * 16)
    await asyncio.to_thread(store_all, running, sender, [asked, answer_to, other])
    replies = await page(running, f"in_reply_to={question}")
    assert ids(replies) == [answer_to[0].document_id.hex()]
    assert replies["subjects"] == {question: "Question"}
    everything = await page(running, "")
    assert everything["subjects"] == {question: "Question"}  # "abab…" is stored nowhere


async def test_rows_sealed_before_search_keys_are_still_found(practice: Any) -> None:
    running, sender = practice
    me = running.daemon.me
    old = letter(sender, me, "report", 5, subject="Ancien", patient_name="MOREAU Éric")
    await asyncio.to_thread(store_all, running, sender, [old], old=True)
    doc = old[0].document_id.hex()
    assert ids(await page(running, "q=eric")) == [doc]
    assert ids(await page(running, "kind=report")) == [doc]
    status, listing = await running.api("GET", "/v1/inbox")
    assert status == 200
    assert listing[0]["metadata"]["subject"] == "Ancien"


async def test_a_bad_query_is_refused_in_words(practice: Any) -> None:
    running, _ = practice
    for query, words in (
        ("kind=ordonnance", "is not a kind of document"),
        ("since=23/05/2026", "since takes a date written YYYY-MM-DD"),
        ("until=2026-02-30", "until takes a date"),
        ("offset=-1", "offset takes a whole number"),
        ("limit=100000", "limit takes a whole number from 0 to 500"),
        ("in_reply_to=../../etc", "in_reply_to takes a document's full id"),
    ):
        status, answer = await running.api("GET", f"/v1/inbox/page?{query}")
        assert status == 400, query
        assert words in answer["error"]["message"], answer


def test_the_search_key_holds_what_a_search_looks_in() -> None:
    described = {
        "kind": "letter",
        "metadata": {
            "patient_name": "DUPONT Hélène",
            "patient_birthdate": "1984-05-23",
            "subject": "Avis\u202e\tcardio",
            "in_reply_to": "ab" * 16,
        },
    }
    key = search_key(described)
    assert key.count(b"\x00") == 4
    assert b"dupont helene" in key
    assert b"23/05/1984" in key
    assert b"1984-05-23" in key
    assert b"\t" not in key  # control characters are not kept
    match = InboxQuery(words=("helene", "23/05/1984"), in_reply_to="ab" * 16).matcher()
    assert match(key, b"")
    assert not InboxQuery(kind="report").matcher()(key, b"")
    assert not InboxQuery(words=("letter",)).matcher()(key, b"")  # the kind is not a word
