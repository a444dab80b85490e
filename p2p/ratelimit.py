"""Token buckets: the one rate limiter of the daemon.

``TokenBucket`` holds ``burst`` tokens, refilled at ``rate`` per second, and
``take`` spends one. ``KeyedBuckets`` keeps one bucket per key (a source IP)
in a bounded table that forgets the least recently used key, so that a flood
of new addresses costs memory only up to ``size``.

Users: the peer port's handshake buckets (``net/transport/guard.py``), the
revocation service's per-IP and overall limits, the daemon's allowance of
unsolicited replies. Rank 0: it imports nothing of pli.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; ``take`` spends one."""

    burst: float
    rate: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self) -> bool:
        """Spend one token if there is one; False when the bucket is empty."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class KeyedBuckets:
    """One ``TokenBucket(burst, rate)`` per key; past ``size`` keys, the least recent goes."""

    def __init__(self, burst: float, rate: float, size: int) -> None:
        self._burst = burst
        self._rate = rate
        self._size = size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> bool:
        """Spend one token of ``key``'s bucket (a new key starts full)."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self._burst, self._rate)
        self._buckets[key] = bucket
        while len(self._buckets) > self._size:
            self._buckets.popitem(last=False)
        return bucket.take()
