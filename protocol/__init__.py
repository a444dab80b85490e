"""pli/1 protocol core: pure, synchronous, no I/O.

p2p/ and the tests use the protocol only through the names exported here.
"""

from . import codec, limits
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

__all__ = [
    "AuthenticationFailed",
    "FingerprintError",
    "FrameTooLarge",
    "IdentityKey",
    "LocalIdentity",
    "LocalProtocolError",
    "MalformedMessage",
    "PeerId",
    "ProfileCard",
    "ProtocolError",
    "PublicIdentity",
    "RemoteProtocolError",
    "ReplayDetected",
    "StaticCert",
    "VersionMismatch",
    "check_rpps",
    "codec",
    "fingerprint_prefix",
    "limits",
    "normalize_fingerprint",
]
