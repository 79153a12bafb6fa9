"""The one place the shared package reads the time, and sleeps.

Production reads the system clock and really sleeps. The local stack compresses Step Functions waits (a 60 s
Wait state passes in milliseconds) and moves a virtual clock forward by the full wait, so it swaps the source
here: deadlines, elapsed times and the emulator then all agree, and the logic is the same as in production.
Code that paces itself inside one invocation (cleanup's rate limiter) sleeps through `sleep`, which the local
stack turns into "move the virtual clock forward", so a paced run takes no real time there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_source: Callable[[], float] = time.time
_sleeper: Callable[[float], None] = time.sleep


def now() -> float:
    """Epoch seconds."""
    return _source()


def sleep(seconds: float) -> None:
    """Wait `seconds` (never negative)."""
    _sleeper(max(0.0, seconds))


def use(source: Callable[[], float]) -> None:
    global _source  # the seam is process-wide on purpose, like the system clock
    _source = source


def use_sleep(sleeper: Callable[[float], None]) -> None:
    global _sleeper
    _sleeper = sleeper


def reset() -> None:
    use(time.time)
    use_sleep(time.sleep)
