"""Fault injection on the watch: every fault Talonic (or the deployment) can throw at a watch ends in a defined
state, with the right alert exactly once, a runs table that agrees with what Talonic last said, and bounded
traffic. The real template and state machine on moto, the real handlers, the emulator; waits are virtual.

test_watch_workflow.py tells the main stories (a 429 that names its Retry-After, a run deleted between polls,
a key revoked then refetched once); the cases here are the harder variants of each fault."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.talonic_emulator import RunBehaviour
from tests.integration.conftest import READ_KEY, Watchdog, running_watchdog

pytestmark = pytest.mark.integration

GOLDEN = "0d6e2b7a-5c1f-4a8e-9b3d-7e6f5a4b3c2d"
EXTRACT_ONLY_KEY = "tlnc_test_it_extract_only_9e4d"
LOW = 0.72  # below the stack's 0.9: a watch that gets through its fault must still say so, once


@dataclass(frozen=True)
class Case:
    """One fault: how it is set up, and the state the watch must end in."""

    arrange: Callable[[Watchdog, str], None]
    status: str
    error: str | None
    alerts: list[str]
    recorded_status: str | None  # what Talonic last said about the run (None: it never said)
    run_reads: int | tuple[int, int]  # GETs of the run's path, retries included (or their least and most)
    running_reads: int = 1
    deadline_minutes: int | None = None
    read_timeout: str | None = None
    statuses: list[int | None] | None = None  # the exact answers to the run's GETs, when they tell the story
    alert_says: str | None = None  # what the alert must tell the reader about the fault


def run_path(run_id: str) -> str:
    return f"/v1/validation/runs/{run_id}$"


def inject_on_run(*faults: tuple[str, dict[str, Any]], count: int | None = 1) -> Callable[[Watchdog, str], None]:
    def arrange(watchdog: Watchdog, run_id: str) -> None:
        for kind, params in faults:
            watchdog.emulator.inject(kind, count=count, method="GET", path_regex=run_path(run_id), **params)

    return arrange


def no_retry_after(watchdog: Watchdog, run_id: str) -> None:
    watchdog.emulator.retry_after = None  # the docs disagree on whether a 429 carries it: here it does not
    watchdog.emulator.error_shape = "short"
    inject_on_run(("status", {"status": 429}), count=8)(watchdog, run_id)


def every_5xx(watchdog: Watchdog, run_id: str) -> None:
    watchdog.emulator.error_shape = "nested"
    inject_on_run(*[("status", {"status": status}) for status in (500, 502, 503, 504, 503)])(watchdog, run_id)


def key_replaced_by_one_without_read_scope(watchdog: Watchdog, run_id: str) -> None:
    """After two reads the read key is revoked, and the secret is "rotated" to a key without the read scope."""
    emulator = watchdog.emulator
    emulator.add_key(EXTRACT_ONLY_KEY, scopes={"extract"}, alias="extract-only")

    def revoke_and_rotate_wrongly() -> None:
        emulator.revoke_key(READ_KEY)
        watchdog.stack.put_secret("ReadKeySecret", EXTRACT_ONLY_KEY)

    emulator.after_requests(2, revoke_and_rotate_wrongly, method="GET", path_regex=run_path(run_id))


def secret_deleted(watchdog: Watchdog, run_id: str) -> None:
    secrets = watchdog.stack.client("secretsmanager")
    secrets.delete_secret(SecretId=watchdog.stack.outputs["ReadKeySecretArn"], ForceDeleteWithoutRecovery=True)


def deleted_while_a_poll_retries(watchdog: Watchdog, run_id: str) -> None:
    """Two good reads; the third GET meets a 503, and while the client backs off, the run is deleted."""
    emulator = watchdog.emulator
    emulator.error_shape = "flat"

    def fail_once_then_delete() -> None:
        emulator.inject("status", count=1, method="GET", path_regex=run_path(run_id), status=503)
        emulator.after_requests(1, lambda: emulator.remove_run(run_id), method="GET", path_regex=run_path(run_id))

    emulator.after_requests(2, fail_once_then_delete, method="GET", path_regex=run_path(run_id))


def unknown_status_after_two_reads(watchdog: Watchdog, run_id: str) -> None:
    emulator = watchdog.emulator
    emulator.after_requests(
        2, lambda: emulator.set_status(run_id, "archived"), method="GET", path_regex=run_path(run_id)
    )


CASES = {
    # 8 times 429 without Retry-After: two polls spend their retries (backoff), the third gets through
    "429 storm without Retry-After": Case(
        no_retry_after, "SUCCEEDED", None, ["low_accuracy"], "completed", run_reads=8 + 2
    ),
    # a 429 asking for 45 s on every poll of a watch with a 3-minute deadline: 5 polls, then the deadline
    "429 storm past the deadline": Case(
        inject_on_run(("status", {"status": 429, "retry_after_seconds": 45}), count=None),
        "FAILED",
        "ApiUnavailableError",
        ["watch_failed"],
        None,
        run_reads=5,
        deadline_minutes=3,
        alert_says="still rate-limiting the watch",
    ),
    # 500, 502, 503, 504, 503: the first poll spends its retries on four, the second meets one and recovers
    "burst of every retryable 5xx": Case(
        every_5xx,
        "SUCCEEDED",
        None,
        ["low_accuracy"],
        "completed",
        run_reads=5 + 2,
        statuses=[500, 502, 503, 504, 503, 200, 200],
    ),
    # a read times out (the emulator answers after 2 s, the client waits 1 s) and is retried at once
    "timeouts": Case(
        inject_on_run(("slow", {"seconds": 2})),
        "SUCCEEDED",
        None,
        ["low_accuracy"],
        "completed",
        run_reads=3,
        running_reads=2,  # a timed-out read still counts as a read of the run: Talonic served it
        read_timeout="1",
    ),
    "dropped connections": Case(
        inject_on_run(("drop", {}), count=4),
        "SUCCEEDED",
        None,
        ["low_accuracy"],
        "completed",
        run_reads=4 + 2,
        statuses=[None, None, None, None, 200, 200],
    ),
    # a truncated JSON body, then an empty one: each spends a poll (not retried: the same answer would come
    # back), then the run is read
    "malformed and empty bodies": Case(
        inject_on_run(("malformed", {}), ("empty", {})),
        "SUCCEEDED",
        None,
        ["low_accuracy"],
        "completed",
        run_reads=2 + 2,
    ),
    "key revoked mid-watch, secret rotated to a key without the read scope": Case(
        key_replaced_by_one_without_read_scope,
        "FAILED",
        "WatchUnauthorizedError",
        ["unauthorized"],
        "running",
        run_reads=4,
        running_reads=5,
        statuses=[200, 200, 401, 403],
    ),
    "read-key secret deleted": Case(
        secret_deleted, "FAILED", "ConfigurationError", ["watch_failed"], None, run_reads=0
    ),
    "run deleted while a poll retries a 503": Case(
        deleted_while_a_poll_retries,
        "FAILED",
        "RunNotFoundError",
        ["run_missing"],
        "running",
        run_reads=4,
        running_reads=5,
        statuses=[200, 200, 503, 404],
    ),
    "unknown status": Case(
        unknown_status_after_two_reads,
        "FAILED",
        "UnknownRunStatusError",
        ["watch_failed"],
        "running",  # the last status the watchdog could understand; the alert reports "archived"
        run_reads=3,
        running_reads=5,
        alert_says="unknown status 'archived'",
    ),
    # 503 on every request, a 1-minute deadline: polls of four attempts each, backing off, until the deadline
    # (four or five polls, as the jitter falls), and the look at the deadline says why it ended
    "API down for longer than the deadline": Case(
        inject_on_run(("status", {"status": 503}), count=None),
        "FAILED",
        "ApiUnavailableError",
        ["watch_failed"],
        None,
        run_reads=(4 * 4, 5 * 4),
        deadline_minutes=1,
        alert_says="still failing at the watch's deadline",
    ),
}


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    with running_watchdog() as running:
        yield running


def kinds(watchdog: Watchdog) -> list[str]:
    return [message["MessageAttributes"]["kind"]["Value"] for message in watchdog.alerts()]


def idempotency_records(watchdog: Watchdog) -> list[dict[str, Any]]:
    table = watchdog.stack.resources["IdempotencyTable"]
    return list(watchdog.stack.client("dynamodb").scan(TableName=table)["Items"])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_fault_ends_in_a_defined_state_with_one_alert(
    watchdog: Watchdog, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a run that completes below the threshold, and the fault
    if case.read_timeout:
        monkeypatch.setenv("TALONIC_READ_TIMEOUT_SECONDS", case.read_timeout)
    behaviour = RunBehaviour(pending_reads=0, running_reads=case.running_reads, accuracy=LOW)
    run_id = str(watchdog.emulator.add_run(golden_sample_id=GOLDEN, name="invoices nightly", behaviour=behaviour)["id"])
    case.arrange(watchdog, run_id)
    watch_input: dict[str, Any] = {"validation_run_id": run_id}
    if case.deadline_minutes:
        watch_input["deadline_minutes"] = case.deadline_minutes

    # when it is watched under the name every trigger uses
    execution = watchdog.watch(watch_input, name=f"run-{run_id}")

    # then the execution ended as it should, by name
    assert (execution["status"], execution.get("error")) == (case.status, case.error)
    # and exactly the expected alert went out, once (and Powertools Idempotency holds one record per alert)
    assert kinds(watchdog) == case.alerts
    assert len(idempotency_records(watchdog)) == len(case.alerts)
    if case.error:
        [message] = watchdog.alerts()
        assert case.error in message["Subject"]
        assert run_id in message["Structured"]["email"]
        assert case.alert_says is None or case.alert_says in message["Structured"]["email"]
    # and the runs table holds the claim of this watch and the status Talonic last gave
    record = watchdog.record(run_id)
    assert record is not None
    assert record["watched_by"]["S"] == f"run-{run_id}"
    assert record.get("status", {}).get("S") == case.recorded_status
    if case.recorded_status == "completed":
        assert record["accuracy"]["N"] == str(LOW)
    # and the traffic was bounded: the run's GETs (retries included) and nothing wasted elsewhere
    reads = watchdog.emulator.requests_matching(method="GET", path_regex=run_path(run_id))
    least, most = case.run_reads if isinstance(case.run_reads, tuple) else (case.run_reads, case.run_reads)
    assert least <= len(reads) <= most
    if case.statuses is not None:
        assert [read.status for read in reads] == case.statuses
    others = [r for r in watchdog.emulator.requests if r not in reads]
    assert all(r.method == "GET" for r in others)
    assert len(others) <= 2  # the alert's per-field results and one baseline listing, for a low accuracy only
    if case.alerts != ["low_accuracy"]:
        assert others == []
