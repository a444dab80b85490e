"""The names a practice addresses its peers by, and how a typed PEER finds one.

A peer's name comes from its signed card. A card whose name could be taken for
another peer (the same name once NFKC-normalised, case- and space-folded), for a
fingerprint or a peer id, or for the start of one, is refused (``check_name``):
at pairing the peer is not added, on a card update the old name is kept. So a
paired peer cannot rename itself into a colleague and receive their letters.

``resolve`` finds the peer a person typed: a complete fingerprint or peer id
first, then a fingerprint prefix (the short id, five characters or more) or a
peer id prefix (eight hex digits or more), and only then a name. A name never
shadows a fingerprint or id match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from p2p.errors import AmbiguousPeer, PeerUnknown
from protocol import FingerprintError, fingerprint_prefix, normalize_fingerprint

_SEPARATORS = re.compile(r"[\s\-_.:]")
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_HEX = frozenset("0123456789abcdef")
SHORT_ID = 5  # characters: one fingerprint group with its check character
MIN_HEX_PREFIX = 8
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


class Named(Protocol):
    @property
    def peer_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


N = TypeVar("N", bound=Named)


@dataclass(frozen=True)
class Known:
    """This practice itself, as ``check_name`` compares names against it."""

    peer_id: str
    name: str
    fingerprint: str


def folded(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


def looks_like_key(name: str) -> bool:
    """Whether a name could be read (or typed) as a fingerprint or a peer id."""
    compact = _compact(name)
    if len(compact) >= MIN_HEX_PREFIX and set(compact.lower()) <= _HEX:
        return True
    if len(compact) < SHORT_ID or not set(fingerprint_prefix(compact)) <= _BASE32:
        return False
    return compact == compact.upper() or any(ch.isdigit() for ch in compact)


def _key_prefix_of(name: str, peer: Named) -> bool:
    compact = _compact(name)
    if len(compact) < 4:
        return False
    fingerprint = peer.fingerprint.replace("-", "")
    return fingerprint.startswith(fingerprint_prefix(compact)) or peer.peer_id.startswith(
        compact.lower()
    )


def check_name(name: str, peer_id: str, others: Iterable[Named], me: Named) -> str | None:
    """Why ``name`` may not be the name of peer ``peer_id`` (plain words), or None."""
    if not folded(name) or any(unicodedata.category(ch) in _INVISIBLE for ch in name):
        return "the name is empty or holds invisible or direction-changing characters"
    if looks_like_key(name):
        return "the name looks like a fingerprint or a peer id"
    wanted = folded(name)
    if wanted == folded(me.name):
        return "the name is this practice's own name"
    for other in (*others, me):
        if other.peer_id == peer_id:
            continue
        if other is not me and folded(other.name) == wanted:
            return f"the name is already that of another peer ({other.fingerprint[:11]})"
        if _key_prefix_of(name, other):
            return "the name is the start of another peer's fingerprint or peer id"
    return None


def full_peer_id(text: str) -> str | None:
    """The peer id ``text`` spells out whole (64 hex digits, separators allowed), or None.

    Such a text designates that peer and no other (no name looks like a key), so
    it can be looked up alone rather than among every peer (``resolve``).
    """
    compact = _compact(text.strip()).lower()
    return compact if len(compact) == 64 and set(compact) <= _HEX else None


def resolve(rows: Sequence[N], text: str) -> N:
    """The one peer ``text`` designates (see the module docstring); raises otherwise."""
    needle = text.strip()
    by_key = _by_key(rows, needle)
    if len(by_key) > 1:
        names = ", ".join(f"{r.name} ({r.fingerprint[:11]})" for r in by_key)
        raise AmbiguousPeer(
            f"“{text}” matches several peers: {names}. Type more of it.",
            french=f"« {text} » désigne plusieurs confrères : {names}. Précisez.",
        )
    if by_key:
        return by_key[0]
    by_name = [row for row in rows if needle and folded(row.name) == folded(needle)]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        raise AmbiguousPeer(
            f"Several peers are called “{text}”: give a fingerprint instead.",
            french=f"Plusieurs confrères s'appellent « {text} » : choisissez par l'empreinte.",
        )
    raise PeerUnknown(
        f"No paired peer is called “{text}”. `pli peers` lists them.",
        french=f"Aucun confrère appairé ne s'appelle « {text} » : la page Confrères les liste.",
    )


def _by_key(rows: Sequence[N], needle: str) -> list[N]:
    """Peers whose fingerprint or id ``needle`` is, or else starts."""
    compact = _compact(needle)
    if len(compact) == 64 and set(compact.lower()) <= _HEX:
        return [row for row in rows if row.peer_id == compact.lower()]
    try:
        full = normalize_fingerprint(needle)
    except FingerprintError:
        full = ""
    if full:
        return [row for row in rows if row.fingerprint.replace("-", "") == full]
    found: list[N] = []
    prefix = fingerprint_prefix(compact)
    if len(prefix) >= SHORT_ID and set(prefix) <= _BASE32:
        found = [row for row in rows if row.fingerprint.replace("-", "").startswith(prefix)]
    if len(compact) >= MIN_HEX_PREFIX and set(compact.lower()) <= _HEX:
        found += [r for r in rows if r.peer_id.startswith(compact.lower()) and r not in found]
    return found
