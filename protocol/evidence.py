"""Offline proof of a document: what ``pli verify`` checks, with no daemon and no network.

An ``Evidence`` is what an envelope's signature covers, taken out of the
envelope once it verified: the header hash, the inner header (sender,
recipients, clinical metadata, file list), the SHA-256 of each file and the
sender's Ed25519 signature over the envelope digest. Exported next to the
decrypted files (or in a prescription's QR code), it lets anyone holding the
files check, later and offline, that this sender signed exactly these files
with exactly this metadata, for these recipients.

What it proves is bound to the sender's identity key, which is inside the
inner header: a verifier must still recognise that key (a paired peer's, or a
fingerprint compared with a letterhead) to know *who* signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import codec
from ._hashing import constant_time_equal
from .envelope import LABEL_SIGNATURE, DocumentMeta, envelope_digest
from .envelope_reader import VerifiedEnvelope
from .errors import AuthenticationFailed, MalformedMessage

EVIDENCE_VERSION = 1


@dataclass(frozen=True)
class Evidence:
    header_hash: bytes
    inner_header: bytes
    file_hashes: tuple[bytes, ...]
    signature: bytes

    @classmethod
    def of(cls, envelope: VerifiedEnvelope) -> Evidence:
        return cls(
            envelope.header_hash, envelope.inner_header, envelope.file_hashes, envelope.signature
        )

    def to_wire(self) -> bytes:
        return codec.pack(
            {
                "v": EVIDENCE_VERSION,
                "header": self.header_hash,
                "inner": self.inner_header,
                "hashes": list(self.file_hashes),
                "sig": self.signature,
            }
        )

    @classmethod
    def from_wire(cls, data: bytes) -> Evidence:
        """Parse (not verify) evidence. Raises ``RemoteProtocolError``."""
        fields = codec.as_map(codec.unpack(data), "evidence")
        if codec.field(fields, "v", int, "evidence") != EVIDENCE_VERSION:
            raise MalformedMessage("evidence: unknown version")
        hashes = codec.field(fields, "hashes", list, "evidence")
        if not all(isinstance(h, bytes) and len(h) == 32 for h in hashes):
            raise MalformedMessage("evidence: file hashes are 32 bytes each")
        return cls(
            codec.fixed_bytes(fields, "header", 32, "evidence"),
            codec.field(fields, "inner", bytes, "evidence"),
            tuple(hashes),
            codec.fixed_bytes(fields, "sig", 64, "evidence"),
        )

    def digest(self) -> bytes:
        """The envelope digest: what the sender signed and what receipts refer to."""
        return envelope_digest(self.header_hash, self.inner_header, self.file_hashes)

    def verify(self) -> DocumentMeta:
        """Check the sender's signature; return the signed metadata.

        Raises ``AuthenticationFailed`` if anything was changed, ``MalformedMessage``
        if the inner header does not parse.
        """
        meta = DocumentMeta.from_wire(self.inner_header)
        if len(self.file_hashes) != len(meta.files):
            raise AuthenticationFailed()
        meta.sender.verify(LABEL_SIGNATURE, self.digest(), self.signature)
        return meta

    def check_file(self, index: int, content_sha256: bytes) -> None:
        """Raise ``AuthenticationFailed`` unless file ``index`` has this SHA-256."""
        if not 0 <= index < len(self.file_hashes) or not constant_time_equal(
            self.file_hashes[index], content_sha256
        ):
            raise AuthenticationFailed()
