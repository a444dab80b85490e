"""The request bodies of the local API, as typed structs (docs/api.md lists them).

``decode`` turns the bytes of a request into one of these, or raises ``BadInput``
with a sentence naming the field to fix: the same sentences whatever the mistake
(not JSON, not an object, a field missing, of the wrong type, or unknown: a field
the daemon does not know is refused, not silently ignored). Checks a type cannot
say (a known kind, a lifetime in range, a file the daemon can read) stay with the
handler or the service that owns them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

import msgspec

from p2p.errors import BadInput

_AT = re.compile(r" - at `\$(?P<at>[^`]*)`$")
_NAMED = re.compile(r"`(?P<name>[^`]+)`")
_INDEX = re.compile(r"\[(\d+|\.\.\.)\]")
_KIND_WORDS = {"str": "text", "bool": "true or false"}


class Body(msgspec.Struct, forbid_unknown_fields=True):
    #: Field path (``files[].path``) -> the sentence when it is wrong; else one is
    #: made from the type (``“code” must be text.``).
    messages: ClassVar[dict[str, str]] = {}


class NewPeer(Body):
    """``POST /v1/peers``: trust a peer from its signed card (base64)."""

    card: str
    address: str | None = None


class PeerName(Body):
    """``POST /v1/peers/{PEER}/name``: the name this practice addresses the peer by."""

    name: str
    messages: ClassVar[dict[str, str]] = {"name": "Give the new name as text in “name”."}


class ProfileChange(Body):
    """``POST /v1/profile``: the profile fields to change (a field left out is kept)."""

    name: str | None = None
    profession: str | None = None
    rpps: str | None = None
    practice: str | None = None


class PassphraseChange(Body):
    """``POST /v1/passphrase``: the ``current`` passphrase (if any) and the ``new`` one
    (left out or empty: no passphrase)."""

    current: str | None = None
    new: str | None = None


class Integrated(Body):
    """``POST /v1/documents/{ID}/integrated``: taken in, or not (an error code, e.g. 902)."""

    error_code: int | None = None
    messages: ClassVar[dict[str, str]] = {
        "error_code": "Give “error_code” as a number, e.g. 902 (unknown patient), or leave it out."
    }


class SignIn(Body):
    """``POST /v1/web/sign-in``: a person's name and password for the page (``web_tls``)."""

    name: str
    password: str


class NewMailbox(Body):
    """``POST /v1/mailboxes``: join a NATS mailbox (a .creds file's text, if it needs one)."""

    url: str
    credentials: str | None = None


class File(Body):
    """A file to send: a ``path`` the daemon reads, or an ``upload`` streamed before."""

    path: str | None = None
    upload: str | None = None
    name: str | None = None
    type: str | None = None


class NewDocument(Body):
    """``POST /v1/documents``: one envelope for one or more peers."""

    to: str | list[str]
    files: list[File] = []
    kind: str | None = None
    metadata: dict[str, str] | None = None
    messages: ClassVar[dict[str, str]] = {
        "to": "Say who to send to: “to” is a peer or a list of peers.",
        "to[]": "Say who to send to: “to” is a peer or a list of peers.",
        "files": "Give at least one file to send.",
        "files[]": "Each file is an object with a “path” or an “upload”.",
        "metadata": "“metadata” maps names to text.",
        "metadata[]": "“metadata” maps names to text.",
    }


class Invitation(Body):
    """``POST /v1/pair/invite``: a one-time code, for ``expires`` seconds."""

    expires: float | msgspec.UnsetType = msgspec.UNSET
    yes: bool = False
    messages: ClassVar[dict[str, str]] = {
        "expires": "An invitation lasts between 10 seconds and 24 hours.",
    }


class Acceptance(Body):
    """``POST /v1/pair/accept``: join an invitation by its code."""

    code: str
    address: str | None = None
    yes: bool = False


class Confirmation(Body):
    """``POST /v1/pair/{key}/confirm``: the person's answer about the check code."""

    yes: bool = False


class FingerprintRequest(Body):
    """``POST /v1/peers/add``: ask the practice at ``address`` (none: through the
    mailboxes) to pair, if it is ``fingerprint``."""

    fingerprint: str
    address: str | None = None


class RequestAnswer(Body):
    """``POST /v1/peers/accept``: answer a pairing request (anything but ``false`` accepts)."""

    peer: str
    yes: Any = True


class RevocationRequest(Body):
    """``POST /v1/revocations``: a printed ``statement``, or ``"self": true`` (our own)."""

    statement: Any = None  # checked by the handler: its sentence names both ways
    self_: Any = msgspec.field(default=None, name="self")
    addresses: list[str] | None = None
    messages: ClassVar[dict[str, str]] = {
        "addresses": "“addresses” is a list of host:port.",
        "addresses[]": "“addresses” is a list of host:port.",
    }


class NewToken(Body):
    """``POST /v1/api-tokens``: a token for other software, with its scopes."""

    name: str
    scopes: list[str]
    expires_at: int | None = None
    messages: ClassVar[dict[str, str]] = {
        "name": "Name the token after the software it is for, in “name” (e.g. “LGC”).",
        "scopes": 'Give the token\'s scopes as a list of text, e.g. ["send", "inbox:read"].',
        "scopes[]": 'Give the token\'s scopes as a list of text, e.g. ["send", "inbox:read"].',
        "expires_at": "“expires_at” is a time in seconds since 1970 (UTC), or null.",
    }


B = TypeVar("B", bound=Body)


def decode(data: bytes, kind: type[B]) -> B:
    """The body ``kind`` read from ``data``, or ``BadInput`` saying what to change."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise BadInput(_sentence(kind, str(exc))) from None
    except msgspec.DecodeError:
        raise BadInput("The request body must be JSON.") from None


def _sentence(kind: type[Body], error: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.files[0].path``` in our words."""
    found = _AT.search(error)
    at = _INDEX.sub("[]", found["at"]).lstrip(".") if found else ""
    what = error[: found.start()] if found else error
    named = _NAMED.search(what)
    name = named["name"] if named else ""
    if what.startswith("Object contains unknown field"):
        return f"“{name}” is not a field of this request (docs/api.md lists them)."
    expected = name.removesuffix(" | null")
    if what.startswith("Object missing required field"):
        at, expected = f"{at}.{name}" if at else name, "str"  # every required field is text
    elif not at:
        return "The request body must be a JSON object."
    if at in kind.messages:
        return kind.messages[at]
    field = at.rpartition(".")[2]
    words = _KIND_WORDS.get(expected)
    return f"“{field}” must be {words}." if words else f"“{field}” has the wrong type."
