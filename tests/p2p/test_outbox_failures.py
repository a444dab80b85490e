"""The outbox's reason codes: stored next to the English sentence, kept by the
migration for the rows recorded before them, and each one said by the page.

No daemon: the store on a temporary file, the page's words table.
"""

from __future__ import annotations

import time
from pathlib import Path

from p2p.services.outbox import REFUSALS, REFUSED_OTHERWISE, refusal_sentence
from p2p.services.outbox.parts import refused
from p2p.storage.database import Database
from p2p.storage.failures import ENGLISH, Failed, Failure, failure
from p2p.storage.quota import DISK_FULL
from p2p.storage.schema import MIGRATIONS
from p2p.storage.store import OutboxRow, Store, StoredReceipt
from p2p.web.views import failure_text
from p2p.web.words import WORDS, word

DOC, PEER = "d0" * 16, "9e" * 16
OLD_SENTENCE = "The other practice's computer did not answer at 192.0.2.7:7717."


def test_a_row_recorded_before_the_codes_keeps_its_sentence(tmp_path: Path) -> None:
    path = tmp_path / "pli.db"
    before = Database(path, {v: sql for v, sql in MIGRATIONS.items() if v < 4})
    with before._tx() as db:
        db.execute(
            "INSERT INTO outbox (doc_id, peer_id, size, digest, created_at, state, attempts, "
            "last_error) VALUES (?, ?, 10, x'00', 1, 'queued', 3, ?)",
            (DOC, PEER, OLD_SENTENCE),
        )
    before.close()
    store = Store(path)  # migrated to the codes
    try:
        (row,) = store.outbox()
        assert (row.last_error, row.error_code, row.attempts) == (OLD_SENTENCE, None, 3)
        store.attempts_failed([(DOC, PEER)], refused(DISK_FULL), lambda _: 0.0)
        (row,) = store.outbox()
        assert (row.error_code, row.last_error) == (Failure.REFUSED_DISK_FULL, REFUSALS[DISK_FULL])
        receipt = StoredReceipt(DOC, PEER, b"receipt", int(time.time()), "delivered")
        store.delivered_many([receipt])
        (row,) = store.outbox()
        assert (row.state, row.last_error, row.error_code) == ("delivered", None, None)
    finally:
        store.close()


def test_a_cancellation_says_why(tmp_path: Path) -> None:
    store = Store(tmp_path / "pli.db")
    try:
        store.queue_many([OutboxRow.new(DOC, PEER, 10, b"\0", 1)])
        assert store.cancel_queued(DOC, PEER, Failed.of(Failure.CANCELLED_BY_SENDER))
        (row,) = store.outbox()
        assert (row.state, row.error_code) == ("cancelled", Failure.CANCELLED_BY_SENDER)
        assert row.last_error == "cancelled by the sender"
    finally:
        store.close()


def test_a_peer_refusal_code_becomes_ours() -> None:
    assert refused(DISK_FULL) == Failed(Failure.REFUSED_DISK_FULL, REFUSALS[DISK_FULL])
    anything = refused("0800 00 00 00, call me")  # a peer may send any code
    assert anything == Failed(Failure.REFUSED, REFUSED_OTHERWISE)
    assert refusal_sentence("too-large") == ENGLISH[Failure.REFUSED_TOO_LARGE]
    assert Failed.of(Failure.UNREACHABLE, OLD_SENTENCE).text == OLD_SENTENCE
    assert (failure("refused-quota-full"), failure("no-such-code"), failure(None)) == (
        Failure.REFUSED_QUOTA_FULL,
        None,
        None,
    )


def test_the_page_has_words_for_every_code_in_both_languages() -> None:
    french = {code: word("fr", f"fail_{code}") for code in Failure}
    english = {code: word("en", f"fail_{code}") for code in Failure}
    assert len(set(french.values())) == len(Failure)  # each one says something of its own
    assert all(french[code] != english[code] for code in Failure)
    assert all(text.strip() for text in [*french.values(), *english.values()])
    stray = {key for key in WORDS if key.startswith("fail_")} - {f"fail_{c}" for c in Failure}
    assert stray == set()


def test_the_sent_documents_page_says_why_in_its_words() -> None:
    refused = {"state": "queued", "error_code": "refused-quota-full", "last_error": "Their…"}
    assert failure_text(refused, "fr") == word("fr", "fail_refused-quota-full")
    assert failure_text(refused, "en") == word("en", "fail_refused-quota-full")
    old = {"state": "queued", "error_code": None, "last_error": OLD_SENTENCE + "\u202e\n"}
    assert failure_text(old, "fr") == f"Dernier essai : {OLD_SENTENCE}"  # inert, as stored
    assert failure_text({**old, "state": "cancelled"}, "fr") == ""  # « Annulé » says it
    revoked = {"state": "cancelled", "error_code": "cancelled-revoked", "last_error": "x"}
    assert failure_text(revoked, "fr") == word("fr", "fail_cancelled-revoked")
    assert failure_text({**refused, "state": "delivered"}, "fr") == ""
