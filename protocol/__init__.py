"""pli/1 protocol core: pure, synchronous, no I/O.

p2p/ and the tests use the protocol only through the names exported here.
"""

from . import codec, limits, messages
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

__all__ = [
    "PROLOGUE",
    "AuthenticationFailed",
    "FingerprintError",
    "FrameTooLarge",
    "Handshake",
    "IdentityKey",
    "LocalIdentity",
    "LocalProtocolError",
    "MalformedMessage",
    "PeerId",
    "ProfileCard",
    "ProtocolError",
    "PublicIdentity",
    "RemotePeer",
    "RemoteProtocolError",
    "ReplayDetected",
    "Role",
    "Session",
    "StaticCert",
    "VersionMismatch",
    "check_rpps",
    "codec",
    "fingerprint_prefix",
    "limits",
    "messages",
    "normalize_fingerprint",
]
