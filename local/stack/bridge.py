"""The EventBridge bridge: delivering matched events to Lambda and Step Functions targets.

moto's EventBridge matches events against rules but delivers only to SQS, CloudWatch Logs, archives, buses
and API destinations; for a Lambda or Step Functions target its ``Rule.send_to_targets`` raises
``NotImplementedError``. (Its ``TestEventPattern`` API is not implemented either: it returns no Result.)
While the local stack is entered, ``EventBridge.hooked_into_moto`` wraps ``Rule.send_to_targets``: moto
still matches the event against the rule's pattern (its own matcher, on the rule as created through the
API) and still serves the targets it supports, and each matched Lambda or Step Functions target is queued
with its input (Input, InputPath or InputTransformer applied). The queue is delivered by
``deliver_pending``, which the stack calls after ``put_events`` and after each handler returns, outside the
handler lock: so a handler that puts events never re-enters the runtime while it is still running.

moto stamps events without a Time with the machine's clock; the hook stamps them with the virtual clock.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from unittest import mock

from jsonpath_ng.ext import parse as parse_json_path  # type: ignore[attr-defined]
from moto.events.models import EventsBackend, Rule
from moto.events.utils import EventMessageType, EventTemplateParser

LOG = logging.getLogger(__name__)

#: Target services moto cannot deliver to, which the bridge delivers to instead.
BRIDGED_SERVICES = frozenset({"lambda", "states"})


@dataclass(frozen=True)
class BridgedRule:
    """A rule the template declares (a function's EventBridgeRule event, or an AWS::Events::Rule)."""

    name: str
    logical_id: str
    event_bus_name: str
    pattern: dict[str, Any]
    target_arn: str
    target_logical_id: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    enabled: bool = True


@dataclass
class Delivery:
    """One event delivered (or not) to one target: the input the target received and what came of it."""

    rule: str
    target_arn: str
    input: Any
    result: Any = None
    error: str | None = None


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""


def _iso_time(value: Any) -> Any:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a target receives for ``event``: its Input, InputPath or InputTransformer applied, else the event."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        matches = parse_json_path(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(EventMessageType, event),
        )
    return event


class EventBridge:
    """Queues matched events for Lambda/Step Functions targets and delivers them through ``deliver``."""

    def __init__(self, clock: Callable[[], float], deliver: Callable[[str, Any], Any]) -> None:
        self._clock = clock
        self._deliver = deliver
        self._pending: deque[Delivery] = deque()
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []

    @contextmanager
    def hooked_into_moto(self) -> Iterator[None]:
        original_put_events = EventsBackend.put_events
        original_send = Rule.send_to_targets
        bridge = self

        def put_events(backend: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            now = bridge._clock()
            stamped = [event if event.get("Time") is not None else {**event, "Time": now} for event in events]
            return original_put_events(backend, stamped)

        def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
            bridged = [target for target in rule.targets if _service(target["Arn"]) in BRIDGED_SERVICES]
            if bridged and rule.state == "ENABLED" and rule.event_pattern.matches_event(original_event):
                event = {key: value for key, value in original_event.items() if key != "ingestion-time"}
                event["time"] = _iso_time(event.get("time"))
                for target in bridged:
                    bridge._enqueue(Delivery(rule.name, target["Arn"], target_input(target, event)))
            served_by_moto = copy.copy(rule)
            served_by_moto.targets = [target for target in rule.targets if target not in bridged]
            original_send(served_by_moto, original_event, transform_input)

        with (
            mock.patch.object(EventsBackend, "put_events", put_events),
            mock.patch.object(Rule, "send_to_targets", send_to_targets),
        ):
            yield

    def _enqueue(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending.append(delivery)

    def enqueue(self, delivery: Delivery) -> None:
        """Queue a delivery from another source (SNS to Lambda), delivered in order with the events."""
        self._enqueue(delivery)

    def deliver_pending(self) -> None:
        """Deliver queued events in order, including any that deliveries themselves put."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                delivery = self._pending.popleft()
                self.deliveries.append(delivery)
            try:
                delivery.result = self._deliver(delivery.target_arn, delivery.input)
            except Exception as error:  # as in AWS, a failed target does not fail put_events
                delivery.error = f"{type(error).__name__}: {error}"
                LOG.exception("rule %s: delivery to %s failed", delivery.rule, delivery.target_arn)
            else:
                LOG.info("rule %s: delivered an event to %s", delivery.rule, delivery.target_arn)
