"""Finding a document by its id or an id prefix (``Archive.find``): the range queries on
the tables' primary keys find exactly the ids that start with what was typed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2p.daemon import harness
from p2p.daemon.core import Daemon
from p2p.errors import BadInput, DocumentUnknown
from p2p.storage.database import prefix_range
from p2p.storage.store import InboxRow, OutboxRow

SENDER = "ab" * 32
OTHER = "cd" * 32


@given(
    values=st.lists(st.text(st.characters(max_codepoint=0x7F), max_size=6), max_size=30),
    prefix=st.text(st.characters(max_codepoint=0x7E), min_size=1, max_size=3),
)
def test_the_range_holds_exactly_the_values_with_the_prefix(values: list[str], prefix: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT PRIMARY KEY)")
    db.executemany("INSERT OR IGNORE INTO t VALUES (?)", [(v,) for v in values])
    rows = db.execute("SELECT v FROM t WHERE v >= ? AND v < ?", prefix_range(prefix)).fetchall()
    assert sorted(v for (v,) in rows) == sorted({v for v in values if v.startswith(prefix)})


def test_the_lookup_is_an_index_search_not_a_scan() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE inbox (doc_id TEXT, sender TEXT, PRIMARY KEY (doc_id, sender))")
    plan = db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM inbox WHERE doc_id >= ? AND doc_id < ?",
        prefix_range("abcd"),
    ).fetchall()
    assert any("SEARCH" in str(step[-1]) for step in plan), plan


A = "1111a" + "0" * 27
B = "1111b" + "0" * 27
SENT = "2222" + "0" * 28


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    """A practice that received A and B (B from two senders) and sent SENT to two."""
    opened = harness.open_daemon(tmp_path / "home", "Dr Martin")
    received = [
        InboxRow(A, SENDER, 10, b"d" * 32, 100, b"r", None),
        InboxRow(B, SENDER, 10, b"d" * 32, 101, b"r", None),
        InboxRow(B, OTHER, 10, b"d" * 32, 102, b"r", None),
    ]
    opened.store.received_many(received, [b"sealed"] * len(received))
    opened.store.queue_many([OutboxRow.new(SENT, p, 10, b"d" * 32, 103) for p in (SENDER, OTHER)])
    return opened


def test_an_id_or_a_unique_prefix_finds_the_document(daemon: Daemon) -> None:
    assert daemon.archive.find(A).doc_id == A
    assert daemon.archive.find("  1111A ").doc_id == A  # as typed: spaces, capitals
    assert daemon.archive.find("1111b").doc_id == B  # one document from two senders
    sent = daemon.archive.find("2222")  # one document to two recipients
    assert (sent.direction, sent.doc_id) == ("out", SENT)
    assert daemon.archive.find(SENT).direction == "out"


@pytest.mark.parametrize("typed", ["111", "1113", "3333", "zzzz", "11%1", "1111\U0010ffff", ""])
def test_a_short_unknown_or_odd_prefix_finds_nothing_in_words(daemon: Daemon, typed: str) -> None:
    with pytest.raises(DocumentUnknown) as refused:
        daemon.archive.find(typed)
    assert "pli inbox" in refused.value.message
    assert "Aucun document" in (refused.value.french or "")


def test_a_prefix_of_several_documents_asks_for_more(daemon: Daemon) -> None:
    with pytest.raises(BadInput, match="matches 2 documents") as refused:
        daemon.archive.find("1111")
    assert "plusieurs documents" in (refused.value.french or "")
