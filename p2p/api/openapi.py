"""The local API's OpenAPI 3.1 description: served at ``GET /v1/openapi.json``, kept in
docs/openapi.json.

``OPERATIONS`` below names every route of ``server.build_app`` once: its summary, the
body it takes (a struct of ``bodies.py``), its query parameters, and its answer (a
struct of ``shapes.py``, or bytes). The JSON Schemas of bodies and answers are
generated from those structs by ``msgspec.json.schema_components``; the rest (paths,
parameters, security, the error answer every route can give) is written here by
hand. Who may call a route is ``scopes.py``'s table, shown as each operation's
``security`` (the scope a token needs) and ``x-pli-scope``.

tests/p2p/test_openapi.py checks that every route is described (and nothing else),
that docs/openapi.json is this document, and runs schemathesis against a real
daemon. After changing a route: ``python -m p2p.api.openapi docs/openapi.json``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec

from p2p.api import bodies, shapes
from p2p.api.scopes import ANY, OWNER, SCOPES, scope_of
from protocol import KINDS

JSON = "application/json"


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Op:
    """One route: what it does, what it takes, what it answers (``status``)."""

    summary: str
    answer: Any  # a struct of shapes.py, a list of one, or None (no JSON answer)
    status: int = 200
    body: type[bodies.Body] | None = None
    query: tuple[Query, ...] = ()
    media: str = JSON  # of the answer
    raw_body: bool = False  # the request's body is bytes (an upload)
    body_required: bool = True


_STATE = "(waiting|needs-confirmation|waiting-for-peer|paired|failed)"
_STATES = f"^{_STATE}(,{_STATE})*$"
_ONE_DOC = "only this document's recipients (its full id)"
_WORDS = "words all found (any case, no accents) in the patient, subject or sender"
_REPLY = "only the answers to this document (its full id)"
_DAY = {"type": "string", "format": "date"}
_PEER = "a peer: its name here, fingerprint or peer id, or a unique prefix of one"
_DOC = "a document id (hex) or a unique prefix of at least 4 characters"
_PATH_WORDS = {
    "peer": _PEER,
    "doc": _DOC,
    "index": "the file's number in the document (0 for the first)",
    "nameplate": "the invitation's nameplate (the digits before the dash of its code)",
    "key": "a pairing attempt's id, or an invitation's nameplate",
    "token": "a token's name or id",
    "upload": "an upload's id, as POST /v1/uploads answered it",
}

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/v1/openapi.json"): Op("This description of the API.", shapes.OpenApi),
    ("GET", "/v1/status"): Op(
        "Is the daemon running; peers, documents and disk, counted.", shapes.Status
    ),
    ("GET", "/v1/identity"): Op(
        "This practice's profile, fingerprint and signed card.", shapes.Identity
    ),
    ("GET", "/v1/profile"): Op(
        "This practice's profile, and whether its key has a passphrase.", shapes.Profile
    ),
    ("POST", "/v1/profile"): Op(
        "Change the profile; a new signed card goes to every peer.",
        shapes.ChangedProfile,
        body=bodies.ProfileChange,
    ),
    ("POST", "/v1/passphrase"): Op(
        "Add, change or remove the key's passphrase.",
        shapes.Protection,
        body=bodies.PassphraseChange,
    ),
    ("GET", "/v1/peers"): Op("The paired (and revoked) peers.", list[shapes.Peer]),
    ("POST", "/v1/peers"): Op(
        "Trust a peer from its signed card.", shapes.Peer, 201, bodies.NewPeer
    ),
    ("DELETE", "/v1/peers/{peer}"): Op("Forget a peer; its documents stay.", shapes.Removed),
    ("POST", "/v1/peers/{peer}/name"): Op(
        "Address a peer by a name of this practice's.", shapes.Peer, body=bodies.PeerName
    ),
    ("POST", "/v1/peers/{peer}/accept-name"): Op(
        "Take the new name a peer's card carries.", shapes.Peer
    ),
    ("POST", "/v1/documents"): Op(
        "Seal and queue one document for one or more peers.", shapes.Queued, 202, bodies.NewDocument
    ),
    ("POST", "/v1/uploads"): Op(
        "Store a file's bytes, streamed, for POST /v1/documents.", shapes.Upload, 201, raw_body=True
    ),
    ("DELETE", "/v1/uploads/{upload}"): Op(
        "Release an upload no document will name (its form refused or abandoned).",
        shapes.ReleasedUpload,
    ),
    ("GET", "/v1/events"): Op(
        "Server-sent events: documents received, queued, delivered, integrated, read; names.",
        None,
        media="text/event-stream",
    ),
    ("POST", "/v1/web/link"): Op(
        "A one-time login link for the practice's page.", shapes.Link, 201
    ),
    ("POST", "/v1/web/sign-in"): Op(
        "Check a person's name and password for the page (web_tls).",
        shapes.SignedIn,
        body=bodies.SignIn,
    ),
    ("GET", "/v1/outbox"): Op(
        "Documents sent, one entry per recipient, with their state.",
        list[shapes.Sent],
        query=(Query("id", {"type": "string", "pattern": "^[0-9a-fA-F]{32,64}$"}, _ONE_DOC),),
    ),
    ("GET", "/v1/inbox/page"): Op(
        "One page of the inbox, newest first, searched inside the sealed index.",
        shapes.InboxPage,
        query=(
            Query("q", {"type": "string"}, _WORDS),
            Query("kind", {"enum": list(KINDS)}, "only documents of this kind"),
            Query("since", _DAY, "received on or after this day (YYYY-MM-DD)"),
            Query("until", _DAY, "received on or before this day (YYYY-MM-DD)"),
            Query("in_reply_to", {"type": "string", "pattern": "^[0-9a-fA-F]{32,64}$"}, _REPLY),
            Query("offset", {"type": "integer", "minimum": 0, "maximum": 10**7}, "entries skipped"),
            Query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "entries (50)"),
        ),
    ),
    ("POST", "/v1/outbox/{doc}/{peer}/retry"): Op(
        "Try this recipient again now.", shapes.OutboxChange
    ),
    ("POST", "/v1/outbox/{doc}/{peer}/cancel"): Op(
        "Never send this document to this recipient.", shapes.OutboxChange
    ),
    ("GET", "/v1/inbox"): Op(
        "Documents received, from the sealed inbox index.", list[shapes.Received]
    ),
    ("GET", "/v1/documents/{doc}"): Op(
        "One document: its signed fields and its recipients' receipts.", shapes.Document
    ),
    ("GET", "/v1/documents/{doc}/files/{index}"): Op(
        "The decrypted bytes of one file, once the envelope verified.",
        None,
        media="application/octet-stream",
    ),
    ("GET", "/v1/documents/{doc}/receipts"): Op(
        "The document's signed receipts, checkable offline.", list[shapes.SignedReceipt]
    ),
    ("GET", "/v1/documents/{doc}/evidence"): Op(
        "The signed proof `pli verify` checks offline.", shapes.Evidence
    ),
    ("POST", "/v1/documents/{doc}/exported"): Op(
        "Note that a received document was exported.", shapes.Exported
    ),
    ("POST", "/v1/documents/{doc}/integrated"): Op(
        "The practice software took a received document in, or could not (error_code).",
        shapes.Noted,
        body=bodies.Integrated,
        body_required=False,
    ),
    ("POST", "/v1/documents/{doc}/read"): Op("A person opened a received document.", shapes.Noted),
    ("POST", "/v1/pair/invite"): Op(
        "A one-time pairing code.", shapes.NewInvitation, 201, bodies.Invitation
    ),
    ("DELETE", "/v1/pair/invite/{nameplate}"): Op("Withdraw an invitation.", shapes.Cancelled),
    ("POST", "/v1/pair/accept"): Op(
        "Join an invitation by its code.", shapes.Dialling, 202, bodies.Acceptance
    ),
    ("GET", "/v1/pair/pending"): Op("Pairings waiting for a person.", list[shapes.Pending]),
    ("GET", "/v1/pair/{key}"): Op(
        "Where a pairing stands (a long poll with timeout).",
        shapes.Pairing,
        query=(
            Query(
                "timeout",
                {"type": "number", "minimum": 0, "maximum": 60},
                "seconds to wait for a change (at most 60)",
            ),
            Query(
                "until",
                {
                    "type": "string",
                    "pattern": _STATES,
                },
                "the states to wait for, comma-separated",
            ),
        ),
    ),
    ("POST", "/v1/pair/{key}/confirm"): Op(
        "The person's answer about the check code.", shapes.Pairing, body=bodies.Confirmation
    ),
    ("POST", "/v1/peers/add"): Op(
        "Pair by fingerprint: ask the practice at an address.",
        shapes.Attempt,
        202,
        bodies.FingerprintRequest,
    ),
    ("POST", "/v1/peers/accept"): Op(
        "Accept or refuse a pairing request.", shapes.Pairing, body=bodies.RequestAnswer
    ),
    ("POST", "/v1/revocations"): Op(
        "Revoke an identity and push the statement.", shapes.Revoked, body=bodies.RevocationRequest
    ),
    ("GET", "/v1/revocations"): Op(
        "The revocation statements this daemon holds.", list[shapes.HeldRevocation]
    ),
    ("GET", "/v1/mailboxes"): Op(
        "The NATS mailboxes joined, their state, what waits.", list[shapes.Mailbox]
    ),
    ("GET", "/v1/mailboxes/key"): Op(
        "This practice's member key for the mailbox server.", shapes.MemberKey
    ),
    ("POST", "/v1/mailboxes"): Op("Join a NATS mailbox.", shapes.Joined, 201, bodies.NewMailbox),
    ("DELETE", "/v1/mailboxes"): Op(
        "Leave a NATS mailbox.",
        shapes.Left,
        query=(
            Query(
                "url",
                {"type": "string", "minLength": 1},
                "the mailbox's nats:// URL",
                required=True,
            ),
        ),
    ),
    ("GET", "/v1/api-tokens"): Op(
        "The tokens made (never the tokens themselves).", list[shapes.Token]
    ),
    ("POST", "/v1/api-tokens"): Op(
        "Make a token; the answer is the only time it is shown.",
        shapes.MadeToken,
        201,
        bodies.NewToken,
    ),
    ("DELETE", "/v1/api-tokens/{token}"): Op("Revoke a token at once.", shapes.RevokedToken),
}

_INFO = {
    "title": "pli local API",
    "version": "1",
    "description": (
        "The daemon's JSON API for the `pli` command, the practice's page and other "
        "practice software (docs/api.md). On the unix socket `<home>/api.sock` the user "
        "running pli needs no token; other software presents a token made by "
        "`pli api-token create` as `Authorization: Bearer pli_...`, on the socket or on "
        "the loopback TCP port of `api_listen`, and may call the routes of its scopes "
        "(each operation's `security` and `x-pli-scope`; `owner` routes take no token). "
        'Every error is `{"error": {"code", "message"}}` with a sentence for a person; '
        "answers may gain fields, which a client ignores."
    ),
}
_SERVERS = [
    {
        "url": "http://127.0.0.1:7719",
        "description": "the loopback TCP port (api_listen), with a token",
    },
    {"url": "http://pli", "description": "the unix socket <home>/api.sock (curl --unix-socket)"},
]
_TOKEN = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token from `pli api-token create`; the scopes listed are the ones it needs.",
}
_ERRORS = "An error (4xx, 5xx): its `code` (docs/api.md lists them) and a sentence."


def _parameters(path: str, op: Op) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PATH_WORDS[name],
            "schema": {"type": "string", "minLength": 1},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]
    for query in op.query:
        found.append(
            {
                "name": query.name,
                "in": "query",
                "required": query.required,
                "description": query.description,
                "schema": query.schema,
            }
        )
    return found


def _answer(op: Op, schema: dict[str, Any] | None) -> dict[str, Any]:
    if op.media == JSON:
        content = {JSON: {"schema": schema}}
    else:
        content = {op.media: {"schema": {"type": "string"}}}
    return {"description": op.summary, "content": content}


def _operation(
    method: str, path: str, op: Op, schemas: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    scope = scope_of(method, path)
    item: dict[str, Any] = {
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"),
        "summary": op.summary,
        "tags": [path.split("/")[2].removesuffix(".json")],
        "x-pli-scope": scope,
    }
    if scope == OWNER:
        item["description"] = "Owner only: the user running pli, on the unix socket, no token."
    else:
        item["security"] = [{"token": [] if scope == ANY else [scope]}]
    parameters = _parameters(path, op)
    if parameters:
        item["parameters"] = parameters
    if op.body is not None:
        content = {JSON: {"schema": schemas[op.body]}}
        item["requestBody"] = {"required": op.body_required, "content": content}
    elif op.raw_body:
        content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        item["requestBody"] = {"required": True, "content": content}
    error = {"description": _ERRORS, "content": {JSON: {"schema": schemas[shapes.Error]}}}
    answer = _answer(op, schemas.get(op.answer) if op.answer is not None else None)
    item["responses"] = {str(op.status): answer, "default": error}
    return item


@cache
def _document() -> str:
    kinds: list[Any] = [shapes.Error]
    for op in OPERATIONS.values():
        for kind in (op.answer, op.body):
            if kind is not None and kind not in kinds:
                kinds.append(kind)
    refs, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}"
    )
    schemas = dict(zip(kinds, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, schemas)
    document = {
        "openapi": "3.1.0",
        "info": _INFO,
        "servers": _SERVERS,
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"token": _TOKEN},
        },
        "x-pli-scopes": dict(SCOPES),
    }
    return json.dumps(document, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the local API (a fresh copy each call)."""
    described: dict[str, Any] = json.loads(_document())
    return described


def text() -> str:
    """docs/openapi.json's exact text."""
    return _document()


def main(argv: list[str]) -> int:
    """``python -m p2p.api.openapi [FILE]``: print the description, or write it to FILE."""
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8") as handle:
            handle.write(text())
        return 0
    sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
