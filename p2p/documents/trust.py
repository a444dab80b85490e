"""Whose key made a signature, and does this practice trust it (``pli verify``)?

A correct signature proves only that *some* key signed: anyone can make a key of
their own and sign a letter or a prescription with it, under any name. So a
document is "valid" only when the key that signed it is one of:

- this practice's own key (``self``);
- the key of a peer this practice is paired with (``paired``);
- a key whose full fingerprint the person gave with ``--signer FP`` (``signer``),
  after checking it with the sender by another channel.

Any other key (never paired, or a peer since removed) is a ``SecurityFailure``
(exit 4) whose sentence says that anyone can make such a signature and what to do.

The decision (``judge``) reads the key's relation to this practice from the
``Keyring`` (what the home knows: ``p2p.storage.trusted`` reads it, read-only) and
decides on that relation alone, in one place: a new relation (a revoked key, for
instance) is one more case there, checked before the others.

What must not: read files or talk to the daemon (the CLI builds the keyring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from p2p.errors import BadInput, SecurityFailure

#: The relations that make a signing key trusted, strongest first. ``revoked``: a
#: peer's key since revoked, for a document that says it was signed before that.
TRUSTED = ("self", "paired", "signer", "revoked")


class KnownKey(Protocol):
    """A key the home knows (``p2p.storage.trusted.StoredKey`` is one)."""

    @property
    def peer_id(self) -> str: ...
    @property
    def identity(self) -> bytes: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def revoked_since(self) -> int | None: ...


@dataclass(frozen=True)
class Signer:
    """Who signed, as this practice knows them."""

    fingerprint: str
    peer_id: str
    relation: str  # one of TRUSTED
    name: str  # the name this practice addresses them by ("" for a --signer key)
    revoked_since: int | None = None  # "revoked": the key was revoked after this document

    def as_dict(self) -> dict[str, str | int]:
        found: dict[str, str | int] = {
            "relation": self.relation,
            "name": self.name,
            "fingerprint": self.fingerprint,
        }
        if self.revoked_since is not None:
            found["revoked_since"] = self.revoked_since
        return found


@dataclass(frozen=True)
class Keyring:
    """What this practice trusts: the keys its home knows, and the ``--signer`` keys."""

    keys: Sequence[KnownKey] = ()
    signers: frozenset[str] = field(default_factory=frozenset)  # fingerprints, no dashes
    home: Path | None = None  # where ``keys`` were read (None: no home found)

    def known(self, peer_hex: str, identity: bytes) -> KnownKey | None:
        from protocol import PublicIdentity

        for key in self.keys:
            if key.peer_id == peer_hex and PublicIdentity(key.identity) == PublicIdentity(identity):
                return key
        return None

    def name_of(self, peer_hex: str) -> str | None:
        """How this practice calls a trusted key's owner (for recipients and receipts)."""
        for key in self.keys:
            if key.peer_id == peer_hex and key.state == "self":
                return f"this practice ({key.name})" if key.name else "this practice"
            if key.peer_id == peer_hex and key.state in ("paired", "revoked"):
                return key.name
        return None


def parse_signers(given: Sequence[str]) -> frozenset[str]:
    """``--signer`` values: each a complete fingerprint, checked (a typo is named)."""
    from protocol import FingerprintError, normalize_fingerprint

    checked = set()
    for text in given:
        try:
            checked.add(normalize_fingerprint(text))
        except FingerprintError as exc:
            raise BadInput(
                f"--signer needs the complete fingerprint of the key you expect (8 groups of "
                f"5 characters, as `pli id` shows it): {exc}."
            ) from None
    return frozenset(checked)


def judge(keyring: Keyring, identity: bytes, *, signed_at: int | None = None) -> Signer:
    """The trusted signer behind ``identity``; ``SecurityFailure`` for any other key.

    A revoked key is checked first: a document it signed (``signed_at``, the
    signer's own claim) after this home learned of the revocation is refused; one
    signed before is reported with ``revoked_since``, whatever ``--signer`` says.
    """
    from protocol import PublicIdentity

    peer_id = PublicIdentity(identity).peer_id
    fingerprint = peer_id.fingerprint
    known = keyring.known(peer_id.hex, identity)
    relation = known.state if known is not None else None
    if known is not None and known.revoked_since is not None:
        if signed_at is None or signed_at > known.revoked_since:
            raise SecurityFailure(_revoked_key(fingerprint, known, known.revoked_since))
        return Signer(fingerprint, peer_id.hex, "revoked", known.name, known.revoked_since)
    match relation:
        case "self":
            return Signer(fingerprint, peer_id.hex, "self", known.name if known else "")
        case "paired":
            return Signer(fingerprint, peer_id.hex, "paired", known.name if known else "")
    if fingerprint.replace("-", "") in keyring.signers:
        return Signer(fingerprint, peer_id.hex, "signer", "")
    raise SecurityFailure(_unknown_key(fingerprint, known, keyring))


def _revoked_key(fingerprint: str, known: KnownKey, since: int) -> str:
    import time

    return (
        f"NOT VALID: the signature is correct, but it was made with the key of “{known.name}” "
        f"(fingerprint {fingerprint}), which was revoked: this practice learned it on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(since))}, and this document says it "
        "was written after that. Whoever holds that key now may not be your colleague. Do not "
        "use this document; ask your colleague, by phone, for a copy signed with their new key."
    )


def _unknown_key(fingerprint: str, known: KnownKey | None, keyring: Keyring) -> str:
    if known is not None and known.state == "removed":
        whose = (
            f"the key of “{known.name}”, a peer this practice has removed "
            f"(fingerprint {fingerprint})"
        )
    else:
        whose = f"a key this practice does not know (fingerprint {fingerprint})"
    where = (
        f"the peers paired in {keyring.home}"
        if keyring.home is not None
        else "no practice here (no pli home was found)"
    )
    return (
        f"NOT VALID: the signature is correct, but it was made with {whose}. Anyone can "
        "make a key and sign any document with it, under any name, so this proves nothing "
        f"about who wrote it. pli trusts only this practice's own key and {where}. Do not "
        "use this document as it is. If you expected it from a colleague, call them and "
        "compare this fingerprint with theirs; if it is theirs, check again with "
        "`pli verify FILE --signer FINGERPRINT`, or pair with them."
    )
