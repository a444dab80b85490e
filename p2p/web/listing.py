"""The inbox as the page lists it: what the person asked for, and the rows as shown.

Searching, filtering and paging happen in the daemon, inside its inbox index
(``GET /v1/inbox/page``, ``storage/search.py``): the page asks for one page and
gets its 50 rows, the count, and the subjects of the documents they answer.
This module turns the page's query string into that request (a value the page
cannot use is dropped, not an error: it came from a link or a hand-typed URL)
and shapes each row for the template.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from p2p.web.words import birth_date, when
from protocol import KINDS

PAGE_SIZE = 50
MAX_PAGE = 100_000


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
            page = max(1, min(int(args.get("page", "1")), MAX_PAGE))
        except ValueError:
            page = 1
        kind = args.get("kind", "")
        return cls(
            q=args.get("q", "")[:200].strip(),
            kind=kind if kind in KINDS else "",
            since=_date(args.get("since", "")),
            until=_date(args.get("until", "")),
            page=page,
        )

    def api_path(self, page: int | None = None) -> str:
        """The ``GET /v1/inbox/page`` request for this query's page (or ``page``)."""
        values = {"q": self.q, "kind": self.kind, "since": self.since, "until": self.until}
        offset = ((page or self.page) - 1) * PAGE_SIZE
        asked = {k: v for k, v in values.items() if v}
        return "/v1/inbox/page?" + urlencode({**asked, "offset": offset, "limit": PAGE_SIZE})

    def link(self, page: int) -> str:
        """The page's own link to ``page`` of this query."""
        values = {
            "q": self.q,
            "kind": self.kind,
            "since": self.since,
            "until": self.until,
            "page": page if page > 1 else "",
        }
        return "/?" + urlencode({k: v for k, v in values.items() if v})


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        return ""


def pages_of(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def shape(row: Mapping[str, Any], subjects: Mapping[str, str], lang: str) -> dict[str, Any]:
    """One inbox row as the template shows it (dates as the practice reads them)."""
    meta = row.get("metadata") or {}
    return {
        "id": row.get("id", ""),
        "kind": row.get("kind", ""),
        "from_name": row.get("from_name", ""),
        "subject": meta.get("subject", ""),
        "patient_name": meta.get("patient_name", ""),
        "patient_birthdate": birth_date(meta.get("patient_birthdate"), lang),
        "received": when(row.get("received_at"), lang, relative=True),
        "unread": not row.get("exported_at"),
        "revoked": bool(row.get("sender_revoked_since")),
        "parent_subject": subjects.get(str(meta.get("in_reply_to", "")), ""),
    }
