"""Per-key request budgets: fixed one-second windows and a daily quota resetting at UTC midnight.

talonic-api.md: limits are per key; documented figures are either per-second limits or a daily
quota reset at UTC midnight, so API requests are a budget a poller can exhaust. Both are modelled on
the emulator clock so tests can drive them with a FakeClock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from local.talonic_emulator.clock import http_date, iso_ms, next_utc_midnight


@dataclass(frozen=True)
class RateDecision:
    """Outcome of charging one request to a key.

    ``limit``/``remaining``/``reset_at`` describe the budget the X-RateLimit-* headers report; they
    are None when no limit is configured (there is nothing to report then).
    """

    allowed: bool
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None


class RateLimiter:
    """Counts requests per key. Not thread-safe on its own: the emulator calls it under its lock."""

    def __init__(self) -> None:
        self._second_windows: dict[str, tuple[int, int]] = {}
        self._days: dict[str, tuple[int, int]] = {}

    def reset(self) -> None:
        """Forget every key's usage."""
        self._second_windows.clear()
        self._days.clear()

    def charge(self, key: str, now: float, per_second: int | None, daily_quota: int | None) -> RateDecision:
        """Charge one request to ``key`` unless a budget is exhausted (a refused request is free).

        When both budgets are configured, an exhausted daily quota wins (its reset is midnight), and
        successful responses report the per-second window.
        """
        window = math.floor(now)
        window_end = float(window + 1)
        day = math.floor(now / 86_400)
        midnight = next_utc_midnight(now)
        last_window, used_in_window = self._second_windows.get(key, (window, 0))
        if last_window != window:
            used_in_window = 0
        last_day, used_today = self._days.get(key, (day, 0))
        if last_day != day:
            used_today = 0

        if daily_quota is not None and used_today >= daily_quota:
            return RateDecision(allowed=False, limit=daily_quota, remaining=0, reset_at=midnight)
        if per_second is not None and used_in_window >= per_second:
            return RateDecision(allowed=False, limit=per_second, remaining=0, reset_at=window_end)

        self._second_windows[key] = (window, used_in_window + 1)
        self._days[key] = (day, used_today + 1)
        if per_second is not None:
            return RateDecision(True, per_second, per_second - used_in_window - 1, window_end)
        if daily_quota is not None:
            return RateDecision(True, daily_quota, daily_quota - used_today - 1, midnight)
        return RateDecision(allowed=True)


def rate_limit_headers(decision: RateDecision, reset_format: str) -> tuple[tuple[str, str], ...]:
    """X-RateLimit-* headers for a decision (none when no budget is configured).

    ``reset_format`` is "epoch" (Unix seconds) or "iso" (ISO 8601): talonic-api.md has seen both.
    """
    if decision.limit is None or decision.remaining is None or decision.reset_at is None:
        return ()
    if reset_format == "epoch":
        reset = str(math.ceil(decision.reset_at))
    elif reset_format == "iso":
        reset = iso_ms(decision.reset_at)
    else:
        raise ValueError(f"unknown rate_limit_reset_format {reset_format!r}; expected 'epoch' or 'iso'")
    return (
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", str(decision.remaining)),
        ("X-RateLimit-Reset", reset),
    )


def retry_after_header(mode: str | None, now: float, delay: float) -> tuple[tuple[str, str], ...]:
    """A Retry-After header as delta-seconds ("seconds") or an HTTP-date ("http-date"); None: absent."""
    if mode is None:
        return ()
    if mode == "seconds":
        return (("Retry-After", str(math.ceil(delay))),)
    if mode == "http-date":
        return (("Retry-After", http_date(now + delay)),)
    raise ValueError(f"unknown retry_after {mode!r}; expected 'seconds', 'http-date' or None")
