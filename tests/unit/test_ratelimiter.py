"""The adaptive rate limiter on a fake clock: pacing, holds, AIMD, the ceiling learned from the headers."""

from __future__ import annotations

import pytest

from local.talonic_emulator import FakeClock
from talonic_watchdog.rate_limits import RateLimitState
from talonic_watchdog.ratelimiter import AdaptiveRateLimiter, LimiterSettings
from tests.unit.conftest import START, RecordingSleep


@pytest.fixture
def limiter(clock: FakeClock, sleeper: RecordingSleep) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(LimiterSettings(initial_rate=4.0), now=clock, sleep=sleeper)


def state(clock: FakeClock, *, limit: int, remaining: int, reset_in: float) -> RateLimitState:
    return RateLimitState(limit=limit, remaining=remaining, reset_at=clock() + reset_in, observed_at=clock())


def test_requests_are_spaced_at_the_rate(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    # given 4 requests per second and one token to start with, when five requests start
    starts = []
    for _ in range(5):
        assert limiter.acquire(max_wait=10)
        starts.append(clock() - START)
    # then they are a quarter of a second apart
    assert starts == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_a_429_halves_the_rate_and_holds_everyone_for_its_retry_after(
    limiter: AdaptiveRateLimiter, clock: FakeClock
) -> None:
    limiter.acquire(max_wait=10)
    limiter.on_rate_limited(3.0)
    assert limiter.rate == 2.0
    assert limiter.acquire(max_wait=10)
    assert clock() - START == pytest.approx(3.0)
    # and a second 429 within the cooldown holds again but does not halve again
    limiter.on_rate_limited(1.0)
    limiter.on_rate_limited(1.0)
    assert limiter.rate == 1.0
    assert limiter.stats().rate_limited == 3


def test_successes_recover_the_rate_additively(limiter: AdaptiveRateLimiter) -> None:
    limiter.on_rate_limited(0.0)
    for _ in range(4):
        limiter.on_success(None)
    assert limiter.rate == pytest.approx(2.0 + 4 * 0.25)


def test_a_short_window_limit_in_the_headers_becomes_the_ceiling(
    limiter: AdaptiveRateLimiter, clock: FakeClock
) -> None:
    # given X-RateLimit-Limit 3 with a reset within a second (a per-second limit)
    limiter.on_success(state(clock, limit=3, remaining=2, reset_in=0.6))
    # then the rate stays just under it, however many successes follow
    for _ in range(50):
        limiter.on_success(None)
    assert limiter.rate == pytest.approx(0.9 * 3)


def test_an_exhausted_window_holds_until_its_reset(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    limiter.acquire(max_wait=10)
    limiter.on_success(state(clock, limit=10, remaining=0, reset_in=0.8))
    assert limiter.acquire(max_wait=10)
    assert clock() - START == pytest.approx(0.8)


def test_a_long_window_running_low_slows_down(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    # given a daily quota (reset hours away) with 5 % left
    limiter.on_success(state(clock, limit=500, remaining=25, reset_in=6 * 3600))
    assert limiter.rate == pytest.approx((4.0 + 0.25) * 0.5)
    # while a short window running low is just the end of that second: not halved, and its limit (10/s) is
    # learned, so the rate goes to just under it
    clock.advance(5)
    limiter.on_success(state(clock, limit=10, remaining=1, reset_in=0.3))
    assert limiter.rate == pytest.approx(9.0)


def test_a_wait_beyond_max_wait_is_refused_without_sleeping(
    limiter: AdaptiveRateLimiter, clock: FakeClock, sleeper: RecordingSleep
) -> None:
    limiter.acquire(max_wait=10)
    limiter.on_rate_limited(30.0)
    assert limiter.acquire(max_wait=29) is False
    assert sleeper.waits == []
    # an exhausted daily quota holds until midnight: far beyond any Lambda's time
    limiter.on_success(state(clock, limit=500, remaining=0, reset_in=8 * 3600))
    assert limiter.acquire(max_wait=600) is False


def test_the_rate_never_falls_below_its_floor(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    for _ in range(20):
        limiter.on_rate_limited(0.0)
        clock.advance(2)
    assert limiter.rate == LimiterSettings().min_rate


def test_a_learned_per_second_limit_is_where_the_rate_starts(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    # given a fresh limiter (4/s) and a first answer that reveals a 50/s per-second window
    assert limiter.rate == pytest.approx(4.0)
    # when the success is reported
    limiter.on_success(state(clock, limit=50, remaining=49, reset_in=1))
    # then the rate jumps to 90 % of the limit at once instead of creeping up
    assert limiter.rate == pytest.approx(45.0)


def test_after_a_429_a_learned_limit_only_caps_the_rate(limiter: AdaptiveRateLimiter, clock: FakeClock) -> None:
    limiter.on_rate_limited(1.0)
    limiter.on_success(state(clock, limit=50, remaining=49, reset_in=1))
    assert limiter.rate < 4.0
