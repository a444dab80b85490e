"""pli/1 protocol core: pure, synchronous, no I/O.

p2p/ and the tests use the protocol only through the names exported here.
"""

from . import codec, frames, limits, mailbox, messages
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
    ContentChanged,
    FrameTooLarge,
    LocalProtocolError,
    MalformedMessage,
    ProtocolError,
    RemoteProtocolError,
    ReplayDetected,
    VersionMismatch,
)
from .evidence import Evidence
from .fingerprint_pairing import (
    PROLOGUE_FINGERPRINT,
    FingerprintPairing,
    FingerprintRole,
    ShowCheckCode,
)
from .fingerprint_pairing import Declined as PairingDeclined
from .fingerprint_pairing import Paired as PairingDone
from .fingerprint_pairing import Send as PairingSend
from .frames import FrameOpener, FrameSealer, frame_ciphers
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
    BAD_PEER_MESSAGE,
    EXPIRED_PEER_MESSAGE,
    REFLECTION_MESSAGE,
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
from .pairing_reasons import SECURITY_REASONS as PAIRING_SECURITY_REASONS
from .pairing_reasons import WIRE_REASONS as PAIRING_WIRE_REASONS
from .pairing_reasons import PairingRefused
from .pairing_reasons import Reason as PairingReason
from .pairing_reasons import error_frame as pairing_error_frame
from .pairing_reasons import is_security as is_security_reason
from .pairing_reasons import read_error_frame as read_pairing_error_frame
from .receipt_layers import LATER_LAYERS, SentDocument, accept_later_receipt
from .receipts import (
    RECEIPT_LAYERS,
    RECEIPT_STATUSES,
    Receipt,
    is_receipt_status,
    not_integrated,
    receipt_layer,
)
from .revocation import Revocation

__all__ = [
    "BAD_PEER_MESSAGE",
    "EXPIRED_PEER_MESSAGE",
    "KINDS",
    "LATER_LAYERS",
    "PAIRING_SECURITY_REASONS",
    "PAIRING_WIRE_REASONS",
    "PROLOGUE",
    "PROLOGUE_FINGERPRINT",
    "RECEIPT_LAYERS",
    "RECEIPT_STATUSES",
    "REFLECTION_MESSAGE",
    "WRONG_CODE_MESSAGE",
    "AuthenticationFailed",
    "BadCode",
    "Content",
    "ContentChanged",
    "DocumentMeta",
    "EnvelopeReader",
    "Evidence",
    "FileEntry",
    "FingerprintError",
    "FingerprintPairing",
    "FingerprintRole",
    "FrameOpener",
    "FrameSealer",
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
    "PairingDeclined",
    "PairingDone",
    "PairingReason",
    "PairingRefused",
    "PairingRole",
    "PairingSend",
    "PeerId",
    "ProfileCard",
    "ProtocolError",
    "PublicIdentity",
    "Receipt",
    "RemotePeer",
    "RemoteProtocolError",
    "ReplayDetected",
    "Revocation",
    "Role",
    "SealedEnvelope",
    "SentDocument",
    "Session",
    "ShowCheckCode",
    "StaticCert",
    "Verified",
    "VerifiedEnvelope",
    "VersionMismatch",
    "accept_later_receipt",
    "check_rpps",
    "codec",
    "discovery_hint",
    "fingerprint_prefix",
    "frame_ciphers",
    "frames",
    "hint_matches",
    "is_receipt_status",
    "is_security_reason",
    "limits",
    "mailbox",
    "messages",
    "new_code",
    "new_discovery_secret",
    "new_document_id",
    "normalize_fingerprint",
    "not_integrated",
    "open_envelope",
    "pairing_error_frame",
    "parse_code",
    "read_pairing_error_frame",
    "receipt_layer",
    "seal",
]
