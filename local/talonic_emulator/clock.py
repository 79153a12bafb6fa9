"""Time for the emulator: an injectable clock and the wire formats Talonic uses for instants.

The emulator never reads wall-clock time for anything a test asserts on. Run progression,
rate-limit windows, daily quotas, idempotency expiry and every timestamp it renders come from the
clock passed to ``TalonicEmulator``; ``FakeClock`` is the one tests use so that nothing depends on
how fast the machine is.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime
from email.utils import formatdate

#: 2024-09-14T10:32:00.000Z, the instant used in Talonic's own documentation example.
DOCUMENTED_EXAMPLE_EPOCH = 1_726_309_920.0

SECONDS_PER_DAY = 86_400


class FakeClock:
    """A manually driven clock returning epoch seconds, safe to share between threads.

    Pass it as ``TalonicEmulator(clock=FakeClock())`` and move time explicitly with
    ``advance``/``set``: tests then never wait for real time to pass.
    """

    def __init__(self, start: float = DOCUMENTED_EXAMPLE_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("FakeClock only moves forward; use set() to jump anywhere")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, epoch: float) -> None:
        """Jump to an absolute epoch time (backwards too, for tests that need it)."""
        with self._lock:
            self._now = float(epoch)

    def __repr__(self) -> str:
        return f"FakeClock({self():.3f})"


def iso_ms(epoch: float) -> str:
    """Render an instant as Talonic does: ISO 8601 UTC, milliseconds, ``Z`` (2024-09-14T10:32:00.000Z)."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    """Render an instant as an RFC 9110 HTTP-date, rounding up so a client never retries too early."""
    return formatdate(math.ceil(epoch), usegmt=True)


def next_utc_midnight(epoch: float) -> float:
    """The start of the next UTC day: when Talonic's daily quotas reset."""
    return float((math.floor(epoch / SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY)
