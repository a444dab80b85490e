"""Finding a peer or a document from what a person typed (a name, a fingerprint, an id prefix)."""

from __future__ import annotations

from pathlib import Path

from p2p.daemon.core import Daemon
from p2p.errors import AmbiguousPeer, BadInput, DocumentUnknown, PeerUnknown
from p2p.storage.store import PeerRow
from protocol import fingerprint_prefix


def resolve_peer(daemon: Daemon, text: str, *, states: tuple[str, ...] = ("paired",)) -> PeerRow:
    """A peer by exact name, peer id, or fingerprint (prefix allowed if unique)."""
    rows = daemon.store.peers(states=states)
    needle = text.strip()
    exact = [r for r in rows if needle.casefold() in (r.name.casefold(), r.peer_id)]
    if len(exact) == 1:
        return exact[0]
    prefix = fingerprint_prefix(needle)
    matches = [
        r for r in rows
        if prefix and (r.fingerprint.replace("-", "").startswith(prefix)
                       or r.peer_id.startswith(needle.lower()))
    ] or exact  # fmt: skip
    if not matches:
        raise PeerUnknown(f"No paired peer is called “{text}”. `pli peers` lists them.")
    if len(matches) > 1:
        names = ", ".join(f"{r.name} ({r.fingerprint[:11]})" for r in matches)
        raise AmbiguousPeer(f"“{text}” matches several peers: {names}. Type more of it.")
    return matches[0]


def resolve_document(daemon: Daemon, text: str) -> tuple[str, str, Path]:
    """(direction, doc id, envelope path) for a document id or unique prefix."""
    needle = text.strip().lower()
    found: dict[str, tuple[str, str, Path]] = {}
    for row in daemon.store.inbox():
        if row.doc_id.startswith(needle):
            path = daemon.layout.received_envelope(row.sender, row.doc_id)
            found[row.doc_id] = ("in", row.sender, path)
    for out in daemon.store.outbox():
        if out.doc_id.startswith(needle) and out.doc_id not in found:
            found[out.doc_id] = ("out", "", daemon.layout.sent_envelope(out.doc_id))
    if len(needle) < 4 or not found:
        raise DocumentUnknown(
            f"No document has the id “{text}”. `pli inbox` and `pli outbox` list them."
        )
    if len(found) > 1:
        raise BadInput(f"“{text}” matches {len(found)} documents; type more of the id.")
    ((doc_id, (direction, _sender, path)),) = found.items()
    return direction, doc_id, path


KNOWN_STATES = ("paired", "removed", "revoked")  # peers whose names documents are shown with


def peer_names(daemon: Daemon) -> dict[str, str]:
    """Peer id → name, for the peers we are or were paired with."""
    rows = daemon.store.peers(states=KNOWN_STATES)
    return {row.peer_id: row.name for row in rows}
