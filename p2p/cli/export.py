"""``pli export``: a document's decrypted files, its signed-metadata sidecar, its page.

``export_document`` writes, into a folder, never overwriting anything and never
trusting a name the sender chose (``documents.filenames.safe_filename``, then
``write_new_file``: ``storage.files.write_atomic`` in its never-overwrite mode):

- each file of the document, checked on the way against the SHA-256 the sender
  signed (a file that does not match is not kept);
- ``<first file>.pli.json``, the sidecar: the document's metadata and receipts as
  the daemon describes them, the names the files were saved under, and the
  ``evidence`` (``GET /v1/documents/{doc}/evidence``) that ``pli verify`` checks
  offline, with no daemon;
- for a prescription, ``ordonnance-<date>.html``: a printable page with a QR code
  carrying the same evidence (``prescription.render_html``).

Then it tells the daemon (``POST /v1/documents/{doc}/exported``) so that
``pli inbox`` stops listing it as new. Used by the CLI and by ``pli demo``.
No ``protocol`` import: hashes are compared with the daemon's list.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2p.cli.client import Client, quote_part
from p2p.documents.filenames import SIDECAR_SUFFIX, numbered, safe_filename
from p2p.errors import PliError, SecurityFailure, StorageError
from p2p.storage.files import write_atomic

SIDECAR_VERSION = 2  # 2: with the evidence
MAX_PRESCRIPTION = 256 * 1024  # bytes: a prescription is a page, not a book


@dataclass
class Exported:
    doc_id: str
    kind: str
    files: list[Path]
    sidecar: Path
    page: Path | None = None
    notes: list[str] = field(default_factory=list)


def write_new_file(folder: Path, name: str, chunks: Iterable[bytes]) -> Path:
    """Write a new file in ``folder`` named ``name``, or ``name (1)``, ``name (2)`` ...

    Atomic and durable; never replaces a file that is there (``write_atomic``).
    """
    others = (folder / numbered(name, n) for n in range(1, 10_000))
    return write_atomic(folder / name, chunks, overwrite=False, other_names=others).path


def export_document(client: Client, doc: str, target: Path) -> Exported:
    """Export ``doc`` (an id or unique prefix) into the existing folder ``target``."""
    info = client.get(f"/v1/documents/{quote_part(doc)}")
    doc_id = str(info["id"])
    receipts = client.get(f"/v1/documents/{doc_id}/receipts")
    proof = client.get(f"/v1/documents/{doc_id}/evidence")
    entries: list[dict[str, Any]] = list(info.get("files", []))
    signed = [str(f.get("sha256", "")) for f in proof.get("files", [])]
    if len(signed) != len(entries):
        raise StorageError(
            "The daemon's description of this document is inconsistent; see its log."
        )
    result = Exported(doc_id, str(info.get("kind", "")), [], Path())
    try:
        for i, entry in enumerate(entries):
            name = safe_filename(str(entry.get("name", "")), i + 1)
            expected = int(entry.get("size") or 0)
            with client.download(f"/v1/documents/{doc_id}/files/{i}", timeout=300) as chunks:
                checked = _checked(chunks, expected, signed[i], name)
                result.files.append(write_new_file(target, name, checked))
        if result.kind == "prescription":
            result.page = _write_page(target, proof, entries, result)
        sidecar = _sidecar(
            info, receipts=receipts, proof=proof, entries=entries, result=result, signed=signed
        )
        first = result.files[0].name if result.files else f"document-{doc_id[:12]}"
        data = json.dumps(sidecar, ensure_ascii=False, indent=1).encode("utf-8")
        result.sidecar = write_new_file(target, f"{first}{SIDECAR_SUFFIX}", [data])
    except OSError as exc:
        raise StorageError(
            f"Could not write into {target}: {exc.strerror or exc}. Check that the "
            "folder is writable and the disk has free space."
        ) from exc
    if info.get("direction") == "in":
        mark_exported(client, doc_id)
    return result


def _sidecar(
    info: dict[str, Any],
    *,
    receipts: Any,
    proof: dict[str, Any],
    entries: list[dict[str, Any]],
    result: Exported,
    signed: list[str],
) -> dict[str, Any]:
    """The ``.pli.json`` beside the exported files: the document, receipts, proof, names."""
    return {
        "pli_export": SIDECAR_VERSION,
        "exported_at": int(time.time()),
        "document": info,
        "receipts": receipts,
        "evidence": {
            "evidence": proof["evidence"],
            "signer_fingerprint": proof["signer_fingerprint"],
            "files": proof["files"],
        },
        "files": [
            {"index": i, "name": entry.get("name"), "saved_as": path.name, "sha256": sha}
            for i, (entry, path, sha) in enumerate(zip(entries, result.files, signed, strict=True))
        ],
        "page": result.page.name if result.page else None,
    }


def _checked(chunks: Iterable[bytes], expected: int, sha256: str, name: str) -> Iterator[bytes]:
    """Pass ``chunks`` through; fail (so nothing is kept) unless size and hash are right."""
    total = 0
    digest = hashlib.sha256()
    for chunk in chunks:
        total += len(chunk)
        if total > expected:
            break
        digest.update(chunk)
        yield chunk
    if total != expected:
        raise StorageError(
            f"The daemon returned {name} incomplete or damaged; nothing was "
            "saved for it. Try again, and check the daemon's log."
        )
    if sha256 and digest.hexdigest() != sha256.lower():
        raise SecurityFailure(
            f"{name} does not match what the sender signed; it was not saved. "
            "Check the daemon's log and ask the sender for a new copy."
        )


def _write_page(
    target: Path, proof: dict[str, Any], entries: list[dict[str, Any]], result: Exported
) -> Path | None:
    """The printable page of a prescription, or None (with a note) if it is not one pli made."""
    from p2p.documents import prescription

    index = next(
        (
            i
            for i, entry in enumerate(entries)
            if str(entry.get("type", "")).split(";")[0].strip() == prescription.MEDIA_TYPE
        ),
        None,
    )
    if index is None:
        result.notes.append("This prescription has no structured file: no printable page.")
        return None
    if int(entries[index].get("size") or 0) > MAX_PRESCRIPTION:
        result.notes.append("This prescription's file is too large for a printable page.")
        return None
    content = result.files[index].read_bytes()
    try:
        prescription.load(content)
    except (ValueError, UnicodeDecodeError):
        result.notes.append("This prescription is not in pli's format: no printable page.")
        return None
    page = prescription.render_html(
        content,
        base64.b64decode(proof["evidence"]),
        document_id=result.doc_id,
        signer_fingerprint=str(proof["signer_fingerprint"]),
        file_index=index,
    )
    return write_new_file(target, f"{result.files[index].stem}.html", [page.encode("utf-8")])


def mark_exported(client: Client, doc_id: str) -> None:
    """Tell the daemon (so `pli inbox` hides it); older daemons lack the route: fine."""
    try:
        client.post(f"/v1/documents/{doc_id}/exported", {})
    except PliError as exc:
        if exc.code not in ("http-404", "http-405"):
            raise
