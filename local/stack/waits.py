"""Compressed time for moto's Step Functions interpreter: Wait states and Retry intervals.

moto really sleeps: ``WaitFunction._wait_interval`` blocks for the whole Wait (an hour is an hour) and
``RetrierDecl`` calls ``time.sleep`` for every Retry interval, and a Wait with ``Timestamp``/
``TimestampPath`` is measured against the machine's clock. While the local stack is entered, a wait of
N seconds instead moves the virtual clock forward by N and really sleeps ``N * wait_scale`` seconds
(capped), so the workflow's logic and the times it sees are unchanged, only faster. Every wait is
recorded so tests can assert the waits the workflow chose.
"""

from __future__ import annotations

import datetime as _datetime
import threading
import time
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp, wait_function

from local.stack.clock import VirtualClock

#: No compressed wait really sleeps longer than this, whatever ``wait_scale`` says.
MAX_REAL_SLEEP_SECONDS = 0.05


class WaitRecord(NamedTuple):
    """One wait the workflow asked for: which execution (when known) and how long, in seconds."""

    execution_arn: str | None
    seconds: float


def _execution_arn(env: Any) -> str | None:
    try:
        return str(env.states.context_object.context_object_data["Execution"]["Id"])
    except (AttributeError, KeyError, TypeError):
        return None


class CompressedWaits:
    """Patches moto's interpreter so waits advance ``clock`` and sleep ``wait_scale`` of their length."""

    def __init__(self, clock: VirtualClock, wait_scale: float) -> None:
        if wait_scale < 0:
            raise ValueError(f"wait_scale must be >= 0, not {wait_scale}")
        self.clock = clock
        self.wait_scale = wait_scale
        self.waits: list[WaitRecord] = []
        self.retry_delays: list[WaitRecord] = []
        self._lock = threading.Lock()
        self._retrying = threading.local()

    def _real_seconds(self, seconds: float) -> float:
        return min(max(seconds, 0.0) * self.wait_scale, MAX_REAL_SLEEP_SECONDS)

    @contextmanager
    def installed(self) -> Iterator[None]:
        with ExitStack() as patches:
            patches.enter_context(
                mock.patch.object(wait_function.WaitFunction, "_wait_interval", self._make_wait_interval())
            )
            patches.enter_context(mock.patch.object(retrier_decl.RetrierDecl, "_eval_body", self._make_retrier()))
            patches.enter_context(
                mock.patch.object(retrier_decl, "time", types.SimpleNamespace(sleep=self._retry_sleep))
            )
            patches.enter_context(mock.patch.object(timestamp, "datetime", self._virtual_datetime_module()))
            yield

    def _make_wait_interval(self) -> Any:
        waits = self

        def _wait_interval(_function: Any, env: Any, wait_seconds: int) -> None:
            with waits._lock:
                waits.waits.append(WaitRecord(_execution_arn(env), wait_seconds))
            waits.clock.advance(max(wait_seconds, 0))
            real_seconds = waits._real_seconds(wait_seconds)
            if real_seconds > 0:
                env.program_state_event.wait(real_seconds)  # stop_execution still interrupts it

        return _wait_interval

    def _make_retrier(self) -> Any:
        """Wraps ``RetrierDecl._eval_body`` only to learn which execution the following sleep belongs to."""
        original = retrier_decl.RetrierDecl._eval_body
        retrying = self._retrying

        def _eval_body(retrier: Any, env: Any) -> None:
            retrying.execution_arn = _execution_arn(env)
            try:
                original(retrier, env)
            finally:
                retrying.execution_arn = None

        return _eval_body

    def _retry_sleep(self, seconds: float) -> None:
        with self._lock:
            self.retry_delays.append(WaitRecord(getattr(self._retrying, "execution_arn", None), seconds))
        self.clock.advance(max(seconds, 0.0))
        real_seconds = self._real_seconds(seconds)
        if real_seconds > 0:
            time.sleep(real_seconds)

    def _virtual_datetime_module(self) -> types.SimpleNamespace:
        """A stand-in for the ``datetime`` module whose ``datetime.now()`` reads the virtual clock
        (naive UTC, as moto parses the Wait's timestamp)."""
        clock = self.clock

        class VirtualDatetime(_datetime.datetime):
            @classmethod
            def now(cls, tz: _datetime.tzinfo | None = None) -> VirtualDatetime:
                moment = _datetime.datetime.fromtimestamp(clock(), tz=tz or _datetime.UTC)
                if tz is None:
                    moment = moment.replace(tzinfo=None)
                return cls.fromisoformat(moment.isoformat())

        return types.SimpleNamespace(datetime=VirtualDatetime, timezone=_datetime.timezone)
