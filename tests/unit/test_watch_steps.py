"""The create and poll steps against the emulator (real HTTP) and a runs table in moto."""

from __future__ import annotations

from typing import Any

import pytest

from local.talonic_emulator import RunBehaviour
from talonic_watchdog.api_keys import StaticKeySource
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.models import ValidationRun
from talonic_watchdog.polling import PollPolicy
from talonic_watchdog.rate_limits import Backoff
from talonic_watchdog.watch import (
    ApiUnavailableError,
    CreateRejectedError,
    RunNotFoundError,
    UnknownRunStatusError,
    WatchSettings,
    WatchUnauthorizedError,
    create_run,
    poll_run,
    prepare_watch,
)
from tests.unit.conftest import GOLDEN, READ_KEY, WRITE_KEY

JOB = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
SETTINGS = WatchSettings(deadline_minutes=60)
POLICY = PollPolicy()


def client_for(emulator, clock, sleeper, key: str) -> TalonicClient:  # type: ignore[no-untyped-def]
    return TalonicClient(
        emulator.url,
        StaticKeySource(key),
        sleep=sleeper,
        monotonic=clock,
        now=clock,
        rng=lambda: 0.5,
        backoff=Backoff(max_retries=1),
    )


def watch_state(run_id: str, clock, name: str = "exec-1", **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return prepare_watch(
        {"validation_run_id": run_id, **overrides}, settings=SETTINGS, execution_name=name, now=clock()
    )


def poll(state, emulator, clock, sleeper, table, key: str = READ_KEY):  # type: ignore[no-untyped-def]
    return poll_run(
        state,
        client=client_for(emulator, clock, sleeper, key),
        table=table,
        policy=POLICY,
        now=clock(),
        budget_seconds=20,
    )


def test_a_run_is_polled_until_it_completes_and_recorded(emulator, clock, sleeper, table):
    # given a run that is pending for one read and running for two
    run = emulator.add_run(
        golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=1, running_reads=2, accuracy=0.8)
    )
    state = watch_state(run["id"], clock)
    # when it is polled, waiting as told between polls
    nexts = []
    for _ in range(4):
        state = poll(state, emulator, clock, sleeper, table)
        nexts.append(state["poll"]["next"])
        clock.advance(state["poll"].get("wait_seconds", 0))
    # then three waits of about 10 s and then completion, with every request counted
    assert nexts == ["wait", "wait", "wait", "completed"]
    assert state["run"]["accuracy"] == 0.8
    assert state["poll"]["requests"] == 4
    assert state["poll"]["polls"] == 4
    record = table.get(run["id"])
    assert record is not None
    assert record["status"] == "completed"
    assert record["golden_sample_id"] == GOLDEN
    assert record["watched_by"] == "exec-1"
    assert float(record["duration_seconds"]) > 0


def test_a_second_watch_of_the_same_run_stands_down(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN)
    poll(watch_state(run["id"], clock, name="first"), emulator, clock, sleeper, table)
    second = poll(watch_state(run["id"], clock, name="second"), emulator, clock, sleeper, table)
    assert second["poll"]["next"] == "duplicate"
    assert second["poll"]["watched_by"] == "first"
    assert emulator.count(method="GET") == 1  # the duplicate made no request


def test_history_of_the_golden_sample_sets_the_first_wait(emulator, clock, sleeper, table):
    # given two earlier completed runs of the golden sample, of 30 and 40 minutes
    for minutes in (30, 40):
        table.record(
            ValidationRun.from_api(
                {
                    "id": f"earlier-{minutes}",
                    "status": "completed",
                    "golden_sample_id": GOLDEN,
                    "created_at": "2026-12-01T10:00:00.000Z",
                    "completed_at": f"2026-12-01T10:{minutes}:00.000Z",
                }
            ),
            now=clock(),
            source="test",
        )
    run = emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=5, running_reads=5))
    # when the new run is first polled
    state = poll(watch_state(run["id"], clock), emulator, clock, sleeper, table)
    # then the watch sleeps until 90 % of the shortest earlier run
    assert state["poll"]["wait_seconds"] == 1620
    assert state["poll"]["history"]["count"] == 2


def test_a_deleted_run_and_a_refused_key_are_named_errors(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.remove_run(run["id"])
    with pytest.raises(RunNotFoundError):
        poll(watch_state(run["id"], clock), emulator, clock, sleeper, table)
    other = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.revoke_key(READ_KEY)
    with pytest.raises(WatchUnauthorizedError):
        poll(watch_state(other["id"], clock), emulator, clock, sleeper, table)


def test_an_unknown_status_is_raised_by_name(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.set_status(run["id"], "archived")
    with pytest.raises(UnknownRunStatusError):
        poll(watch_state(run["id"], clock), emulator, clock, sleeper, table)


def test_a_429_waits_as_long_as_the_api_asked(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.inject("status", count=1, status=429, retry_after_seconds=120)
    state = poll(watch_state(run["id"], clock), emulator, clock, sleeper, table)
    assert state["poll"]["next"] == "wait"
    assert state["poll"]["wait_seconds"] == 120
    assert state["poll"]["rate_limited"] == 1
    assert sleeper.waits == []  # the Lambda did not sleep: the state machine's Wait does


def test_a_failing_api_backs_off_then_gives_up_by_name(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.inject("status", count=None, status=503)
    state = watch_state(run["id"], clock, deadline_minutes=600)
    waits = []
    for _ in range(5):
        state = poll(state, emulator, clock, sleeper, table)
        waits.append(state["poll"]["wait_seconds"])
        clock.advance(state["poll"]["wait_seconds"])
    with pytest.raises(ApiUnavailableError, match="6 polls in a row"):
        poll(state, emulator, clock, sleeper, table)
    assert waits == sorted(waits)
    assert waits[-1] > waits[0]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"status": 503}, "still failing at the watch's deadline"),
        ({"status": 429, "retry_after_seconds": 45}, "still rate-limiting the watch of run"),
    ],
)
def test_a_look_that_fails_at_the_deadline_says_why_instead_of_timing_out(
    emulator, clock, sleeper, table, fault, message
):
    # given a watch whose deadline has passed, and Talonic answering its last look with an error
    run = emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_seconds=10**6))
    state = poll(watch_state(run["id"], clock, deadline_minutes=1), emulator, clock, sleeper, table)
    clock.advance(60)
    emulator.inject("status", count=None, **fault)
    # then the watch ends by name, saying Talonic failed: "still pending" would be a guess
    with pytest.raises(ApiUnavailableError, match=message):
        poll(state, emulator, clock, sleeper, table)


def test_the_deadline_ends_the_watch(emulator, clock, sleeper, table):
    run = emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_seconds=10**6))
    state = watch_state(run["id"], clock, deadline_minutes=2)
    seen = []
    while state["poll"].get("next") != "deadline":
        state = poll(state, emulator, clock, sleeper, table)
        seen.append(state["poll"]["next"])
        clock.advance(state["poll"].get("wait_seconds", 0))
        assert len(seen) < 50
    assert seen[-1] == "deadline"
    assert 1 < len(seen) <= 14  # about one poll every 10 s for 2 minutes, and one at the deadline


def test_create_is_idempotent_and_recorded(emulator, clock, sleeper, table):
    # given a watch for a job run
    state = prepare_watch(
        {"dataspace_run_id": JOB, "golden_sample_id": GOLDEN}, settings=SETTINGS, execution_name="job-x", now=clock()
    )
    # when the create step runs twice (a retried step)
    client = client_for(emulator, clock, sleeper, WRITE_KEY)
    first = create_run(
        {"watch": dict(state["watch"]), "poll": dict(state["poll"])},
        client=client,
        table=table,
        now=clock(),
        budget_seconds=10,
    )
    second = create_run(
        {"watch": dict(state["watch"]), "poll": dict(state["poll"])},
        client=client,
        table=table,
        now=clock(),
        budget_seconds=10,
    )
    # then one run exists, both steps name it, and the table knows its job run
    assert first["watch"]["validation_run_id"] == second["watch"]["validation_run_id"]
    assert len(emulator.runs) == 1
    record = table.get(first["watch"]["validation_run_id"])
    assert record is not None
    assert record["dataspace_run_id"] == JOB


def test_create_with_a_read_key_or_an_unknown_golden_sample_fails_by_name(emulator, clock, sleeper, table):
    state = prepare_watch(
        {"dataspace_run_id": JOB, "golden_sample_id": GOLDEN}, settings=SETTINGS, execution_name="job-x", now=clock()
    )
    with pytest.raises(WatchUnauthorizedError):
        create_run(
            state, client=client_for(emulator, clock, sleeper, READ_KEY), table=table, now=clock(), budget_seconds=10
        )
    emulator.known_golden_samples = {"00000000-0000-4000-8000-000000000000"}
    with pytest.raises(CreateRejectedError):
        create_run(
            state, client=client_for(emulator, clock, sleeper, WRITE_KEY), table=table, now=clock(), budget_seconds=10
        )
