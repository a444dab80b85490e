"""The answers of the local API, as typed structs: what ``openapi.py`` describes.

The handlers build their answers as dicts (in the services); these structs say
the shape a client may rely on, and msgspec turns them into the JSON Schemas of
docs/openapi.json. A field that is always there has no default (it is
``required``); ``X | None`` is ``null`` when the daemon has nothing to say.
Answers may gain fields: a client ignores what it does not know. The
schemathesis test (tests/p2p/test_openapi.py) checks a real daemon's answers
against these.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Shape(msgspec.Struct, kw_only=True):
    """An answer of the API (documentation only: nothing is decoded with these)."""


class ErrorDetail(Shape):
    code: str
    message: str
    french: str | None = None  # the same sentence in French, where one is written


class Error(Shape):
    """Every error: a stable ``code`` and a sentence a person can act on."""

    error: ErrorDetail


class Disk(Shape):
    free: int
    reserve: int
    quarantine: int
    received: int
    sent: int


class Limits(Shape):
    peer_quota: int
    peer_documents_per_hour: int


class Refusals(Shape):
    total: int
    by_code: dict[str, int]
    last_code: str | None
    last_peer: str | None
    last_peer_name: str | None
    last_at: float | None


class TcpPort(Shape):
    address: str | None
    error: str | None


class Page(Shape):
    """Where the practice's page is (``url`` null and ``failure`` when it is not served)."""

    url: str | None
    listen: str | None = None
    tls_fingerprint: str | None = None
    sign_in: str | None = None
    failure: str | None = None


class SignsReceipts(Shape):
    """Which later receipts this practice signs for its senders (config.toml)."""

    integrated: bool
    read: bool


class Mailbox(Shape):
    url: str
    state: str
    message: str
    waiting_in: int
    waiting_out: int
    credentials: bool


class Status(Shape):
    running: bool
    name: str
    fingerprint: str
    peer_id: str
    peer_port: int
    peers: int
    peers_online: int
    pending_names: int
    uptime: float
    queued: int
    delivered: int
    inbox: int
    inbox_new: int
    integrated: int
    not_integrated: int
    read: int
    receipts_unsent: int
    signs_receipts: SignsReceipts
    revoked_since: int | None
    revocation_made_at: int | None
    mailboxes: list[Mailbox]
    disk: Disk
    limits: Limits
    refusals: Refusals
    api_tcp: TcpPort
    page: Page | None = None


class Identity(Shape):
    name: str
    profession: str
    rpps: str
    practice: str
    fingerprint: str
    peer_id: str
    card: str
    address: str


class Profile(Identity):
    seq: int
    protected: bool


class ChangedProfile(Identity):
    seq: int
    sent_to: int


class Protection(Shape):
    protected: bool


class Peer(Shape):
    peer_id: str
    name: str
    card_name: str
    pending_name: str | None
    pending_since: int | None
    profession: str
    rpps: str
    practice: str
    fingerprint: str
    state: str
    online: bool
    addresses: list[str]
    mailboxes: list[str] | None
    last_seen: int | None
    paired_at: int
    revoked_since: int | None
    revocation_made_at: int | None


class Removed(Shape):
    removed: str
    name: str


class FileEntry(Shape):
    name: str
    size: int
    type: str


class Described(Shape):
    """A document's signed fields."""

    kind: str
    created_at: int
    sender: str
    recipients: list[str]
    files: list[FileEntry]
    metadata: dict[str, str]


class Received(Described):
    id: str
    from_: str = msgspec.field(name="from")
    from_name: str
    size: int
    received_at: int
    exported_at: int | None
    sender_revoked_since: int | None
    signed_after_revocation: bool


class Later(Shape):
    """What a recipient said after delivery: it took the document in (or could not,
    with an MSSanté-style ``code``), or a person read it."""

    time: int
    via: str | None = None
    status: str | None = None
    code: int | None = None
    label: str | None = None
    label_en: str | None = None


class InboxPage(Shape):
    """One page of the inbox, newest first, and the subjects of the documents it answers."""

    total: int
    unread: int
    offset: int
    limit: int
    documents: list[Received]
    subjects: dict[str, str] = {}


class Sent(Shape):
    id: str
    to: str
    to_name: str
    kind: str
    subject: str
    size: int
    created_at: int
    state: str
    sent_bytes: int | None
    attempts: int
    last_error: str | None
    #: Why ``last_error``: pli's reason code (``storage/failures.py``); None before them.
    error_code: str | None
    receipt_time: int | None
    receipt_status: str | None
    via: str | None
    receipt_via: str | None
    integrated: Later | None = None
    read: Later | None = None


class Recipient(Shape):
    peer: str
    state: str
    time: int | None
    status: str | None
    receipt: str | None
    integrated: Later | None = None
    read: Later | None = None


class Document(Described):
    id: str
    direction: str
    receipts: list[Recipient]
    sender_revoked_since: int | None
    signed_after_revocation: bool


class SignedReceipt(Shape):
    status: str
    time: int
    recipient: str
    receipt: str


class HashedFile(Shape):
    name: str
    sha256: str


class Evidence(Shape):
    id: str
    evidence: str
    signer_fingerprint: str
    files: list[HashedFile]


class Noted(Shape):
    """A later receipt noted: ``receipt`` says what was done with it (``queued``,
    ``already``, ``off``, ``not-paired``, ``not-received``)."""

    id: str
    status: str
    receipt: str
    code: int | None = None
    label: str | None = None


class Exported(Shape):
    id: str
    exported_at: int


class Queued(Shape):
    id: str
    to: list[str]


class Upload(Shape):
    upload: str
    size: int


class ReleasedUpload(Shape):
    upload: str
    released: bool


class OutboxChange(Shape):
    id: str
    to: str
    state: str


class Link(Shape):
    url: str
    tls_fingerprint: str | None = None


class SignedIn(Shape):
    name: str


class NewInvitation(Shape):
    id: str
    code: str
    nameplate: str
    expires_at: float
    address: str | None


class Cancelled(Shape):
    cancelled: str


class Dialling(Shape):
    id: str
    address: str


class Attempt(Shape):
    id: str


class Pending(Shape):
    id: str
    kind: str
    role: str
    sas: str
    peer_name: str
    fingerprint: str
    profession: str
    practice: str
    rpps: str


class Pairing(Shape):
    id: str
    kind: str
    role: str
    state: str
    nameplate: str | None
    expires_at: float | None
    sas: str | None
    peer_name: str | None
    fingerprint: str | None
    peer_id: str | None
    message: str | None
    reason: str | None


class Push(Shape):
    address: str
    peer_id: str | None
    result: str
    name: str | None


class Revoked(Shape):
    revoked: str
    fingerprint: str
    self_: bool = msgspec.field(name="self")
    made_at: int
    pushed: list[Push]


class HeldRevocation(Shape):
    peer_id: str
    fingerprint: str
    made_at: int
    revoked_since: int
    source: str


class MemberKey(Shape):
    nkey: str
    box: str
    member: str


class CardSent(Shape):
    """Our new signed card (it lists the mailboxes joined) and how many peers it goes to."""

    seq: int
    sent_to: int


class Joined(Shape):
    url: str
    credentials: bool
    card: CardSent


class Left(Shape):
    removed: str
    card: CardSent


class Token(Shape):
    id: str
    name: str
    scopes: list[str]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    state: str


class MadeToken(Token):
    token: str


class RevokedToken(Token):
    already_revoked: bool


#: The OpenAPI document itself (``GET /v1/openapi.json``): an object.
OpenApi = dict[str, Any]
