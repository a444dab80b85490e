"""The inbox as the page lists it: search, filter, newest first, one page at a time.

The rows come from the local API's ``GET /v1/inbox`` (the inbox service's own
listing); this module only chooses and shapes them, in memory, with no I/O.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from p2p.web.words import when

PAGE_SIZE = 50
#: (document id, sender's name) -> its text folded for search. A document's signed
#: fields never change, so the text is made once per document (and sender name).
_FOLDED: dict[tuple[str, str], str] = {}
MAX_FOLDED = 100_000


@dataclass(frozen=True)
class Query:
    """What the person asked for: text, kind, a date range (YYYY-MM-DD), a page."""

    q: str = ""
    kind: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> Query:
        try:
            page = max(1, min(int(args.get("page", "1")), 100_000))
        except ValueError:
            page = 1
        return cls(
            q=args.get("q", "")[:200].strip(),
            kind=args.get("kind", "")[:20],
            since=_date(args.get("since", "")),
            until=_date(args.get("until", "")),
            page=page,
        )


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        return ""


def folded(text: str) -> str:
    """Lower case without accents, so “Hélène” finds “HELENE”."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def searchable(row: Mapping[str, Any]) -> str:
    """What a search looks in: patient, birth date (both ways), sender, subject."""
    key = (str(row.get("id", "")), str(row.get("from_name", "")))
    found = _FOLDED.get(key)
    if found is None:
        if len(_FOLDED) >= MAX_FOLDED:
            _FOLDED.clear()
        found = _FOLDED[key] = _searchable(row)
    return found


def _searchable(row: Mapping[str, Any]) -> str:
    meta = row.get("metadata") or {}
    birth = str(meta.get("patient_birthdate", ""))
    french = "/".join(reversed(birth.split("-"))) if birth.count("-") == 2 else ""
    fields = (
        meta.get("patient_name", ""),
        birth,
        french,
        row.get("from_name", ""),
        meta.get("subject", ""),
    )
    return folded(" ".join(str(f) for f in fields))


def matches(row: Mapping[str, Any], query: Query) -> bool:
    if query.kind and row.get("kind") != query.kind:
        return False
    if query.since or query.until:
        day = dt.date.fromtimestamp(int(row.get("received_at") or 0)).isoformat()
        if (query.since and day < query.since) or (query.until and day > query.until):
            return False
    return not query.q or all(word in searchable(row) for word in folded(query.q).split())


def choose(
    rows: list[dict[str, Any]], query: Query, parents: Mapping[str, str], lang: str
) -> tuple[list[dict[str, Any]], int, int]:
    """The page of rows asked for, shaped for the template; the total and the pages."""
    found = [row for row in rows if matches(row, query)]
    found.sort(key=lambda row: int(row.get("received_at") or 0), reverse=True)
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(query.page, pages)
    start = (page - 1) * PAGE_SIZE
    return (
        [shape(row, parents, lang) for row in found[start : start + PAGE_SIZE]],
        len(found),
        pages,
    )


def shape(row: Mapping[str, Any], parents: Mapping[str, str], lang: str) -> dict[str, Any]:
    meta = row.get("metadata") or {}
    return {
        "id": row.get("id", ""),
        "kind": row.get("kind", ""),
        "from_name": row.get("from_name", ""),
        "subject": meta.get("subject", ""),
        "patient_name": meta.get("patient_name", ""),
        "patient_birthdate": meta.get("patient_birthdate", ""),
        "received": when(row.get("received_at"), lang),
        "unread": not row.get("exported_at"),
        "revoked": bool(row.get("sender_revoked_since")),
        "parent_subject": parents.get(str(meta.get("in_reply_to", "")), ""),
    }
