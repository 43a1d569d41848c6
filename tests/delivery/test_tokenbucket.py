"""The token bucket shared by the collect API's and delivery's rate limits."""

from __future__ import annotations

import pytest

from sluice.tokenbucket import TokenBucket


def test_takes_while_there_are_tokens_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(tokens=10, now=0.0)
    assert bucket.take(4, rate=10, now=0.0) == 0
    assert bucket.take(6, rate=10, now=0.0) == 0
    assert bucket.take(5, rate=10, now=0.0) == pytest.approx(0.5)
    assert bucket.take(5, rate=10, now=0.5) == 0  # refilled 5 meanwhile, nothing was taken


def test_holds_at_most_a_seconds_worth_and_at_least_one_token() -> None:
    bucket = TokenBucket(tokens=0, now=0.0)
    assert bucket.take(21, rate=20, now=60.0) == pytest.approx(0.05)  # capped at 20
    slow = TokenBucket(tokens=0, now=0.0)
    assert slow.take(1, rate=0.5, now=10.0) == 0  # a rate under 1/s still holds one
    assert slow.take(1, rate=0.5, now=10.0) == pytest.approx(2.0)


def test_the_rate_may_change_between_calls() -> None:
    bucket = TokenBucket(tokens=0, now=0.0)
    assert bucket.take(1, rate=1, now=0.5) == pytest.approx(0.5)
    assert bucket.take(1, rate=4, now=0.75) == 0  # 0.5 + 0.25 s at 4/s
