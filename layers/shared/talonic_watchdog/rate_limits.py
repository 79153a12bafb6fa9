"""What Talonic says about its rate limits, and how long to back off.

Talonic's pages disagree: `Retry-After` may come as delta-seconds, as an HTTP-date, or not at all;
`X-RateLimit-Reset` as ISO 8601 or Unix seconds; the X-RateLimit-* headers are missing on some plans. The
parsing is hand-written because urllib3's Retry understands only `Retry-After`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

# A reset value below this is taken as "seconds from now": no Unix time of this century is that small.
_EPOCH_FLOOR = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The X-RateLimit-* headers of the latest response, for callers that spend a request budget."""

    limit: int | None
    remaining: int | None
    reset_at: float | None  # epoch seconds
    observed_at: float  # epoch seconds

    @property
    def remaining_share(self) -> float | None:
        if self.limit is None or self.remaining is None or self.limit <= 0:
            return None
        return max(0.0, min(1.0, self.remaining / self.limit))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def parse_reset(value: str | None, *, now: float) -> float | None:
    """X-RateLimit-Reset as epoch seconds: ISO 8601, Unix seconds, or (defensively) delta-seconds."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo else None
    return number if number >= _EPOCH_FLOOR else now + max(0.0, number)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def read_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimitState | None:
    limit = _int_header(headers, "X-RateLimit-Limit")
    remaining = _int_header(headers, "X-RateLimit-Remaining")
    reset_at = parse_reset(_header(headers, "X-RateLimit-Reset"), now=now)
    if limit is None and remaining is None and reset_at is None:
        return None
    return RateLimitState(limit=limit, remaining=remaining, reset_at=reset_at, observed_at=now)


def server_wait_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """How long the server asked us to wait: Retry-After first, else X-RateLimit-Reset."""
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
    if retry_after is not None:
        return retry_after
    reset_at = parse_reset(_header(headers, "X-RateLimit-Reset"), now=now)
    return None if reset_at is None else max(0.0, reset_at - now)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with "equal jitter": half the step fixed, half random.

    The official SDKs wait min(1 s x 2^n, 16 s) plus jitter, three retries; these are the defaults.
    """

    base_seconds: float = 1.0
    cap_seconds: float = 16.0
    max_retries: int = 3

    def delay(self, attempt: int, *, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number `attempt` (0 for the first retry)."""
        step = min(self.cap_seconds, self.base_seconds * (2**attempt))
        return float(step / 2 + rng() * step / 2)
