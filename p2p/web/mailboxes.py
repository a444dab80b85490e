"""The mailboxes as the page shows them: each one's state and what waits each way
(settings), and which way a sent document went (outbox).

The daemon says it as data (``GET /v1/status``'s ``mailboxes``, ``GET /v1/outbox``'s
``via``); the words are the page's own (``words_mailbox.py``), French first.
"""

from __future__ import annotations

from typing import Any

from p2p.storage.mailboxes import host_words
from p2p.web.words import word

_STATES = {
    "connected": "mailbox_connected",
    "connecting": "mailbox_connecting",
    "unreachable": "mailbox_unreachable",
    "unusable": "mailbox_unusable",
}


def mailbox_rows(listed: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """One entry per mailbox joined: its host, state in words and counts."""
    return [
        {
            "host": host_words(str(row.get("url", ""))),
            "state": str(row.get("state", "")),
            "text": _state(row, lang),
            "waiting_in": word(lang, "mailbox_waiting_in", count=int(row.get("waiting_in", 0))),
            "waiting_out": word(lang, "mailbox_waiting_out", count=int(row.get("waiting_out", 0))),
        }
        for row in listed
    ]


def _state(row: dict[str, Any], lang: str) -> str:
    state = str(row.get("state", ""))
    if state == "refused":
        return word(
            lang, "mailbox_refused_credentials" if row.get("credentials") else "mailbox_refused_key"
        )
    return word(lang, _STATES.get(state, "mailbox_connecting"))


def path_text(via: object, lang: str) -> tuple[str, str] | None:
    """(``direct`` | ``mailbox``, the words) for a sent document; None before it left."""
    if not isinstance(via, str):
        return None
    if via.startswith("mailbox "):
        host = host_words(via.removeprefix("mailbox "))
        return "mailbox", word(lang, "path_mailbox", host=host)
    return "direct", word(lang, "path_direct")
