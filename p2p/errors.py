"""Errors of the pli daemon and CLI, written for the person who will read them.

::

    PliError                    base: ``message`` says what happened and what to do
    ├── ConfigError             the home folder or config file is not usable
    ├── KeystoreError           keys missing, unreadable, too open, wrong passphrase
    ├── StorageError            the database or the document folder failed
    ├── DaemonNotRunning        the CLI could not reach the daemon (exit 3)
    ├── PeerUnknown             no paired peer matches what was typed
    ├── AmbiguousPeer           several peers match a prefix
    ├── PeerUnreachable         a peer could not be reached now (documents stay queued)
    ├── NotPaired               a peer that is not paired tried to talk to us
    ├── PairingFailed           wrong code, expired code, refused confirmation (exit 4)
    ├── DocumentUnknown         no document matches the id typed
    ├── BadInput                a value typed on the command line or sent to the API
    ├── NameRefused             a name that could be taken for another peer or a key
    ├── TokenRefused            no API token, or one unknown, expired or revoked (401)
    ├── ScopeMissing            an API token without the scope a route needs (403)
    └── TokenUnknown            no API token has that name or id

``exit_code`` follows ../docs/cli contract: 1 user-facing failure, 3 daemon not
running, 4 security failure. ``code`` is the stable string the local API returns.
"""

from __future__ import annotations


class PliError(Exception):
    """A failure a person can act on. ``str(error)`` is the sentence to show; ``french``
    the same in French where one was written (the page shows it; the local API sends it
    as ``french``), else None (the page then says the ``code``'s sentence)."""

    exit_code = 1
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, french: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The same sentence in French, for the practice's page (the CLI speaks English).
        self.french = french


class ConfigError(PliError):
    code = "config"


class KeystoreError(PliError):
    code = "keystore"


class StorageError(PliError):
    code = "storage"
    http_status = 500


class DaemonNotRunning(PliError):
    exit_code = 3
    code = "daemon-not-running"


class PeerUnknown(PliError):
    code = "peer-unknown"
    http_status = 404


class AmbiguousPeer(PliError):
    code = "peer-ambiguous"


class PeerUnreachable(PliError):
    code = "peer-unreachable"
    http_status = 503


class NotPaired(PliError):
    exit_code = 4
    code = "not-paired"
    http_status = 403


class PairingFailed(PliError):
    """A pairing ended without a peer. ``reason`` is the reason code
    (``protocol.PairingReason``); the exit code follows from it: 4 when the
    failure may mean an attack (``protocol.is_security_reason``), 1 otherwise."""

    exit_code = 4
    code = "pairing-failed"
    http_status = 403

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        if reason is not None:
            from protocol import is_security_reason

            self.exit_code = 4 if is_security_reason(reason) else 1


class DocumentUnknown(PliError):
    code = "document-unknown"
    http_status = 404


class BadInput(PliError):
    code = "bad-input"


class SecurityFailure(PliError):
    """A signature or key check failed on something a person asked us to trust."""

    exit_code = 4
    code = "security"
    http_status = 422


class NameRefused(PliError):
    """A peer's name that could be mistaken for another peer, this practice or a key."""

    code = "name-refused"
    http_status = 409


class TokenRefused(PliError):
    """The local API refused a token: none, unknown, expired or revoked (HTTP 401).

    ``code`` says which (``token-missing``, ``token-invalid``, ``token-expired``,
    ``token-revoked``), so the software holding the token can tell its user.
    """

    exit_code = 4
    code = "token-refused"
    http_status = 401

    def __init__(self, message: str, *, code: str = "token-refused") -> None:
        super().__init__(message)
        self.code = code


class ScopeMissing(PliError):
    """A valid token without the scope the route needs (HTTP 403)."""

    exit_code = 4
    code = "scope-missing"
    http_status = 403


class TokenUnknown(PliError):
    code = "token-unknown"
    http_status = 404
