"""Fixed identities and one fixed receipt's fields, shared by the protocol tests.

Each identity's seeds are n, n+1, n+2 repeated, so signatures are the same in
every run (the known-answer tests and golden vectors pin them).
"""

from __future__ import annotations

from protocol import LocalIdentity, Receipt


def person(n: int) -> LocalIdentity:
    return LocalIdentity.from_secrets(
        bytes([n]) * 32, bytes([n + 1]) * 32, bytes([n + 2]) * 32, not_after=2_000_000_000
    )


ALICE, BOB, CAROL, MALLORY = person(10), person(20), person(30), person(40)
DOC = bytes(range(16))
DIGEST = bytes(range(32, 64))
NOW = 1_764_000_000


def receipt(
    status: str = "delivered", *, by: LocalIdentity = BOB, now: int = NOW, doc: bytes = DOC
) -> Receipt:
    """``by``'s receipt to ALICE for document ``doc`` (envelope digest ``DIGEST``)."""
    return Receipt.create(
        by.identity,
        document_id=doc,
        envelope_digest=DIGEST,
        sender=ALICE.public,
        status=status,
        now=now,
    )
