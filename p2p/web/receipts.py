"""The receipt lines the page shows a sender, one recipient at a time.

A sent document has, per recipient, up to three signed receipts (docs/protocol.md,
``protocol/receipt_layers.py``): delivered (« Remis le … »), then what the
recipient's practice said later: integrated into its software (« Intégré le … »)
or not, with the MSSanté-style code and its words (« erreur 902 — Patient
inconnu »), and read (« Lu le … »). The values come from the local API
(``GET /v1/outbox`` and ``GET /v1/documents/{id}``: ``receipt_time`` or ``time``,
``integrated``, ``read``); the page refreshes them when the daemon publishes
``document-delivered``, ``document-integrated`` or ``document-read``.

A received document shows the other side: what this practice told its sender,
from the receipts it signed (``GET /v1/documents/{id}/receipts``).
"""

from __future__ import annotations

from typing import Any

from p2p.documents import integration
from p2p.web.words import inert, when, word


def receipt_lines(row: dict[str, Any], lang: str) -> list[dict[str, str]]:
    """``[{layer, level, text}]`` for one recipient of a sent document, oldest layer first.

    ``layer`` is ``delivered``, ``integrated`` or ``read`` (the templates' hooks);
    ``level`` is ``good`` or ``bad`` (a failure to integrate).
    """
    lines = []
    delivered = row.get("receipt_time") or row.get("time")
    if delivered:
        text = word(lang, "rc_delivered", time=when(delivered, lang))
        lines.append({"layer": "delivered", "level": "good", "text": text})
    integrated = row.get("integrated")
    if isinstance(integrated, dict):
        lines.append(_integrated(integrated, lang))
    read = row.get("read")
    if isinstance(read, dict):
        text = word(lang, "rc_read", time=when(read.get("time"), lang))
        lines.append({"layer": "read", "level": "good", "text": text})
    return lines


def _integrated(said: dict[str, Any], lang: str) -> dict[str, str]:
    """« Intégré le … », or why not: the code and, when the sender's table knows it, its words."""
    moment = when(said.get("time"), lang)
    if said.get("status") == "integrated":
        text = word(lang, "rc_integrated", time=moment)
        return {"layer": "integrated", "level": "good", "text": text}
    code = inert(said.get("code") or "?")
    label = inert((said.get("label_en") if lang == "en" else said.get("label")) or "")
    if label and label != f"code {code}":
        text = word(lang, "rc_not_integrated", time=moment, code=code, label=label)
    else:
        text = word(lang, "rc_not_integrated_bare", time=moment, code=code)
    return {"layer": "integrated", "level": "bad", "text": text}


#: The status of a receipt this practice signed -> the words of its line.
_OURS = {"delivered": "our_delivered", "integrated": "our_integrated", "read": "rc_read"}


def our_lines(signed: list[dict[str, Any]], lang: str) -> list[dict[str, str]]:
    """``[{layer, level, text}]``: the receipts this practice signed about a document it
    received (``status`` and ``time`` of each), oldest first."""
    lines = []
    for receipt in sorted(signed, key=_in_order):
        status, moment = str(receipt.get("status", "")), when(receipt.get("time"), lang)
        kind, _, code = status.partition(":")
        if kind == "not-integrated" and code.isdigit():
            label = integration.label(int(code), lang)
            text = word(lang, "rc_not_integrated", time=moment, code=code, label=label)
            lines.append({"layer": "integrated", "level": "bad", "text": text})
        elif kind in _OURS:
            text = word(lang, _OURS[kind], time=moment)
            lines.append({"layer": kind, "level": "good", "text": text})
        # any other status is one this page does not know: nothing to say about it
    return lines


_LAYERS = ("delivered", "integrated", "not-integrated", "read")


def _in_order(receipt: dict[str, Any]) -> tuple[int, int]:
    """By time, then by layer (several may be signed within the same second)."""
    kind = str(receipt.get("status", "")).partition(":")[0]
    return int(receipt.get("time") or 0), _LAYERS.index(kind) if kind in _LAYERS else 9
