"""The sweep's one back-off policy (AIMD window + shared pause), driven by a fake clock.

Moved from tests/prune/test_limiter.py (issue 11: prune's AdaptiveLimiter became the sweep's
`Throttle`, used by prune and reconcile alike); the pinned behaviour is unchanged."""

from __future__ import annotations

import pytest

from retag.sweep import Throttle as AdaptiveLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttling_halves_the_window_and_pauses_everyone() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock, base_pause=0.5)
    assert limiter.allowed(7)
    assert not limiter.allowed(8)
    limiter.on_throttled(started_at=99.0)
    assert limiter.window == 4
    assert not limiter.allowed(0)  # paused
    clock.now += 0.5
    assert limiter.allowed(3)
    assert not limiter.allowed(4)


def test_a_burst_of_throttled_requests_counts_once() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock)
    for _ in range(8):  # all started before the first reaction
        limiter.on_throttled(started_at=99.0)
    assert limiter.window == 4
    assert limiter.throttled == 8
    clock.now += 1
    limiter.on_throttled(started_at=100.5)  # started after the reaction: a new signal
    assert limiter.window == 2


def test_consecutive_throttles_back_off_exponentially_up_to_a_cap() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(4, clock, base_pause=1.0, max_pause=5.0)
    pauses = []
    for _ in range(5):
        started = clock.now + 0.001
        clock.now = started
        limiter.on_throttled(started_at=started)
        pauses.append(limiter.paused_until - clock.now)
    assert pauses == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert limiter.window == 1
    limiter.on_success()
    assert limiter.consecutive_throttles == 0


def test_successes_grow_the_window_back_additively() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, clock)
    limiter.on_throttled(started_at=99.0)
    limiter.on_throttled(started_at=clock.now + 1)
    assert limiter.window == 2
    for _ in range(2):
        limiter.on_success()
    assert limiter.window == pytest.approx(2.9, abs=0.05)
    for _ in range(100):
        limiter.on_success()
    assert limiter.window == 8  # never above the configured concurrency


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        AdaptiveLimiter(0, Clock())
