"""Searching the inbox inside its sealed index: what a query asks, what a row is found by.

The patient's name, birth date and subject are sealed in ``inbox_index``
(``index.py``), so SQLite cannot search them. The work is split by what is clear:

- SQLite keeps to the received time (the date range), orders newest first, and
  when nothing sealed is asked (no words, kind or reply), cuts the page itself
  (``LIMIT``/``OFFSET``) and counts with ``count(*)``: page 1 of 10,000
  documents opens 50 boxes, not 10,000.
- With words, a kind or a reply asked, each row of the date range is opened and
  matched on its *search key*, sealed with the row when it is written
  (``search_key``): the kind, and the folded text (lower case, no accents) of the
  patient's names, birth date (as typed and as 23/05/1984), INS and subject. A
  row is matched without parsing its JSON; only the page's rows are joined into
  the answer. The sender's name (a clear column, it can be renamed) is folded
  once per name and query.

Rows sealed before the search key existed are matched from their JSON (slower,
and rare). What must not: touch the database (``received.py`` does) or log.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from p2p.errors import BadInput

#: A sealed plaintext that starts with this byte carries its search key:
#: ``MARK kind MARK in_reply_to MARK folded text MARK`` and then the JSON members.
#: JSON never holds a raw NUL (``json.dumps`` escapes it), nor does a folded text.
MARK = b"\x00"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_WORDS = 12
_HEX = re.compile(r"[0-9a-f]{32,64}")


def folded(text: str) -> str:
    """Lower case without accents or control characters, so “Hélène” finds “HELENE”."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(
        ch if unicodedata.category(ch)[0] != "C" else " "
        for ch in decomposed
        if not unicodedata.combining(ch)
    )


def search_text(described: Mapping[str, Any]) -> str:
    """What a search looks in (the sender aside): patient, birth date both ways, subject."""
    meta = described.get("metadata") or {}
    birth = str(meta.get("patient_birthdate", ""))
    french = "/".join(reversed(birth.split("-"))) if birth.count("-") == 2 else ""
    fields = (
        meta.get("patient_name", ""),
        meta.get("patient_family_name", ""),
        meta.get("patient_given_names", ""),
        birth,
        french,
        meta.get("patient_ins", ""),
        meta.get("subject", ""),
    )
    return folded(" ".join(str(f) for f in fields if f))


def search_key(described: Mapping[str, Any]) -> bytes:
    """The prefix sealed before a row's JSON members (see ``MARK``)."""
    kind = folded(str(described.get("kind", "")))
    reply = folded(str((described.get("metadata") or {}).get("in_reply_to", "")))
    fields = (kind, reply, search_text(described))
    return MARK + MARK.join(field.encode() for field in fields) + MARK


def split_sealed(plain: bytes) -> tuple[bytes | None, bytes]:
    """(search key, JSON members) of an opened row; no key for a row sealed before keys."""
    if plain[:1] != MARK:
        return None, plain
    end = plain.index(MARK, plain.index(MARK, plain.index(MARK, 1) + 1) + 1)
    return plain[: end + 1], plain[end + 1 :]


def key_of_members(members: bytes) -> bytes:
    """The search key of a row sealed without one, from its JSON (the slow way)."""
    return search_key(json.loads(b"{" + members + b"}"))


@dataclass(frozen=True)
class InboxQuery:
    """One page of the inbox: words (all must be found), kind, received-time range
    (Unix seconds, ``since`` included, ``until`` excluded), replies to one document."""

    words: tuple[str, ...] = ()
    kind: str = ""
    since: int = 0
    until: int = 2**62
    in_reply_to: str = ""
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    @property
    def sealed(self) -> bool:
        """Whether the query asks about sealed fields (each row must then be opened)."""
        return bool(self.words or self.kind or self.in_reply_to)

    def matcher(self) -> Callable[[bytes, bytes], bool]:
        """``match(search key, sender's folded name)``: whether a row is asked for.
        Made once per query: the words are encoded once, not per row."""
        kind = MARK + self.kind.encode() + MARK
        reply = MARK + self.in_reply_to.encode() + MARK
        words = [word.encode() for word in self.words]

        def match(key: bytes, sender: bytes) -> bool:
            if self.kind and not key.startswith(kind):
                return False
            if self.in_reply_to and reply not in key:
                return False
            text = key[key.rindex(MARK, 0, -1) :]
            return all(word in text or word in sender for word in words)

        return match

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> InboxQuery:
        """The query of ``GET /v1/inbox/page``; ``BadInput`` with the field's sentence."""
        words = tuple(folded(args.get("q", "")[:200]).split())[:MAX_WORDS]
        kind = args.get("kind", "").strip()
        if kind and kind not in _kinds():
            raise BadInput(f"“{kind}” is not a kind of document: {', '.join(_kinds())}.")
        reply = args.get("in_reply_to", "").strip().lower()
        if reply and not _HEX.fullmatch(reply):
            raise BadInput("in_reply_to takes a document's full id (hexadecimal).")
        since, until = _day(args, "since"), _day(args, "until")
        return cls(
            words=words,
            kind=kind,
            since=_midnight(since) if since else 0,
            until=_midnight(until + dt.timedelta(days=1)) if until else 2**62,
            in_reply_to=reply,
            offset=_number(args, "offset", 0, 10**7),
            limit=max(1, _number(args, "limit", DEFAULT_LIMIT, MAX_LIMIT)),
        )


def _kinds() -> tuple[str, ...]:
    from protocol import KINDS  # the envelope's list, imported only when a query is parsed

    return tuple(KINDS)


def _day(args: Mapping[str, str], name: str) -> dt.date | None:
    text = args.get(name, "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{name} takes a date written YYYY-MM-DD, not “{text[:40]}”.") from None


def _midnight(day: dt.date) -> int:
    """The Unix time of ``day``'s start on the practice's clock (local time)."""
    return int(dt.datetime(day.year, day.month, day.day).timestamp())


def _number(args: Mapping[str, str], name: str, default: int, most: int) -> int:
    text = args.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) > most:
        raise BadInput(f"{name} takes a whole number from 0 to {most}, not “{text[:20]}”.")
    return int(text)
