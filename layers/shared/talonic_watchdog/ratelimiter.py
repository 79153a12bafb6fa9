"""A client-side rate limiter that adapts to what Talonic says: a token bucket whose rate follows AIMD.

Cleanup sends many requests in one invocation, from several threads, with keys whose limits are per key and
per plan and not known in advance (talonic-api.md: 200 write/s on one page, a daily quota on another,
headers missing on some plans). So the rate is learned:

- **Token bucket.** A request may start only with a token; tokens refill at `rate` per second, at most
  `burst` of them, so requests are spaced rather than bunched.
- **Additive increase, multiplicative decrease.** Every success adds `increase` requests per second; a 429
  halves the rate (`decrease`), and so does a long window's budget running low (X-RateLimit-Remaining below
  `low_remaining_share` of X-RateLimit-Limit). Decreases happen at most once per `cooldown_seconds`, so a
  burst of concurrent 429s counts once. The rate stays within [`min_rate`, ceiling].
- **Ceiling from the headers.** When X-RateLimit-Limit describes a short window (its reset is at most
  `short_window_seconds` away), the ceiling becomes `headroom` x that limit per second, and the first time it
  is learned (before any 429) the rate jumps to it: the bucket then runs just under the allowed rate instead
  of finding it by tripping it or creeping up to it.
- **Holds.** A 429 holds every caller for its Retry-After (`TalonicRateLimitedError.retry_after_seconds`,
  which falls back to X-RateLimit-Reset); X-RateLimit-Remaining 0 holds until X-RateLimit-Reset.
- **Bounded waits.** `acquire(max_wait)` never sleeps past `max_wait`: it answers False instead, so the
  caller can stop cleanly before its deadline. Time and sleep are injected, so tests never wait.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from talonic_watchdog import clock
from talonic_watchdog.rate_limits import RateLimitState

# Every loop is bounded; this many rounds of waiting for a token is far beyond any real wait.
MAX_ACQUIRE_ROUNDS = 10_000
_MIN_WAIT = 0.001


@dataclass(frozen=True, slots=True)
class LimiterSettings:
    initial_rate: float = 5.0  # requests per second before anything is known
    min_rate: float = 0.2
    max_rate: float = 100.0
    burst: float = 1.0
    increase: float = 0.25  # requests per second added per success
    decrease: float = 0.5  # factor applied on a 429 or a low remaining budget
    cooldown_seconds: float = 1.0
    low_remaining_share: float = 0.1
    short_window_seconds: float = 2.0
    headroom: float = 0.9

    def __post_init__(self) -> None:
        if not 0 < self.min_rate <= self.initial_rate <= self.max_rate:
            raise ValueError("need 0 < min_rate <= initial_rate <= max_rate")
        if self.burst < 1 or self.increase < 0 or not 0 < self.decrease < 1 or not 0 < self.headroom <= 1:
            raise ValueError("need burst >= 1, increase >= 0, 0 < decrease < 1 and 0 < headroom <= 1")


@dataclass(frozen=True, slots=True)
class LimiterStats:
    acquired: int
    rate_limited: int
    decreases: int
    waited_seconds: float
    rate: float
    ceiling: float


class AdaptiveRateLimiter:
    """Shared by the threads that use one API key. Thread-safe; sleeps outside its lock."""

    def __init__(
        self,
        settings: LimiterSettings | None = None,
        *,
        now: Callable[[], float] = clock.now,
        sleep: Callable[[float], None] = clock.sleep,
    ) -> None:
        self.settings = settings or LimiterSettings()
        self._now = now
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = self.settings.initial_rate
        self._ceiling = self.settings.max_rate
        self._ceiling_known = False
        self._tokens = self.settings.burst
        self._refilled_at = now()
        self._hold_until = -math.inf
        self._last_decrease = -math.inf
        self._last_observed = -math.inf
        self._acquired = 0
        self._rate_limited = 0
        self._decreases = 0
        self._waited = 0.0

    @property
    def rate(self) -> float:
        with self._lock:
            return self._rate

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(
                acquired=self._acquired,
                rate_limited=self._rate_limited,
                decreases=self._decreases,
                waited_seconds=round(self._waited, 3),
                rate=round(self._rate, 3),
                ceiling=round(self._ceiling, 3),
            )

    def acquire(self, max_wait: float) -> bool:
        """Take a token, waiting for one (and for any hold) at most `max_wait` seconds. False: not in time."""
        deadline = self._now() + max(0.0, max_wait)
        for _ in range(MAX_ACQUIRE_ROUNDS):
            with self._lock:
                now = self._now()
                self._refill(now)
                held = self._hold_until - now
                if held <= 0 and self._tokens >= 1:
                    self._tokens -= 1
                    self._acquired += 1
                    return True
                wait = max(_MIN_WAIT, held if held > 0 else (1 - self._tokens) / self._rate)
                if now + wait > deadline:
                    return False
                self._waited += wait
            # Sleep until the moment computed, not for a length: another thread's wait may have passed some of it.
            self._sleep(max(_MIN_WAIT, now + wait - self._now()))
        return False

    def on_success(self, state: RateLimitState | None) -> None:
        """A request succeeded: recover additively, and read the budget headers it carried."""
        with self._lock:
            self._rate = min(self._ceiling, self._rate + self.settings.increase)
            self._observe(state, self._now())

    def on_response(self, state: RateLimitState | None) -> None:
        """A request was answered with an error other than 429: only its budget headers count."""
        with self._lock:
            self._observe(state, self._now())

    def on_rate_limited(self, retry_after_seconds: float | None, state: RateLimitState | None = None) -> None:
        """A 429: back off multiplicatively and hold everyone for as long as Talonic asked."""
        with self._lock:
            now = self._now()
            self._rate_limited += 1
            self._decrease(now)
            hold = retry_after_seconds if retry_after_seconds is not None else 1.0 / self._rate
            self._hold_until = max(self._hold_until, now + max(0.0, hold))
            self._tokens = min(self._tokens, 0.0)
            self._observe(state, now)

    # -- under the lock ------------------------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        elapsed = now - self._refilled_at
        if elapsed > 0:
            self._tokens = min(self.settings.burst, self._tokens + elapsed * self._rate)
        self._refilled_at = now

    def _decrease(self, now: float) -> None:
        if now - self._last_decrease < self.settings.cooldown_seconds:
            return
        self._refill(now)  # tokens earned at the old rate are kept
        self._rate = max(self.settings.min_rate, self._rate * self.settings.decrease)
        self._last_decrease = now
        self._decreases += 1

    def _observe(self, state: RateLimitState | None, now: float) -> None:
        # Threads share the client's latest state: an older observation than one already applied is stale.
        if state is None or state.observed_at < self._last_observed:
            return
        self._last_observed = state.observed_at
        window = None if state.reset_at is None else state.reset_at - state.observed_at
        short_window = window is not None and 0 < window <= self.settings.short_window_seconds
        if short_window and state.limit is not None and state.limit > 0:
            self._ceiling = max(
                self.settings.min_rate, min(self.settings.max_rate, self.settings.headroom * state.limit)
            )
            if not self._ceiling_known and self._rate_limited == 0:
                # The headers name the allowed rate: start just under it instead of creeping up from the
                # initial guess (bench/cleanup_throughput.py measured ~9 s of ramp otherwise).
                self._rate = self._ceiling
            self._ceiling_known = True
            self._rate = min(self._rate, self._ceiling)
        if state.remaining is not None and state.remaining <= 0 and state.reset_at is not None:
            self._hold_until = max(self._hold_until, now + max(0.0, state.reset_at - state.observed_at))
            return
        share = state.remaining_share
        if not short_window and share is not None and share < self.settings.low_remaining_share:
            self._decrease(now)
