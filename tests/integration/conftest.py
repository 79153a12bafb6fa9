"""The whole watch workflow: the real template, the real state machine and handlers, on moto, against the
Talonic emulator. Waits are compressed by the local stack's virtual clock, never shortened in the logic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.embedded import embedded_system
from local.stack import LocalStack, VirtualClock
from local.talonic_emulator import TalonicEmulator

REPO = Path(__file__).resolve().parents[2]
READ_KEY = "tlnc_test_it_read_7c1e5b2a9d"
WRITE_KEY = "tlnc_test_it_write_3f8a6d0c4e"
ROTATED_READ_KEY = "tlnc_test_it_read_rotated_55aa"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
START = 1_796_385_600.0  # 2026-12-04T12:00:00Z


@dataclass
class Watchdog:
    """The stack and the emulator, with the few verbs the stories need."""

    stack: LocalStack
    emulator: TalonicEmulator
    clock: VirtualClock

    def watch(self, watch_input: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """Start an execution and return its description once it has finished."""
        arn = self.stack.start_execution(watch_input, name=name)
        return self.stack.wait_for_execution(arn, timeout=60)

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.stack.published_messages())

    def run_reads(self, run_id: str) -> int:
        return self.emulator.count(method="GET", path_regex=f"/v1/validation/runs/{run_id}$")

    def waits(self) -> list[float]:
        return [record.seconds for record in self.stack.waits]

    def record(self, run_id: str) -> dict[str, Any] | None:
        table = self.stack.client("dynamodb")
        item = table.get_item(TableName=self.stack.outputs["RunsTableName"], Key={"run_id": {"S": run_id}})
        return item.get("Item")

    def ingress_token(self) -> str:
        secret = self.stack.client("secretsmanager").get_secret_value(SecretId=self.stack.outputs["IngressSecretArn"])
        return str(json.loads(secret["SecretString"])["token"])

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.stack.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.stack.outputs["WatchStateMachineArn"])["executions"])


@contextmanager
def running_watchdog(**parameters: str) -> Iterator[Watchdog]:
    """The emulator and the stack, sharing one virtual clock; `parameters` override the stack's."""
    defaults = {"AccuracyThreshold": "0.9", "WatchDeadlineMinutes": "60"}
    with embedded_system(read_key=READ_KEY, write_key=WRITE_KEY, start=START, **(defaults | parameters)) as system:
        yield Watchdog(stack=system.stack, emulator=system.emulator, clock=system.clock)


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    with running_watchdog() as running:
        yield running
