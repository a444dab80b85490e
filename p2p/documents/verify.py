"""``pli verify FILE``: check an exported document or prescription offline (no daemon).

``verify_path`` takes what a person has in hand:

- an exported file: its sidecar is the ``*.pli.json`` in the same folder that lists
  this file's name *with this file's SHA-256* (the one ``pli export`` wrote, named
  after the document's first file); several such sidecars are refused as ambiguous,
  and a sidecar that lists the name with another hash means the file was changed;
- a sidecar (``*.pli.json``);
- a prescription's printable page (``ordonnance-*.html``), which carries its own proof;
- a text file holding what a QR code of such a page says (``PLI1:...``, scanned):
  the signature and the signed details are checked, not the files (they are not there).

It checks the sender's signature (``protocol.Evidence.verify``), the SHA-256 of
each exported file present against what was signed (``Evidence.check_file``),
that the sidecar's readable copy of the metadata is the signed one, that a page
shows exactly the signed prescription (it is rebuilt and compared, its QR drawing
aside), and that a prescription names, as its prescriber's key, the key that
signed it. Anything changed → ``SecurityFailure`` (exit 4) with ``TAMPERED``; a
missing sidecar → ``PliError`` (exit 1) saying what to do.

Then who signed: a correct signature by a key this practice does not trust is
not valid (``trust.judge``, exit 4): anyone can make a key and sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2p.documents import prescription, trust
from p2p.documents.describe import signed_description
from p2p.documents.filenames import SIDECAR_SUFFIX
from p2p.errors import BadInput, PliError, SecurityFailure

if TYPE_CHECKING:
    from protocol import DocumentMeta, Evidence

TAMPERED = (
    "This document was changed after it was signed, or the signature is not valid. "
    "Do not use it; ask the sender for a new copy."
)
MAX_SIDECAR = 8 * 1024 * 1024  # bytes: a sidecar read while looking for a file's own
MAX_CANDIDATES = 1000  # sidecars read in one folder while looking


@dataclass
class FileCheck:
    index: int
    name: str  # as the sender named it
    saved_as: str  # as exported ("" if the sidecar does not say)
    status: str  # "intact" or "not found"


@dataclass
class Report:
    source: Path  # the sidecar or page whose proof was checked
    document_id: str
    kind: str
    created_at: int
    signer_fingerprint: str
    signer_peer_id: str
    signer_key: bytes
    recipients: list[str]  # peer ids (hex)
    recipient_fingerprints: list[str]
    metadata: dict[str, str]
    files: list[FileCheck] = field(default_factory=list)
    prescription: dict[str, Any] | None = None
    receipts: list[dict[str, Any]] = field(default_factory=list)  # checked: recipient, status, time
    signer: trust.Signer | None = None  # set once the signing key is found trusted

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.signer is not None,
            "signer": self.signer.as_dict() if self.signer else None,
            "source": str(self.source),
            "id": self.document_id,
            "kind": self.kind,
            "created_at": self.created_at,
            "signer_fingerprint": self.signer_fingerprint,
            "signer_peer_id": self.signer_peer_id,
            "recipients": self.recipients,
            "metadata": self.metadata,
            "files": [vars(check) for check in self.files],
            "prescription": self.prescription,
            "receipts": self.receipts,
        }


def tampered(detail: str = "") -> SecurityFailure:
    return SecurityFailure(f"{TAMPERED} ({detail})" if detail else TAMPERED)


def verify_path(path: Path, keyring: trust.Keyring) -> Report:
    """Check ``path`` is intact and signed by a key ``keyring`` trusts; raises otherwise."""
    report = check_integrity(path)
    report.signer = trust.judge(keyring, report.signer_key, signed_at=report.created_at)
    return report


def check_integrity(path: Path) -> Report:
    """Everything but who signed: the signature, the files, the signed details."""
    if not path.exists():
        raise BadInput(f"The file “{path}” does not exist. Check its name and folder.")
    if path.is_dir():
        raise BadInput(f"“{path}” is a folder: give the exported file, its .pli.json or the page.")
    if path.name.endswith(SIDECAR_SUFFIX):
        return verify_sidecar(path)
    if path.stat().st_size < 16_384 and _read(path).lstrip().startswith(b"PLI1:"):
        return verify_scanned(path)
    if path.suffix.lower() in (".html", ".htm") and b'id="pli-evidence"' in _read(path):
        return verify_page(path)
    return verify_sidecar(find_sidecar(path), focus=path.name)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"pli cannot read “{path}” ({exc.strerror or exc}).") from None


def find_sidecar(path: Path) -> Path:
    """The ``.pli.json`` that lists this file under its own name and with its own hash.

    Every sidecar in the folder is read (up to ``MAX_CANDIDATES``); one listing the
    name with this file's SHA-256 is the file's own. Two are ambiguous and refused;
    one listing the name with another hash (or ``<name>.pli.json`` not listing it)
    says that something was changed.
    """
    digest = _sha256(path).hex()
    same, other = [], []
    for candidate in sorted(path.parent.glob(f"*{SIDECAR_SUFFIX}"))[:MAX_CANDIDATES]:
        hashes = _listed_hashes(candidate, path.name)
        if digest in hashes:
            same.append(candidate)
        elif hashes:
            other.append(candidate)
    if len(same) > 1:
        names = ", ".join(f"“{c.name}”" for c in same)
        raise SecurityFailure(
            f"Several signature files next to “{path.name}” describe it: {names}. pli will "
            "not choose one, since one of them may have been put there to mislead. Give the "
            "one pli export wrote with it: pli verify FILE.pli.json."
        )
    if same:
        return same[0]
    if other:
        raise tampered(f"{path.name} is not the file that was signed")
    if path.with_name(path.name + SIDECAR_SUFFIX).is_file():  # its own, edited not to list it
        raise tampered(f"{path.name}{SIDECAR_SUFFIX} was edited")
    raise PliError(
        f"No signature file was found next to “{path.name}”: pli verify needs the "
        f"{SIDECAR_SUFFIX} file that pli export wrote with it (named after the document's "
        f"first file, e.g. “{path.name}{SIDECAR_SUFFIX}”), in the same folder. Copy it "
        "there, or export the document again (pli export DOC)."
    )


def _listed_hashes(sidecar: Path, name: str) -> set[str]:
    """The SHA-256 (hex) a sidecar lists for the exported file ``name``; empty if none."""
    try:
        if not sidecar.is_file() or sidecar.stat().st_size > MAX_SIDECAR:
            return set()
        listed = json.loads(sidecar.read_bytes()).get("files", [])
        return {
            str(entry.get("sha256", "")).lower()
            for entry in listed
            if isinstance(entry, dict) and entry.get("saved_as") == name
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def check_evidence(wire: bytes) -> tuple[Evidence, DocumentMeta]:
    """Parse and verify a proof; any failure is ``tampered()``."""
    from protocol import Evidence, RemoteProtocolError

    try:
        evidence = Evidence.from_wire(wire)
        return evidence, evidence.verify()
    except (RemoteProtocolError, ValueError, TypeError):
        raise tampered() from None


def _report(source: Path, meta: DocumentMeta) -> Report:
    return Report(
        source=source,
        document_id=meta.document_id.hex(),
        kind=meta.kind,
        created_at=meta.created_at,
        signer_fingerprint=meta.sender.peer_id.fingerprint,
        signer_peer_id=meta.sender.peer_id.hex,
        signer_key=meta.sender.key,
        recipients=[r.peer_id.hex for r in meta.recipients],
        recipient_fingerprints=[r.peer_id.fingerprint for r in meta.recipients],
        metadata=dict(meta.metadata),
    )


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.digest()


def verify_sidecar(sidecar: Path, focus: str | None = None) -> Report:
    try:
        data = json.loads(_read(sidecar))
    except ValueError:
        raise tampered(f"{sidecar.name} is damaged") from None
    proof = data.get("evidence") if isinstance(data, dict) else None
    if proof is None and isinstance(data, dict) and data.get("pli_export") == 1:
        raise PliError(
            f"{sidecar.name} was written by an older pli, without the signature proof: "
            "export the document again (pli export DOC) to be able to verify it."
        )
    if not isinstance(proof, dict):
        raise tampered(f"{sidecar.name} is damaged")
    try:
        wire = base64.b64decode(str(proof["evidence"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise tampered(f"{sidecar.name} is damaged") from None
    evidence, meta = check_evidence(wire)
    report = _report(sidecar, meta)
    described = data.get("document")
    signed = signed_description(meta)
    if proof.get("signer_fingerprint") != report.signer_fingerprint or not isinstance(
        described, dict
    ):
        raise tampered(f"{sidecar.name} was edited")
    if {key: described.get(key) for key in signed} != signed:
        raise tampered(f"the details in {sidecar.name} are not the signed ones")
    listed = data.get("files")
    if not isinstance(listed, list):
        raise tampered(f"{sidecar.name} was edited")
    for entry in listed:
        report.files.append(_check_listed(sidecar, entry, evidence, meta))
    if focus is not None and focus not in {check.saved_as for check in report.files}:
        raise tampered(f"{sidecar.name} does not list {focus}")
    _check_prescription(sidecar.parent, report, meta)
    report.receipts = _check_receipts(sidecar, data.get("receipts") or [], evidence, meta)
    return report


def _check_receipts(
    sidecar: Path, listed: Any, evidence: Evidence, meta: DocumentMeta
) -> list[dict[str, Any]]:
    """Each receipt in the sidecar must be a recipient's signature over this very document."""
    import time

    from protocol import Receipt, RemoteProtocolError

    if not isinstance(listed, list):
        raise tampered(f"{sidecar.name} was edited")
    checked = []
    for entry in listed:
        try:
            receipt = Receipt.from_wire(base64.b64decode(str(entry["receipt"]), validate=True))
            if receipt.recipient not in meta.recipients:
                raise tampered(f"a receipt in {sidecar.name} is not from a recipient")
            receipt.verify(
                recipient=receipt.recipient,
                sender=meta.sender,
                document_id=meta.document_id,
                envelope_digest=evidence.digest(),
                now=int(time.time()),
            )
        except (KeyError, TypeError, binascii.Error, ValueError, RemoteProtocolError):
            raise tampered(f"a receipt in {sidecar.name} does not match this document") from None
        checked.append(
            {
                "recipient": receipt.recipient.peer_id.hex,
                "recipient_fingerprint": receipt.recipient.peer_id.fingerprint,
                "status": receipt.status,
                "time": receipt.time,
            }
        )
    return checked


def _check_listed(sidecar: Path, entry: Any, evidence: Evidence, meta: DocumentMeta) -> FileCheck:
    if not isinstance(entry, dict):
        raise tampered(f"{sidecar.name} was edited")
    index, saved_as = entry.get("index"), entry.get("saved_as")
    if (
        not isinstance(index, int)
        or not 0 <= index < len(meta.files)
        or not isinstance(saved_as, str)
        or Path(saved_as).name != saved_as
        or saved_as in ("", ".", "..")
        or entry.get("name") != meta.files[index].name
    ):
        raise tampered(f"{sidecar.name} was edited")
    path = sidecar.parent / saved_as
    check = FileCheck(index, meta.files[index].name, saved_as, "not found")
    if path.is_file():
        try:
            evidence.check_file(index, _sha256(path))
        except Exception:
            raise tampered(f"{saved_as} is not the file that was signed") from None
        check.status = "intact"
    return check


def _check_prescription(folder: Path, report: Report, meta: DocumentMeta) -> None:
    """A prescription's structured file, when exported next to it: read it, check its signer."""
    if report.kind != "prescription":
        return
    for check in report.files:
        if check.status == "intact" and meta.files[check.index].media_type.startswith(
            prescription.MEDIA_TYPE
        ):
            try:
                report.prescription = prescription.load((folder / check.saved_as).read_bytes())
            except (ValueError, UnicodeDecodeError):
                return  # signed, but not pli's format: nothing more to read
            _same_prescriber(report)
            return


def _same_prescriber(report: Report) -> None:
    """A prescription must name, as its prescriber's key, the very key that signed it."""
    from protocol import FingerprintError, normalize_fingerprint

    claimed = (report.prescription or {}).get("prescriber", {}).get("fingerprint", "")
    if not claimed:
        raise tampered("the prescription does not name its prescriber's key")
    try:
        same = normalize_fingerprint(claimed) == report.signer_fingerprint.replace("-", "")
    except FingerprintError:
        same = False
    if not same:
        raise tampered("the prescription names another prescriber than the one who signed it")


def verify_page(page_path: Path) -> Report:
    try:
        page = _read(page_path).decode("utf-8")
        wire, content, index, shown = prescription.read_page(page)
        version = prescription.page_version(page)
    except (ValueError, binascii.Error):
        raise tampered(f"{page_path.name} is damaged") from None
    evidence, meta = check_evidence(wire)
    report = _report(page_path, meta)
    try:
        evidence.check_file(index, hashlib.sha256(content).digest())
        expected = prescription.render_html(
            content,
            wire,
            document_id=report.document_id,
            signer_fingerprint=report.signer_fingerprint,
            file_index=index,
            version=version,
        )
    except Exception:
        raise tampered(f"{page_path.name} does not hold the signed prescription") from None
    if prescription.without_qr(expected) != shown:
        raise tampered(f"the text of {page_path.name} was changed")
    report.files.append(FileCheck(index, meta.files[index].name, "", "intact"))
    report.prescription = prescription.load(content)
    _same_prescriber(report)
    return report


def verify_scanned(path: Path) -> Report:
    """A scanned QR code (``PLI1:`` + base64url of the evidence), saved in a text file."""
    try:
        wire = prescription.decode_qr_payload(_read(path).decode("ascii"))
    except (ValueError, binascii.Error):
        raise tampered(f"{path.name} is not a complete pli proof") from None
    _evidence, meta = check_evidence(wire)
    report = _report(path, meta)
    report.files = [FileCheck(i, f.name, "", "not found") for i, f in enumerate(meta.files)]
    return report
