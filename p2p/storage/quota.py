"""What one paired peer may make this practice store, and the disk's own reserve.

Every offer is admitted here before a byte of it is accepted:

- **per-peer quota**: the bytes stored from that peer (received envelopes,
  plus the declared size of its partial transfers in ``quarantine/``) stay
  under ``peer_quota``;
- **per-peer rate**: at most ``peer_documents_per_hour`` new documents from
  it in any hour (duplicates, answered with the stored receipt, do not count);
- **free-space reserve**: after the whole envelope and the rest of the
  transfers under way are written, at least ``disk_reserve`` bytes (and a few
  inodes) stay free on the home's disk.

A refused offer gets a ``refuse`` whose code (``REFUSAL_CODES``) the sender
turns into its own sentence; the document stays queued there and is offered
again later. Partial transfers older than ``partial_lifetime`` (or from a peer
no longer paired) are deleted at start and periodically. Counters of the
refusals since start and the disk usage are shown by ``pli status``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2p.storage.files import Layout
from p2p.storage.store import Store

log = logging.getLogger("pli.quota")

MIB = 1024 * 1024
#: Seconds between two log lines for the same peer and refusal code.
LOG_EVERY = 60.0
#: Inodes that must stay free (SQLite's journal, the envelope, its folder entry).
MIN_FREE_INODES = 64

#: Refusal codes sent in ``refuse`` messages, with the English reason for logs.
QUOTA_FULL = "quota-full"
RATE_LIMITED = "rate-limited"
DISK_FULL = "disk-full"
STORAGE_FAILED = "storage-failed"
REFUSAL_CODES = {
    QUOTA_FULL: "this practice stores no more from you until space is freed",
    RATE_LIMITED: "too many documents from you in the last hour",
    DISK_FULL: "this practice's disk is nearly full",
    STORAGE_FAILED: "this practice could not store the document",
}

_PARTIAL = re.compile(r"(?P<sender>[0-9a-f]{32})-(?P<doc>[0-9a-f]{32})\.part")


@dataclass(frozen=True)
class Limits:
    """What a paired peer may make us store (bytes, documents, seconds)."""

    peer_quota: int = 20 * 1024 * MIB
    peer_documents_per_hour: int = 1000
    disk_reserve: int = 1024 * MIB
    partial_lifetime: float = 24 * 3600.0


@dataclass
class _Refusals:
    by_code: Counter[str]
    last_code: str | None = None
    last_peer: str | None = None
    last_at: float | None = None


class Quota:
    """Admission of offers, bookkeeping of partial transfers, and their expiry.

    Every method may block (``os.statvfs``, ``os.scandir``, the database): the
    inbox calls them on worker threads (``admit`` through ``asyncio.to_thread``,
    ``settled`` and ``sweep`` on its verifier thread), the daemon's status too.
    ``_lock`` guards the partial-transfer and refusal counters; ``_admitting``
    makes each admission one step, so two offers cannot both take the last
    free space.
    """

    def __init__(
        self,
        store: Store,
        layout: Layout,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._layout = layout
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._admitting = threading.Lock()
        self._partials: dict[tuple[str, str], int] = {}  # (sender[:32], doc) -> bytes held
        self._by_sender: Counter[str] = Counter()
        self._refusals = _Refusals(Counter())
        self._admitted: dict[str, dict[str, float]] = {}  # sender -> doc id -> when
        # Bytes stored from each sender: summed from the database at the first admission
        # (before any commit: a commit follows an admission), then counted by ``stored``.
        self._stored: Counter[str] | None = None
        self._logged: dict[tuple[str, str], float] = {}  # (sender, code) -> last logged

    # --- admission ------------------------------------------------------------------

    def admit(self, sender: str, doc_id: str, size: int, *, in_flight: int) -> str | None:
        """None to accept the offer, else the refusal code.

        ``in_flight``: bytes the transfers under way still have to write.
        """
        with self._admitting:
            return self._admit(sender, doc_id, size, in_flight)

    def _admit(self, sender: str, doc_id: str, size: int, in_flight: int) -> str | None:
        now = self._clock()
        if self._stored is None:
            seeded = Counter(self._store.stored_by_sender())
            with self._lock:
                self._stored = seeded
        key = (sender[:32], doc_id)
        with self._lock:
            stored = self._stored[sender]
            held = self._by_sender[key[0]] - self._partials.get(key, 0)
        admitted = self._admitted_last_hour(sender, now)
        if doc_id not in admitted and len(admitted) >= self.limits.peer_documents_per_hour:
            return self._refuse(sender, RATE_LIMITED, now)
        if stored + held + size > self.limits.peer_quota:
            return self._refuse(sender, QUOTA_FULL, now)
        free, inodes = self.free_space()
        if free - size - in_flight < self.limits.disk_reserve or inodes < MIN_FREE_INODES:
            return self._refuse(sender, DISK_FULL, now)
        admitted.setdefault(doc_id, now)
        return None

    def _admitted_last_hour(self, sender: str, now: float) -> dict[str, float]:
        """Documents admitted from ``sender`` in the last hour (doc id -> when), kept in
        memory, seeded from the database the first time (so a restart resets nothing)."""
        since = now - 3600
        admitted = self._admitted.get(sender)
        if admitted is None:
            admitted = self._admitted[sender] = self._store.received_since(sender, int(since))
        for doc_id in [doc for doc, at in admitted.items() if at < since]:
            del admitted[doc_id]
        return admitted

    def _refuse(self, sender: str, code: str, now: float) -> str:
        self.refused(sender, code, now)
        return code

    def refused(self, sender: str, code: str, now: float | None = None) -> None:
        """Count a refusal (from admission, or a write that failed)."""
        now = self._clock() if now is None else now
        with self._lock:
            self._refusals.by_code[code] += 1
            self._refusals.last_code, self._refusals.last_peer = code, sender
            self._refusals.last_at = now
            quiet = now - self._logged.get((sender, code), -LOG_EVERY) < LOG_EVERY
            if not quiet:
                self._logged[(sender, code)] = now
        if not quiet:  # once a minute per peer and reason: a peer cannot flood the log
            log.warning(
                "refused documents from %s: %s (`pli status` counts them)", sender[:10], code
            )

    def free_space(self) -> tuple[int, int]:
        """(bytes, inodes) free for this user on the home's disk."""
        found = os.statvfs(self._layout.quarantine)
        inodes = found.f_favail if found.f_files else MIN_FREE_INODES  # no inode count: no limit
        return found.f_bavail * found.f_frsize, inodes

    def stored(self, sender: str, size: int) -> None:
        """A new envelope of ``size`` bytes from ``sender`` was committed (any thread)."""
        with self._lock:
            if self._stored is not None:  # else the first admission sums it from the database
                self._stored[sender] += size

    # --- partial transfers ----------------------------------------------------------

    def holding(self, sender: str, doc_id: str, size: int) -> None:
        """A partial transfer of ``size`` bytes (declared) is kept in quarantine."""
        self._set((sender[:32], doc_id), size)

    def settled(self, sender: str, doc_id: str) -> None:
        """The partial transfer is gone: committed, refused or deleted."""
        self._set((sender[:32], doc_id), 0)

    def _set(self, key: tuple[str, str], size: int) -> None:
        with self._lock:
            self._by_sender[key[0]] += size - self._partials.pop(key, 0)
            if size:
                self._partials[key] = size
            if self._by_sender[key[0]] <= 0:
                del self._by_sender[key[0]]

    def sweep(self, paired: Iterable[str], active: Iterable[Path] = ()) -> int:
        """Delete expired or orphaned partial files; count what is left. Bytes freed.

        ``paired``: peer ids (hex) still paired; ``active``: files in use now.
        """
        keep_senders = {peer[:32] for peer in paired}
        in_use = set(active)
        oldest = self._clock() - self.limits.partial_lifetime
        freed = 0
        for entry in os.scandir(self._layout.quarantine):
            path = Path(entry.path)
            if path in in_use:
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            match = _PARTIAL.fullmatch(entry.name)
            if match and match["sender"] in keep_senders and stat.st_mtime >= oldest:
                self._set((match["sender"], match["doc"]), max(stat.st_size, 1))
                continue
            path.unlink(missing_ok=True)
            freed += stat.st_size
            if match:
                self.settled(match["sender"], match["doc"])
        if freed:
            log.info("deleted %d bytes of expired partial transfers", freed)
        return freed

    # --- what ``pli status`` shows --------------------------------------------------------

    def report(self) -> dict[str, Any]:
        free, _inodes = self.free_space()
        with self._lock:
            partial = sum(self._partials.values())
            refusals = self._refusals
            recent = {
                "total": sum(refusals.by_code.values()),
                "by_code": dict(refusals.by_code),
                "last_code": refusals.last_code,
                "last_peer": refusals.last_peer,
                "last_at": refusals.last_at,
            }
        return {
            "disk": {
                "free": free,
                "reserve": self.limits.disk_reserve,
                "quarantine": partial,
                **self._store.stored_bytes(),
            },
            "limits": {
                "peer_quota": self.limits.peer_quota,
                "peer_documents_per_hour": self.limits.peer_documents_per_hour,
            },
            "refusals": recent,
        }
