"""The protocol's exception tree.

::

    ProtocolError                   base, never raised directly
    ├── LocalProtocolError          we misused the API: a bug on our side
    │   └── ContentChanged          a file being sealed is not the size declared
    └── RemoteProtocolError(code)   the peer or the input is bad; ``code`` goes on the wire
        ├── MalformedMessage        bytes that do not parse as what was expected
        ├── FrameTooLarge           a length over a limit in ``protocol.limits``
        ├── VersionMismatch         the peer speaks another protocol version
        ├── ReplayDetected          a message or document seen before
        └── AuthenticationFailed    a signature, MAC, key or identity check failed

Every decoder in ``protocol/`` either returns a value or raises a
``RemoteProtocolError``; exceptions from PyNaCl, msgpack or spake2 never escape
this package. ``AuthenticationFailed`` never says which check failed: the
difference would help an attacker and does not help the person reading it.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by ``protocol``."""


class LocalProtocolError(ProtocolError):
    """The caller used the API wrongly (a bug in our code, not in the peer's input)."""


class ContentChanged(LocalProtocolError):
    """A content source gave fewer or more bytes than its ``FileEntry`` declared
    (the file changed while it was sealed): the envelope produced so far is void."""


class RemoteProtocolError(ProtocolError):
    """The peer, or bytes that came from outside, broke the protocol.

    ``code`` is a short stable string that may be sent back to the peer.
    """

    code = "protocol-error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code


class MalformedMessage(RemoteProtocolError):
    """The data does not have the expected form."""

    code = "malformed"


class FrameTooLarge(RemoteProtocolError):
    """A size on the wire is over one of the protocol's limits."""

    code = "too-large"


class VersionMismatch(RemoteProtocolError):
    """The peer speaks a protocol version we do not."""

    code = "version"


class ReplayDetected(RemoteProtocolError):
    """A message or document was seen before where it must be new."""

    code = "replay"


class AuthenticationFailed(RemoteProtocolError):
    """A cryptographic check failed."""

    code = "authentication"

    def __init__(self, message: str = "authentication failed") -> None:
        super().__init__(message)
