"""The one place the shared package reads the time.

Production reads the system clock. The local stack compresses Step Functions waits (a 60 s Wait state
passes in milliseconds) and moves a virtual clock forward by the full wait, so it swaps the source here:
deadlines, elapsed times and the emulator then all agree, and the logic is the same as in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_source: Callable[[], float] = time.time


def now() -> float:
    """Epoch seconds."""
    return _source()


def use(source: Callable[[], float]) -> None:
    global _source  # the seam is process-wide on purpose, like the system clock
    _source = source


def reset() -> None:
    use(time.time)
