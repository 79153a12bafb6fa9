from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.stack.template import load_template
from local.talonic_emulator import FakeClock, TalonicEmulator
from talonic_watchdog.api_keys import StaticKeySource
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.rate_limits import Backoff
from talonic_watchdog.runs_table import RunsTable

READ_KEY = "tlnc_test_read_5f1c2a9be0d34c1f"
WRITE_KEY = "tlnc_test_write_9d2e7c4a1b0f4e6d"
OTHER_ORG_KEY = "tlnc_test_other_org_77aa88bb99cc"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
REPO = Path(__file__).resolve().parents[2]
START = 1_796_385_600.0  # 2026-12-04T12:00:00Z


@dataclass
class RecordingSleep:
    """Sleeps on the emulator's fake clock: waits are recorded and time moves, but nothing really sleeps."""

    clock: FakeClock
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[TalonicEmulator]:
    with TalonicEmulator(clock=clock) as emu:
        emu.add_key(READ_KEY, scopes={"read"})
        emu.add_key(WRITE_KEY, scopes={"read", "write"})
        emu.add_key(OTHER_ORG_KEY, scopes={"read", "write"}, org="org_other")
        yield emu


@pytest.fixture
def sleeper(clock: FakeClock) -> RecordingSleep:
    return RecordingSleep(clock)


@pytest.fixture
def make_client(emulator: TalonicEmulator, clock: FakeClock, sleeper: RecordingSleep):  # type: ignore[no-untyped-def]
    """A client on the emulator whose clocks are the emulator's fake clock and whose jitter is fixed."""

    def make(key: str = WRITE_KEY, *, keys=None, **overrides):  # type: ignore[no-untyped-def]
        options = {
            "sleep": sleeper,
            "monotonic": clock,
            "now": clock,
            "rng": lambda: 0.5,
            "backoff": Backoff(base_seconds=1.0, cap_seconds=16.0, max_retries=3),
            "read_timeout": 2.0,
        }
        options.update(overrides)
        return TalonicClient(emulator.url, keys or StaticKeySource(key), **options)

    return make


@pytest.fixture
def table() -> Iterator[RunsTable]:
    """The runs table, created in moto with the schema template.yaml declares."""
    properties = load_template(REPO / "template.yaml")["Resources"]["RunsTable"]["Properties"]
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="runs",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
            BillingMode=properties["BillingMode"],
        )
        yield RunsTable(boto3.resource("dynamodb").Table("runs"))
