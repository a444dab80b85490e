"""Which scope each route of the local API needs: the one table, read by ``access.py``.

A token made with ``pli api-token create --scope send,inbox:read`` may call the
routes whose scope is ``send`` or ``inbox:read``, and no other. Two entries are
not scopes a token can be given:

- ``OWNER``: only the person running pli, over the unix socket with no token
  (the CLI, the page): making tokens, the page's login links (which would open
  everything), the key's passphrase and the profile peers are sent;
- ``ANY``: any valid token (the API's own description).

A route added to ``server.build_app`` without a line here is refused to every
token (``access.py`` fails closed), and tests/p2p/test_api_tokens.py names it.
Keys are (method, path template as in the router); a ``HEAD`` is its ``GET``.
"""

from __future__ import annotations

OWNER = "owner"
ANY = "any"

#: The scopes a token can hold, with what each lets software do (``pli api-token``
#: shows these words; docs/api.md lists them).
SCOPES: dict[str, str] = {
    "status": "see whether the daemon runs, this practice's identity and counts",
    "peers:read": "list the paired colleagues and the pairings in progress",
    "peers:write": "rename or remove a paired colleague",
    "pairing": "pair with a new colleague (by code, fingerprint or card)",
    "send": "send documents (uploads included), retry or cancel a sending",
    "outbox:read": "list the documents sent and their receipts",
    "inbox:read": "list received documents and read them (files, receipts, proofs)",
    "inbox:write": "say a received document was exported, read, or taken into the record",
    "events": "follow documents arriving and receipts coming back",
    "mailboxes:read": "see the NATS mailboxes joined and this practice's member key",
    "mailboxes:write": "join or leave a NATS mailbox",
    "revocations:read": "list the revocations this daemon holds",
    "revocations:write": "revoke an identity (this practice's own included)",
}

ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/v1/openapi.json"): ANY,
    ("GET", "/v1/status"): "status",
    ("GET", "/v1/identity"): "status",
    ("GET", "/v1/profile"): "status",
    ("POST", "/v1/profile"): OWNER,  # a new signed card goes to every peer
    ("POST", "/v1/passphrase"): OWNER,
    ("GET", "/v1/peers"): "peers:read",
    ("POST", "/v1/peers"): "pairing",
    ("DELETE", "/v1/peers/{peer}"): "peers:write",
    ("POST", "/v1/peers/{peer}/name"): "peers:write",
    ("POST", "/v1/peers/{peer}/accept-name"): "peers:write",
    ("POST", "/v1/documents"): "send",
    ("POST", "/v1/uploads"): "send",
    ("DELETE", "/v1/uploads/{upload}"): "send",
    ("GET", "/v1/events"): "events",
    ("POST", "/v1/web/link"): OWNER,
    ("POST", "/v1/web/sign-in"): OWNER,  # the page checks a person's password
    ("GET", "/v1/outbox"): "outbox:read",
    ("POST", "/v1/outbox/{doc}/{peer}/retry"): "send",
    ("POST", "/v1/outbox/{doc}/{peer}/cancel"): "send",
    ("GET", "/v1/inbox"): "inbox:read",
    ("GET", "/v1/inbox/page"): "inbox:read",
    ("GET", "/v1/documents/{doc}"): "inbox:read",
    ("GET", "/v1/documents/{doc}/files/{index}"): "inbox:read",
    ("GET", "/v1/documents/{doc}/receipts"): "inbox:read",
    ("GET", "/v1/documents/{doc}/evidence"): "inbox:read",
    ("POST", "/v1/documents/{doc}/exported"): "inbox:write",
    ("POST", "/v1/documents/{doc}/integrated"): "inbox:write",
    ("POST", "/v1/documents/{doc}/read"): "inbox:write",
    ("POST", "/v1/pair/invite"): "pairing",
    ("DELETE", "/v1/pair/invite/{nameplate}"): "pairing",
    ("POST", "/v1/pair/accept"): "pairing",
    ("GET", "/v1/pair/pending"): "peers:read",
    ("GET", "/v1/pair/{key}"): "peers:read",
    ("POST", "/v1/pair/{key}/confirm"): "pairing",
    ("POST", "/v1/peers/add"): "pairing",
    ("POST", "/v1/peers/accept"): "pairing",
    ("POST", "/v1/revocations"): "revocations:write",
    ("GET", "/v1/revocations"): "revocations:read",
    ("GET", "/v1/mailboxes"): "mailboxes:read",
    ("GET", "/v1/mailboxes/key"): "mailboxes:read",
    ("POST", "/v1/mailboxes"): "mailboxes:write",
    ("DELETE", "/v1/mailboxes"): "mailboxes:write",
    ("GET", "/v1/api-tokens"): OWNER,
    ("POST", "/v1/api-tokens"): OWNER,
    ("DELETE", "/v1/api-tokens/{token}"): OWNER,
}


def scope_of(method: str, template: str) -> str:
    """The scope a route needs; ``OWNER`` for a route missing from the table."""
    method = "GET" if method == "HEAD" else method
    return ROUTE_SCOPES.get((method, template), OWNER)


def parse_scopes(text: str | list[str]) -> tuple[str, ...]:
    """``"send,inbox:read"`` (or a list) as the sorted scopes; ``ValueError`` names a
    wrong one."""
    items = text.split(",") if isinstance(text, str) else text
    wanted = {item.strip() for item in items if item.strip()}
    if not wanted:
        raise ValueError("Give at least one scope, e.g. --scope send,inbox:read.")
    unknown = sorted(wanted - SCOPES.keys())
    if unknown:
        raise ValueError(f"“{unknown[0]}” is not a scope. The scopes are: {', '.join(SCOPES)}.")
    return tuple(sorted(wanted))
