"""One ``DocumentMeta`` → JSON: a document's signed description, in one shape everywhere.

The local API shows it (``GET /v1/documents/{doc}``, the inbox rows), ``pli export``
writes it in the sidecar, and ``pli verify`` compares the sidecar's readable copy with
what the proof signs: all three read it from here, so they cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol import DocumentMeta


def describe(meta: DocumentMeta) -> dict[str, Any]:
    """The signed fields of a document, its id aside (the API names it on its own)."""
    return {
        "kind": meta.kind,
        "created_at": meta.created_at,
        "sender": meta.sender.peer_id.hex,
        "recipients": [r.peer_id.hex for r in meta.recipients],
        "files": [{"name": f.name, "size": f.size, "type": f.media_type} for f in meta.files],
        "metadata": dict(meta.metadata),
    }


def signed_description(meta: DocumentMeta) -> dict[str, Any]:
    """``describe`` with the document's id: every field of it is covered by the signature."""
    return {"id": meta.document_id.hex(), **describe(meta)}
