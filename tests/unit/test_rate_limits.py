"""Parsing of Talonic's rate-limit hints, and the backoff schedule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from talonic_watchdog.rate_limits import (
    Backoff,
    parse_reset,
    parse_retry_after,
    read_rate_limit,
    server_wait_seconds,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("Fri, 04 Dec 2026 12:00:30 GMT", 30.0),
        ("Fri, 04 Dec 2026 11:59:00 GMT", 0.0),  # a date in the past: come back now
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_as_seconds_or_http_date(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(int(NOW) + 42), NOW + 42),
        ("2026-12-04T12:01:00.000Z", NOW + 60),
        ("2026-12-04T12:01:00+00:00", NOW + 60),
        ("15", NOW + 15),  # a small number can only be delta-seconds
        ("2026-12-04T12:01:00", None),  # no zone: unknowable, so unused
        ("tomorrow", None),
    ],
)
def test_reset_as_epoch_or_iso(value, expected):
    assert parse_reset(value, now=NOW) == expected


def test_retry_after_wins_over_reset():
    headers = {"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW) + 50)}
    assert server_wait_seconds(headers, now=NOW) == 3.0
    assert server_wait_seconds({"X-RateLimit-Reset": str(int(NOW) + 50)}, now=NOW) == 50.0
    assert server_wait_seconds({}, now=NOW) is None


def test_rate_limit_state_from_headers():
    state = read_rate_limit({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "5"}, now=NOW)
    assert state is not None
    assert state.remaining_share == pytest.approx(0.05)
    assert read_rate_limit({}, now=NOW) is None
    assert read_rate_limit({"X-RateLimit-Remaining": "junk"}, now=NOW) is None


@pytest.mark.parametrize(("jitter", "waits"), [(0.0, [0.5, 1, 2, 4, 8, 8]), (1.0, [1, 2, 4, 8, 16, 16])])
def test_backoff_doubles_to_its_cap_with_equal_jitter(jitter, waits):
    backoff = Backoff(base_seconds=1, cap_seconds=16)
    assert [backoff.delay(n, rng=lambda: jitter) for n in range(6)] == waits
