"""pli/1 protocol core: pure, synchronous, no I/O.

p2p/ and the tests use the protocol only through the names exported here.
"""

from . import codec, limits, messages
from .envelope import (
    KINDS,
    DocumentMeta,
    FileEntry,
    SealedEnvelope,
    new_document_id,
    seal,
)
from .envelope_reader import (
    Content,
    EnvelopeReader,
    MetaReceived,
    Verified,
    VerifiedEnvelope,
    open_envelope,
)
from .errors import (
    AuthenticationFailed,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    ProtocolError,
    RemoteProtocolError,
    ReplayDetected,
    VersionMismatch,
)
from .evidence import Evidence
from .identity import (
    FingerprintError,
    IdentityKey,
    LocalIdentity,
    PeerId,
    ProfileCard,
    PublicIdentity,
    StaticCert,
    check_rpps,
    fingerprint_prefix,
    normalize_fingerprint,
)
from .noise import PROLOGUE, Handshake, RemotePeer, Role, Session
from .pairing import (
    WRONG_CODE_MESSAGE,
    BadCode,
    PairedPeer,
    Pairing,
    PairingCode,
    discovery_hint,
    hint_matches,
    new_code,
    new_discovery_secret,
    parse_code,
)
from .pairing import Role as PairingRole
from .receipts import RECEIPT_STATUSES, Receipt, is_receipt_status

__all__ = [
    "KINDS",
    "PROLOGUE",
    "RECEIPT_STATUSES",
    "WRONG_CODE_MESSAGE",
    "AuthenticationFailed",
    "BadCode",
    "Content",
    "DocumentMeta",
    "EnvelopeReader",
    "Evidence",
    "FileEntry",
    "FingerprintError",
    "FrameTooLarge",
    "Handshake",
    "IdentityKey",
    "LocalIdentity",
    "LocalProtocolError",
    "MalformedMessage",
    "MetaReceived",
    "PairedPeer",
    "Pairing",
    "PairingCode",
    "PairingRole",
    "PeerId",
    "ProfileCard",
    "ProtocolError",
    "PublicIdentity",
    "Receipt",
    "RemotePeer",
    "RemoteProtocolError",
    "ReplayDetected",
    "Role",
    "SealedEnvelope",
    "Session",
    "StaticCert",
    "Verified",
    "VerifiedEnvelope",
    "VersionMismatch",
    "check_rpps",
    "codec",
    "discovery_hint",
    "fingerprint_prefix",
    "hint_matches",
    "is_receipt_status",
    "limits",
    "messages",
    "new_code",
    "new_discovery_secret",
    "new_document_id",
    "normalize_fingerprint",
    "open_envelope",
    "parse_code",
    "seal",
]
