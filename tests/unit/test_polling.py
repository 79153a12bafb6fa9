"""The poll policy: lag proportional to the run's age, history jumps, 429s, budget and deadline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talonic_watchdog.polling import DurationHistory, PollPolicy
from talonic_watchdog.rate_limits import RateLimitState

POLICY = PollPolicy(min_wait_seconds=10, max_wait_seconds=900, lag_fraction=0.1)
NO_JITTER = {"rng": lambda: 0.0}


@pytest.mark.parametrize(
    ("elapsed", "expected"), [(0, 10), (50, 10), (300, 30), (3000, 300), (20_000, 900), (10**6, 900)]
)
def test_waits_grow_with_the_runs_age_between_min_and_max(elapsed, expected):
    assert POLICY.next_wait(elapsed_seconds=elapsed, seconds_to_deadline=10**7, **NO_JITTER) == expected


@given(elapsed=st.floats(0, 10**6), jitter=st.floats(0, 1), to_deadline=st.floats(-100, 10**7))
def test_a_wait_never_exceeds_the_lag_bound_the_cap_or_the_deadline(elapsed, jitter, to_deadline):
    wait = POLICY.next_wait(elapsed_seconds=elapsed, seconds_to_deadline=to_deadline, rng=lambda: jitter)
    assert 1 <= wait <= max(10, 0.1 * elapsed, 1) + 1
    assert wait <= 900
    assert wait <= max(1, to_deadline) + 1


def test_history_jumps_to_just_before_the_shortest_earlier_run():
    # given earlier runs of 40 to 60 minutes
    history = DurationHistory.from_durations([2400, 3000, 3600])
    assert history is not None
    # when the first wait is decided, then it lands at 90 % of 40 minutes (beyond the usual cap)
    assert POLICY.next_wait(elapsed_seconds=0, seconds_to_deadline=10**5, history=history, **NO_JITTER) == 2160
    # and once past that point the usual lag rule applies
    assert POLICY.next_wait(elapsed_seconds=2200, seconds_to_deadline=10**5, history=history, **NO_JITTER) == 220


def test_one_earlier_run_is_not_a_history():
    assert DurationHistory.from_durations([600]) is None
    assert DurationHistory.from_durations([]) is None


@pytest.mark.parametrize(("remaining", "factor"), [(50, 1), (15, 2), (4, 4)])
def test_a_low_rate_limit_budget_stretches_the_waits(remaining, factor):
    state = RateLimitState(limit=100, remaining=remaining, reset_at=None, observed_at=0)
    wait = POLICY.next_wait(elapsed_seconds=300, seconds_to_deadline=10**5, rate_limit=state, **NO_JITTER)
    assert wait == 30 * factor


def test_an_exhausted_budget_waits_for_the_reset():
    state = RateLimitState(limit=500, remaining=0, reset_at=5000.0, observed_at=1000.0)
    wait = POLICY.next_wait(elapsed_seconds=300, seconds_to_deadline=10**5, rate_limit=state, now=1000.0, **NO_JITTER)
    assert wait == 4000


def test_rate_limited_waits_as_asked_and_failures_back_off():
    assert POLICY.wait_after_rate_limit(37.2, seconds_to_deadline=1000) == 38
    assert POLICY.wait_after_rate_limit(None, seconds_to_deadline=1000) == 10
    assert POLICY.wait_after_rate_limit(5000, seconds_to_deadline=100) == 100
    waits = [POLICY.wait_after_failure(n, seconds_to_deadline=10**5, rng=lambda: 1.0) for n in (1, 2, 3, 8, 20)]
    assert waits == [10, 20, 40, 900, 900]
