"""What handlers build once per container: clients and tables, from the environment the template sets.

Builders are cached by their configuration (a frozen dataclass), not once per process: the local stack runs
many stacks in one process, each with its own table names and Talonic URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import requests
from requests.adapters import HTTPAdapter

from talonic_watchdog import clock
from talonic_watchdog.api_keys import SecretsManagerKeySource
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.config import Env
from talonic_watchdog.runs_table import RunsTable

# Seconds a handler keeps back from its Lambda deadline for writing state and returning.
DEADLINE_RESERVE_SECONDS = 3.0
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
PACED_POOL_SIZE = 32  # cleanup's most workers (cleanup.MAX_WORKERS)


@dataclass(frozen=True, slots=True)
class TalonicSettings:
    api_url: str
    key_secret: str
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS


@dataclass(frozen=True, slots=True)
class TableSettings:
    table_name: str
    ttl_days: int


def talonic_settings(env: Env, key_variable: str) -> TalonicSettings:
    """`TALONIC_READ_TIMEOUT_SECONDS` (optional, 0.5..60, default 10) is how long one request may wait for
    Talonic's answer before it counts as a timeout (and is retried)."""
    return TalonicSettings(
        api_url=env.text("TALONIC_API_URL"),
        key_secret=env.text(key_variable),
        read_timeout_seconds=env.number(
            "TALONIC_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS, low=0.5, high=60.0
        ),
    )


def table_settings(env: Env) -> TableSettings:
    return TableSettings(
        table_name=env.text("RUNS_TABLE"), ttl_days=env.integer("RUNS_TABLE_TTL_DAYS", 400, low=1, high=36500)
    )


@cache
def talonic_client(settings: TalonicSettings) -> TalonicClient:
    """Retries wait through `talonic_watchdog.clock`, the package's one seam for time and sleep."""
    return TalonicClient(
        settings.api_url,
        SecretsManagerKeySource(settings.key_secret),
        read_timeout=settings.read_timeout_seconds,
        sleep=clock.sleep,
        now=clock.now,
    )


@cache
def paced_talonic_client(settings: TalonicSettings) -> TalonicClient:
    """For batch work that paces itself (cleanup): a 429 is raised at once for its rate limiter to handle, and
    time and sleep go through `talonic_watchdog.clock`."""
    session = requests.Session()
    # One pooled connection per cleanup worker: requests keeps 10 per host by default, and every request beyond
    # that would open (and drop) a connection of its own.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=PACED_POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return TalonicClient(
        settings.api_url,
        SecretsManagerKeySource(settings.key_secret),
        session=session,
        read_timeout=settings.read_timeout_seconds,
        sleep=clock.sleep,
        now=clock.now,
        retry_rate_limited=False,
    )


@cache
def runs_table(settings: TableSettings) -> RunsTable:
    return RunsTable(boto3.resource("dynamodb").Table(settings.table_name), ttl_days=settings.ttl_days)


@cache
def aws_client(service: str) -> Any:
    return boto3.client(service)  # type: ignore[call-overload]


def time_budget(context: Any, *, cap: float = 20.0) -> float:
    """Seconds an API call may take in this invocation: what is left of the Lambda's time, less a reserve."""
    remaining = float(context.get_remaining_time_in_millis()) / 1000 - DEADLINE_RESERVE_SECONDS
    return max(1.0, min(cap, remaining))
