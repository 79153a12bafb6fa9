"""Discovery's budget rule and the runs table's bulk lookup."""

from __future__ import annotations

import pytest

from talonic_watchdog.discovery import budget_is_low
from talonic_watchdog.models import ValidationRun
from talonic_watchdog.rate_limits import RateLimitState

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("state", "low"),
    [
        (None, False),
        (RateLimitState(limit=None, remaining=3, reset_at=None, observed_at=NOW), False),
        (RateLimitState(limit=100, remaining=50, reset_at=NOW + 60, observed_at=NOW), False),
        (RateLimitState(limit=100, remaining=10, reset_at=NOW + 60, observed_at=NOW), True),
        (RateLimitState(limit=100, remaining=10, reset_at=NOW - 1, observed_at=NOW - 100), False),  # reset since
        (RateLimitState(limit=100, remaining=0, reset_at=None, observed_at=NOW), True),
    ],
)
def test_the_budget_is_low_only_while_its_window_lasts(state, low):
    assert budget_is_low(state, now=NOW, min_share=0.2) is low


def test_known_ids_looks_up_more_than_one_batch(table):
    recorded = [f"run-{n:03d}" for n in range(0, 250, 2)]
    for run_id in recorded:
        table.record(ValidationRun.from_api({"id": run_id, "status": "completed"}), now=NOW, source="test")
    asked = [f"run-{n:03d}" for n in range(250)]
    assert table.known_ids(asked + asked[:5]) == set(recorded)
