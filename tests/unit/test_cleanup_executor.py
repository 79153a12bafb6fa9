"""One cleanup run against the emulator (real HTTP) and a runs table in moto, on a fake clock.

Nothing here sleeps for real: the rate limiter and the client sleep on the emulator's clock, and the Lambda's
remaining time is read from that clock too. Every story checks that the report is true: what it calls
deleted is gone from Talonic and marked in the table, what it calls failed or deferred is still there.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from local.talonic_emulator import FakeClock, RunBehaviour, TalonicEmulator
from local.talonic_emulator.routing import alias_for
from talonic_watchdog.api_keys import StaticKeySource
from talonic_watchdog.cleanup import (
    CleanupApiUnavailableError,
    CleanupReport,
    CleanupSettings,
    Deadline,
    RetentionPolicy,
    run_cleanup,
)
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.errors import ConfigurationError
from talonic_watchdog.models import ValidationRun
from talonic_watchdog.rate_limits import Backoff
from talonic_watchdog.runs_table import RunsTable
from tests.unit.conftest import GOLDEN, READ_KEY, WRITE_KEY, RecordingSleep

DAY = 86_400.0
OTHER = "2b5e8c1d-3f4a-4b6c-9d7e-8f9a0b1c2d3e"
RUN_PATH = r"/v1/validation/runs/[^/]+$"
LIVE = CleanupSettings(
    policy=RetentionPolicy(retention_days=90, failed_retention_days=14, keep_newest=2, exempt_prefixes=("keep-",)),
    dry_run=False,
    max_deletions=1000,
    max_deletion_share=1.0,
    # Threads share one fake clock here: four workers keep the interleavings readable. The stack's default
    # worker count runs in the integration tests, and real time in bench/cleanup_throughput.py.
    workers=4,
)


def add(
    emulator: TalonicEmulator,
    age_days: float,
    status: str = "completed",
    *,
    golden: str = GOLDEN,
    name: str | None = None,
) -> str:
    """A run that finished `age_days` ago (pending and running runs: created then, never finished)."""
    now = emulator.now()
    if status in ("completed", "failed"):
        behaviour = RunBehaviour(pending_seconds=0, running_seconds=60, final_status=status)  # type: ignore[arg-type]
        run = emulator.add_run(
            golden_sample_id=golden, name=name, created_at=now - age_days * DAY - 60, behaviour=behaviour
        )
    else:
        run = emulator.add_run(golden_sample_id=golden, name=name, created_at=now - age_days * DAY, status=status)
    return str(run["id"])


def client(emulator: TalonicEmulator, clock: FakeClock, sleeper: RecordingSleep, key: str) -> TalonicClient:
    """The client as cleanup builds it (429s raised at once for the limiter), on the fake clock."""
    return TalonicClient(
        emulator.url,
        StaticKeySource(key),
        sleep=sleeper,
        monotonic=clock,
        now=clock,
        rng=lambda: 0.5,
        backoff=Backoff(base_seconds=1.0, cap_seconds=16.0, max_retries=3),
        read_timeout=2.0,
        retry_rate_limited=False,
    )


def lambda_deadline(clock: FakeClock, seconds: float = 300.0) -> Deadline:
    """A Lambda's remaining time, from now on the fake clock."""
    end = clock() + seconds
    return Deadline(lambda: end - clock(), reserve_seconds=20.0)


def cleanup(
    emulator: TalonicEmulator,
    clock: FakeClock,
    sleeper: RecordingSleep,
    table: RunsTable,
    *,
    settings: CleanupSettings = LIVE,
    dry_run: bool = False,
    write_key: str = WRITE_KEY,
    write_client: TalonicClient | None = None,
    deadline: Deadline | None = None,
) -> CleanupReport:
    return run_cleanup(
        settings=settings,
        dry_run=dry_run,
        read_client=client(emulator, clock, sleeper, READ_KEY),
        write_client=write_client or client(emulator, clock, sleeper, write_key),
        table=table,
        deadline=deadline or lambda_deadline(clock),
        now=clock,
        sleep=sleeper,
    )


def ids(lines: list[Any]) -> set[str]:
    return {line.run_id for line in lines}


def assert_true_report(report: CleanupReport, emulator: TalonicEmulator, table: RunsTable) -> None:
    """Deleted and already gone: gone from Talonic and marked in the table. Failed, deferred: still there."""
    for line in report.deleted + report.already_gone:
        assert line.run_id not in emulator.runs
        record = table.get(line.run_id)
        assert record is not None
        assert record["status"] == "deleted"
        assert record["deleted_at"]
    for line in report.failed + report.deferred:
        assert line.run_id in emulator.runs
        record = table.get(line.run_id)
        assert record is None or record["status"] != "deleted"
    outcomes = len(report.deleted) + len(report.already_gone) + len(report.failed) + len(report.deferred)
    assert report.examined == sum(report.kept.values()) + outcomes


def test_a_realistic_mix_deletes_exactly_the_outdated_runs(emulator, clock, sleeper, table, caplog) -> None:  # type: ignore[no-untyped-def]
    # given golden sample GOLDEN with completed runs of 1, 100, 200 and 300 days (keep newest 2), failed runs
    # of 5 and 30 days, an active pending run of 400 days, an exempt run, and golden sample OTHER
    keep = {
        "baseline_1": add(emulator, 1),
        "baseline_100": add(emulator, 100),
        "failed_5": add(emulator, 5, "failed"),
        "pending_400": add(emulator, 400, "pending"),
        "running_200": add(emulator, 200, "running"),
        "exempt_300": add(emulator, 300, name="keep-audit-2025"),
        "other_baseline_500": add(emulator, 500, golden=OTHER),
        "other_baseline_600": add(emulator, 600, golden=OTHER),
    }
    delete = {
        "done_200": add(emulator, 200),
        "done_300": add(emulator, 300, name="nightly"),
        "failed_30": add(emulator, 30, "failed"),
        "other_done_700": add(emulator, 700, golden=OTHER),
    }
    # when cleanup runs for real
    with caplog.at_level(logging.INFO, logger="talonic_watchdog.cleanup"):
        report = cleanup(emulator, clock, sleeper, table)
    # then exactly the outdated runs are gone, and the report says so, run by run
    assert set(emulator.runs) == set(keep.values())
    assert ids(report.deleted) == set(delete.values())
    assert (report.examined, report.eligible, len(report.failed), len(report.deferred)) == (12, 4, 0, 0)
    assert_true_report(report, emulator, table)
    # and each delete carried its own Idempotency-Key, with the write key
    deletes = emulator.requests_matching(method="DELETE")
    assert {r.idempotency_key for r in deletes} == {f"watchdog-cleanup-{run_id}" for run_id in delete.values()}
    assert {r.key_alias for r in deletes} == {alias_for(WRITE_KEY)}
    assert {r.key_alias for r in emulator.requests_matching(method="GET")} == {alias_for(READ_KEY)}
    # and one audit line per deleted run: id, golden sample, age and reason
    audit = [r for r in caplog.records if r.getMessage() == "validation run deleted"]
    assert {r.run_id for r in audit} == set(delete.values())  # type: ignore[attr-defined]
    line = next(r for r in audit if r.run_id == delete["failed_30"])  # type: ignore[attr-defined]
    assert (line.golden_sample_id, line.age_days, line.reason) == (GOLDEN, 30.0, "failed_expired")  # type: ignore[attr-defined]
    # and the report as returned names what was kept and why, never a key
    returned = report.to_dict()
    assert returned["deleted"] == 4
    assert returned["kept"] == {"active": 2, "baseline": 4, "exempt": 1, "within_retention": 1}
    assert READ_KEY not in str(returned)
    assert WRITE_KEY not in str(returned)


def test_a_dry_run_deletes_nothing_and_says_what_it_would_delete(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = {add(emulator, age) for age in (200, 300, 400)}
    recent = {add(emulator, age) for age in (1, 2)}
    report = cleanup(emulator, clock, sleeper, table, dry_run=True)
    assert emulator.count(method="DELETE") == 0
    assert set(emulator.runs) == outdated | recent
    assert report.dry_run
    assert ids(report.would_delete) == outdated
    assert report.deleted == []
    assert report.should_publish()
    assert [line["reason"] for line in report.to_dict()["runs"]["would_delete"]] == ["completed_expired"] * 3


@pytest.mark.parametrize(
    ("max_deletions", "max_share", "blocked"),
    [
        (2, 1.0, "would delete 3 of the 5 runs seen, more than CleanupMaxDeletions (2)"),
        (100, 0.5, "would delete 3 of the 5 runs seen (60%), more than CleanupMaxDeletionShare (50%)"),
    ],
)
def test_the_cap_stops_everything_before_any_deletion(  # type: ignore[no-untyped-def]
    emulator, clock, sleeper, table, max_deletions, max_share, blocked
) -> None:
    for age in (200, 300, 400, 1, 2):
        add(emulator, age)
    settings = CleanupSettings(
        policy=LIVE.policy, dry_run=False, max_deletions=max_deletions, max_deletion_share=max_share
    )
    report = cleanup(emulator, clock, sleeper, table, settings=settings)
    assert report.blocked == blocked
    assert emulator.count(method="DELETE") == 0
    assert len(emulator.runs) == 5
    assert len(report.would_delete) == 3
    assert report.alert().kind.value == "cleanup_blocked"
    assert report.alert().severity.value == "warning"


def test_runs_older_than_the_lists_horizon_are_found_through_the_table(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    # given ten outdated runs the watchdog recorded long ago, then 100 newer runs: the list shows only those
    old = [add(emulator, 300 + n) for n in range(10)]
    for run_id in old:
        table.record(ValidationRun.from_api(emulator.runs[run_id]), now=clock() - 290 * DAY, source="watch")
    for n in range(100):
        add(emulator, 1 + n / 100)
    # and one old record that Talonic has already lost, and one that is running again
    lost, revived = add(emulator, 500), add(emulator, 500)
    for run_id in (lost, revived):
        table.record(ValidationRun.from_api(emulator.runs[run_id]), now=clock() - 400 * DAY, source="watch")
    emulator.remove_run(lost)
    emulator.set_status(revived, "running")
    # when cleanup runs
    report = cleanup(emulator, clock, sleeper, table)
    # then the old runs were found in the table, read again with the read key, and deleted
    assert (report.listed, report.table_only) == (100, 12)
    assert ids(report.deleted) == set(old)
    assert ids(report.already_gone) == {lost}
    assert report.kept["rechecked:active"] == 1
    assert revived in emulator.runs
    assert table.get(revived)["status"] == "running"  # type: ignore[index]
    assert_true_report(report, emulator, table)
    rereads = emulator.requests_matching(method="GET", path_regex=RUN_PATH)
    assert len(rereads) == 12
    # and a second run finds nothing left to do: deleted records are history, not candidates
    again = cleanup(emulator, clock, sleeper, table)
    assert again.eligible == 0
    assert not again.should_publish()


def test_a_run_gone_before_its_delete_counts_as_already_gone(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = [add(emulator, age) for age in (200, 300, 400)]
    add(emulator, 1)
    add(emulator, 2)
    # the oldest is deleted by someone else right after the list was read
    emulator.after_requests(1, lambda: emulator.remove_run(outdated[2]), method="GET")
    report = cleanup(emulator, clock, sleeper, table)
    assert ids(report.already_gone) == {outdated[2]}
    assert ids(report.deleted) == set(outdated[:2])
    assert table.get(outdated[2])["deleted_reason"] == "already_gone"  # type: ignore[index]
    assert_true_report(report, emulator, table)


def test_a_write_key_without_the_write_scope_stops_cleanup_at_once(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    for age in range(200, 220):
        add(emulator, age)
    for age in (1, 2):
        add(emulator, age)
    report = cleanup(emulator, clock, sleeper, table, write_key=READ_KEY)
    # then the first refusals stop every further deletion, and the report says why
    assert report.unauthorized
    assert report.stopped == "the write key lacks the write scope (Talonic answered 403); cleanup stopped"
    assert report.deleted == []
    assert 1 <= len(report.failed) <= LIVE.workers
    assert {line.error for line in report.failed} == {"TalonicInsufficientScopeError"}
    assert len(report.failed) + len(report.deferred) == 20
    assert emulator.count(method="DELETE", status=403) <= 2 * LIVE.workers  # each refusal refetches the key once
    assert len(emulator.runs) == 22
    assert report.alert().severity.value == "warning"
    assert "lacks the write scope" in report.alert().title


class EmptySecret:
    """A key source whose secret holds no key (a new stack before the key was put in)."""

    def get(self) -> str:
        raise ConfigurationError("secret write-key is empty: put the Talonic API key into it")

    def refresh(self) -> str:
        return self.get()


def test_an_unusable_write_key_secret_stops_cleanup_at_once(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    for age in range(200, 210):
        add(emulator, age)
    for age in (1, 2):
        add(emulator, age)
    broken = TalonicClient(emulator.url, EmptySecret(), sleep=sleeper, monotonic=clock, now=clock)
    report = cleanup(emulator, clock, sleeper, table, write_client=broken)
    assert report.stopped == (
        "the write key cannot be used: secret write-key is empty: put the Talonic API key into it; cleanup stopped"
    )
    assert not report.unauthorized
    assert 1 <= len(report.failed) <= LIVE.workers
    assert len(report.failed) + len(report.deferred) == 10
    assert emulator.count(method="DELETE") == 0


def test_a_read_key_refused_while_listing_stops_before_anything_else(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    add(emulator, 300)
    emulator.revoke_key(READ_KEY)
    report = cleanup(emulator, clock, sleeper, table)
    assert report.unauthorized
    assert report.stopped == "Talonic refused the read key (401: missing, invalid or revoked); cleanup stopped"
    assert emulator.count(method="DELETE") == 0


def test_a_list_that_keeps_failing_deletes_nothing(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    add(emulator, 300)
    emulator.inject("status", count=None, method="GET", status=503)
    with pytest.raises(CleanupApiUnavailableError, match="nothing was deleted"):
        cleanup(emulator, clock, sleeper, table)
    assert emulator.count(method="DELETE") == 0


def test_a_429_storm_finishes_with_nothing_lost_and_a_true_report(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = {add(emulator, 200 + age) for age in range(30)}
    for age in (1, 2):
        add(emulator, age)
    # 20 answers of 429 (Retry-After 1 s) once deleting has begun
    emulator.after_requests(
        3, lambda: emulator.inject("status", count=20, method="DELETE", status=429), method="DELETE"
    )
    report = cleanup(emulator, clock, sleeper, table)
    assert ids(report.deleted) == outdated
    assert report.failed == report.deferred == []
    assert report.rate_limited == emulator.count(method="DELETE", status=429) == 20
    assert_true_report(report, emulator, table)


@pytest.mark.parametrize(("workers", "most_429s", "slowest"), [(1, 0, 40 / (0.9 * 5) + 1), (4, 5, 40 / 5 * 2.5)])
def test_cleanup_uses_the_allowed_rate_without_tripping_it(  # type: ignore[no-untyped-def]
    emulator, clock, sleeper, table, workers, most_429s, slowest
) -> None:
    """One worker shows the pacing exactly. With four, threads share one fake clock that every sleep moves
    forward, so a request can reach the emulator later (in fake time) than its token was taken and land in
    the next one-second window: a few 429s, which the limiter absorbs."""
    # given a write limit of 5 requests per second, announced in the X-RateLimit headers
    outdated = {add(emulator, 200 + age) for age in range(40)}
    for age in (1, 2):
        add(emulator, age)
    emulator.rate_limit_per_second = 5
    started = clock()
    report = cleanup(emulator, clock, sleeper, table, settings=replace(LIVE, workers=workers))
    # then everything is deleted, close to the allowed rate, with (almost) no 429
    assert ids(report.deleted) == outdated
    assert emulator.count(status=429) <= most_429s
    assert 40 / 5 - 1 <= clock() - started <= slowest
    if workers == 1:
        per_second: dict[int, int] = {}
        for request in emulator.requests_matching(method="DELETE"):
            per_second[int(request.at)] = per_second.get(int(request.at), 0) + 1
        assert max(per_second.values()) <= 5
    assert_true_report(report, emulator, table)


def test_a_limit_without_headers_is_learned_from_429s(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = {add(emulator, 200 + age) for age in range(40)}
    for age in (1, 2):
        add(emulator, age)
    emulator.rate_limit_headers = False
    emulator.rate_limit_per_second = 3
    report = cleanup(emulator, clock, sleeper, table)
    assert ids(report.deleted) == outdated
    rate_limited = emulator.count(status=429)
    assert rate_limited == report.rate_limited
    assert rate_limited <= 12  # the limiter settles near the limit instead of hammering it
    assert_true_report(report, emulator, table)


def test_5xx_mid_run_fail_only_their_runs_and_the_next_run_deletes_them(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = {add(emulator, 200 + age) for age in range(20)}
    for age in (1, 2):
        add(emulator, age)
    # after five deletes, 12 answers of 503: a run whose four tries (one and three retries) all get one fails
    emulator.after_requests(
        5, lambda: emulator.inject("status", count=12, method="DELETE", status=503), method="DELETE"
    )
    first = cleanup(emulator, clock, sleeper, table)
    assert len(first.deleted) + len(first.failed) == 20
    assert {line.error for line in first.failed} <= {"TalonicServerError"}
    assert_true_report(first, emulator, table)
    # and the next run deletes whatever failed: nothing is lost
    second = cleanup(emulator, clock, sleeper, table)
    assert ids(first.deleted) | ids(second.deleted) == outdated
    assert_true_report(second, emulator, table)


def test_one_failing_run_does_not_stop_the_others(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = [add(emulator, 200 + age) for age in range(8)]
    for age in (1, 2):
        add(emulator, age)
    emulator.inject("status", count=None, method="DELETE", path_regex=outdated[3], status=500)
    report = cleanup(emulator, clock, sleeper, table)
    assert ids(report.failed) == {outdated[3]}
    assert ids(report.deleted) == set(outdated) - {outdated[3]}
    assert report.failed[0].error == "TalonicServerError"
    assert report.alert().severity.value == "warning"
    assert_true_report(report, emulator, table)


def test_a_lost_delete_answer_is_retried_with_the_same_idempotency_key(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    [outdated] = [add(emulator, 300)]
    for age in (1, 2):
        add(emulator, age)
    emulator.inject("drop", method="DELETE", after_processing=True)
    report = cleanup(emulator, clock, sleeper, table)
    assert ids(report.deleted) == {outdated}
    first, second = emulator.requests_matching(method="DELETE")
    assert first.idempotency_key == second.idempotency_key == f"watchdog-cleanup-{outdated}"
    assert second.idempotent_replay


def test_a_delete_whose_every_answer_is_lost_is_judged_by_reading_the_run(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    # given two outdated runs: Talonic deletes the first but every answer is lost; the second's connections
    # all drop before Talonic sees the request
    deleted, kept = add(emulator, 300), add(emulator, 301)
    for age in (1, 2):
        add(emulator, age)
    emulator.inject("drop", count=4, method="DELETE", path_regex=deleted, after_processing=True)
    emulator.inject("drop", count=4, method="DELETE", path_regex=kept)
    # when cleanup runs
    report = cleanup(emulator, clock, sleeper, table)
    # then each run was read once its retries were spent: the gone one is reported deleted (and why it was
    # not confirmed by its answer), the other failed; the report and the table tell the truth
    assert [(line.run_id, line.note) for line in report.deleted] == [(deleted, "answer_lost")]
    assert [(line.run_id, line.error) for line in report.failed] == [(kept, "TalonicTransportError")]
    assert emulator.count(method="GET", path_regex=f"{deleted}$") == emulator.count(method="GET", path_regex=kept) == 1
    assert_true_report(report, emulator, table)


def test_the_deadline_stops_cleanly_and_the_next_run_picks_up_what_is_left(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    outdated = {add(emulator, 200 + age) for age in range(30)}
    for age in (1, 2):
        add(emulator, age)
    # given a Lambda with 300 s whose time runs out after the fifth delete (the clock jumps 290 s)
    emulator.after_requests(5, lambda: clock.advance(290), method="DELETE")
    deadline = lambda_deadline(clock)
    first = cleanup(emulator, clock, sleeper, table, deadline=deadline)
    # then no deletion started after the reserve was reached, the rest is deferred, and the report is true
    assert 5 <= len(first.deleted) <= 5 + LIVE.workers
    assert len(first.deleted) + len(first.deferred) == 30
    assert {line.note for line in first.deferred} == {"deadline"}
    assert deadline.usable() < deadline.min_call_seconds
    assert_true_report(first, emulator, table)
    # and the next run deletes what was left, each run exactly once
    second = cleanup(emulator, clock, sleeper, table)
    assert ids(first.deleted) | ids(second.deleted) == outdated
    assert ids(second.deleted) == ids(first.deferred)
    assert emulator.count(method="DELETE") == 30


def test_the_runs_table_keeps_deleted_runs_as_history(emulator, clock, sleeper, table) -> None:  # type: ignore[no-untyped-def]
    run_id = add(emulator, 300)
    table.record(ValidationRun.from_api(emulator.runs[run_id]), now=clock(), source="watch")
    for age in (1, 2):
        add(emulator, age)
    cleanup(emulator, clock, sleeper, table)
    record = table.get(run_id)
    assert record is not None
    assert (record["status"], record["status_before_delete"], record["deleted_reason"]) == (
        "deleted",
        "completed",
        "completed_expired",
    )
    assert record["golden_sample_id"] == GOLDEN
    assert list(table.undeleted_runs()) == []


def test_the_table_scan_pages_through_every_record(table, clock) -> None:  # type: ignore[no-untyped-def]
    for n in range(25):
        table.record(ValidationRun.from_api({"id": f"run-{n}", "status": "completed"}), now=clock(), source="watch")
    table.mark_deleted("run-0", now=clock(), reason="completed_expired", previous_status="completed")
    seen = [item["run_id"] for item in table.undeleted_runs(page_size=4)]
    assert sorted(seen) == sorted(f"run-{n}" for n in range(1, 25))
