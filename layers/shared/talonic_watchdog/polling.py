"""How long the watch waits before its next look at a validation run.

Talonic sends no webhook when a validation run finishes, so the workflow polls, and API requests are a
budget. The rule here keeps detection lag proportional to the run's age, which is what users feel: a run that
has taken 2 minutes is looked at every ~12 s, one that has taken 2 hours every ~12 minutes. Waits therefore
grow geometrically (a capped exponential backoff in the number of polls), with jitter that only shortens.

When the runs table knows earlier runs of the same golden sample, the first wait jumps to just before the
earliest of them would have finished, so a long run costs a handful of requests. A 429 waits as long as the
API asked; a low X-RateLimit-Remaining stretches the waits; nothing waits past the watch's deadline.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from talonic_watchdog.rate_limits import RateLimitState


@dataclass(frozen=True, slots=True)
class DurationHistory:
    """Durations (seconds) of earlier completed runs of one golden sample."""

    shortest: float
    median: float
    count: int

    @classmethod
    def from_durations(cls, durations: Sequence[float]) -> DurationHistory | None:
        usable = sorted(d for d in durations if d > 0)
        if len(usable) < 2:  # one run is an anecdote, not a typical duration
            return None
        return cls(shortest=usable[0], median=statistics.median(usable), count=len(usable))

    def to_dict(self) -> dict[str, float]:
        return {"shortest": self.shortest, "median": self.median, "count": self.count}

    @classmethod
    def from_dict(cls, data: object) -> DurationHistory | None:
        if not isinstance(data, dict):
            return None
        return cls(shortest=float(data["shortest"]), median=float(data["median"]), count=int(data["count"]))


@dataclass(frozen=True, slots=True)
class PollPolicy:
    min_wait_seconds: float = 10.0
    max_wait_seconds: float = 900.0
    lag_fraction: float = 0.1  # detection lag stays under this share of the run's age
    jitter_fraction: float = 0.1  # waits are shortened by up to this share, never lengthened
    history_margin: float = 0.9  # jump to 90 % of the shortest earlier run
    low_budget_share: float = 0.2  # below this share of X-RateLimit-Remaining, waits double
    critical_budget_share: float = 0.05  # below this, they quadruple
    max_polls: int = 600  # ~10 history events a loop: far below Step Functions' 25,000

    def next_wait(
        self,
        *,
        elapsed_seconds: float,
        seconds_to_deadline: float,
        history: DurationHistory | None = None,
        rate_limit: RateLimitState | None = None,
        now: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> int:
        """Seconds to wait (a whole number ≥ 1, as a Wait state's SecondsPath needs)."""
        wait = min(self.max_wait_seconds, max(self.min_wait_seconds, self.lag_fraction * elapsed_seconds))
        wait *= 1.0 - self.jitter_fraction * rng()
        if history is not None:
            # Earlier runs took at least this long: looking before then would only spend requests.
            quiet_until = history.shortest * self.history_margin
            if elapsed_seconds + wait < quiet_until:
                wait = quiet_until - elapsed_seconds
        wait = self._stretch_for_budget(wait, rate_limit, now)
        return max(1, math.ceil(min(wait, max(1.0, seconds_to_deadline))))

    def _stretch_for_budget(self, wait: float, rate_limit: RateLimitState | None, now: float | None) -> float:
        share = rate_limit.remaining_share if rate_limit else None
        if rate_limit is None or share is None:
            return wait
        if rate_limit.remaining == 0 and rate_limit.reset_at is not None and now is not None:
            return max(wait, rate_limit.reset_at - now)
        if share < self.critical_budget_share:
            return wait * 4
        if share < self.low_budget_share:
            return wait * 2
        return wait

    def wait_after_rate_limit(self, retry_after_seconds: float | None, *, seconds_to_deadline: float) -> int:
        """A 429 is not a failure: wait as long as the API asked (or the minimum wait when it did not say)."""
        wait = retry_after_seconds if retry_after_seconds is not None else self.min_wait_seconds
        return max(1, math.ceil(min(wait, max(1.0, seconds_to_deadline))))

    def wait_after_failure(
        self, consecutive_failures: int, *, seconds_to_deadline: float, rng: Callable[[], float] = random.random
    ) -> int:
        """The API is failing (5xx, timeouts, garbage): back off exponentially, with equal jitter."""
        step: float = min(self.max_wait_seconds, self.min_wait_seconds * 2.0 ** max(0, consecutive_failures - 1))
        wait = step / 2 + rng() * step / 2
        return max(1, math.ceil(min(wait, max(1.0, seconds_to_deadline))))
