"""The one token bucket (p2p/ratelimit.py) used by the peer port, revocations and replies."""

from __future__ import annotations

import time

from p2p.ratelimit import KeyedBuckets, TokenBucket


def test_a_bucket_gives_its_burst_then_refuses() -> None:
    bucket = TokenBucket(burst=3, rate=0)
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(burst=2, rate=1, tokens=0, stamp=time.monotonic() - 10)
    # Ten seconds at one token a second, but never more than the burst.
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_keyed_buckets_are_apart_and_forget_the_least_recent_key() -> None:
    buckets = KeyedBuckets(burst=1, rate=0, size=2)
    assert buckets.take("10.0.0.1")
    assert buckets.take("10.0.0.2")
    assert not buckets.take("10.0.0.1")  # empty; and now the most recent key
    assert buckets.take("10.0.0.3")  # a third key: 10.0.0.2, the least recent, is forgotten
    assert len(buckets) == 2
    assert buckets.take("10.0.0.2")  # forgotten, so it starts full again
    assert not buckets.take("10.0.0.3")
