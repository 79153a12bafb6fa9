"""A virtual clock: the "now" that handlers, the Talonic emulator and compressed waits agree on.

moto's Step Functions interpreter really sleeps through Wait states and Retry intervals. The local stack
shortens those sleeps and moves this clock forward by the full duration instead, so a workflow that waits
an hour finishes in milliseconds while every deadline and elapsed time it computes sees the hour pass.
"""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Epoch seconds that move only when told to, safe to share between threads.

    It is a ``Callable[[], float]`` like ``time.time``, so it can be handed to anything that takes a
    clock (``talonic_watchdog.clock.use``, the Talonic emulator).
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a virtual clock only moves forward, not by {seconds} s")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self():.3f})"
