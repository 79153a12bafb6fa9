"""Cleanup through the stack: the real template on moto, the CleanupFunction invoked with the scheduler's
event (moto's Scheduler never fires), Talonic emulated. The rate limiter's sleeps move the virtual clock, and
so does the Lambda's remaining time: nothing waits for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from local.stack.resources import Schedule
from local.talonic_emulator import RunBehaviour
from talonic_watchdog.models import ValidationRun
from talonic_watchdog.runs_table import RunsTable
from tests.integration.conftest import GOLDEN, READ_KEY, REPO, Watchdog, running_watchdog

pytestmark = pytest.mark.integration

DAY = 86_400.0
LIVE = {
    "CleanupDryRun": "false",
    "KeepNewestPerGoldenSample": "2",
    "CleanupMaxDeletionShare": "1",
    "CleanupExemptNamePrefixes": "pinned-,keep-",
}


class Cleanup(Watchdog):
    """The running watchdog, with the verbs of the cleanup stories."""

    def add(self, age_days: float, status: str = "completed", *, name: str | None = None) -> str:
        """A run that finished `age_days` ago; pending and running runs were created then."""
        if status in ("completed", "failed"):
            behaviour = RunBehaviour(pending_seconds=0, running_seconds=60, final_status=status)  # type: ignore[arg-type]
            created = self.clock() - age_days * DAY - 60
            run = self.emulator.add_run(golden_sample_id=GOLDEN, name=name, created_at=created, behaviour=behaviour)
        else:
            created = self.clock() - age_days * DAY
            run = self.emulator.add_run(golden_sample_id=GOLDEN, name=name, created_at=created, status=status)
        return str(run["id"])

    @property
    def table(self) -> RunsTable:
        resource = boto3.session.Session(region_name="us-east-1").resource("dynamodb")
        return RunsTable(resource.Table(self.stack.outputs["RunsTableName"]))

    def remember(self, run_id: str) -> None:
        """Record the run in the runs table, as a watch of it long ago would have."""
        self.table.record(ValidationRun.from_api(self.emulator.runs[run_id]), now=self.clock(), source="watch")

    @property
    def schedule(self) -> Schedule:
        [schedule] = [s for s in self.stack.schedules.values() if s.target_logical_id == "CleanupFunction"]
        return schedule

    def scheduled_event(self) -> Any:
        return json.loads(self.schedule.input or "{}")

    def run(self, event: Any = None) -> dict[str, Any]:
        """Invoke the function as the schedule does (or with `event`)."""
        result: dict[str, Any] = self.stack.invoke(
            "CleanupFunction", self.scheduled_event() if event is None else event
        )
        return result

    def reports(self) -> list[dict[str, Any]]:
        return [dict(message) for message in self.stack.published_messages("AlertTopic")]


@contextmanager
def cleanup_stack(**parameters: str) -> Iterator[Cleanup]:
    with running_watchdog(**parameters) as running:
        yield Cleanup(stack=running.stack, emulator=running.emulator, clock=running.clock)


@pytest.fixture
def new_stack() -> Iterator[Cleanup]:
    """A stack deployed with the defaults: cleanup is a dry run."""
    with cleanup_stack() as cleanup:
        yield cleanup


@pytest.fixture
def live() -> Iterator[Cleanup]:
    """A stack whose operator switched dry run off (two baselines, two exempt prefixes, no share cap)."""
    with cleanup_stack(**LIVE) as cleanup:
        yield cleanup


def test_the_schedule_the_template_declares(new_stack: Cleanup) -> None:
    stack = new_stack.stack
    schedule = new_stack.schedule
    assert (schedule.kind, schedule.target_logical_id, schedule.enabled) == ("ScheduleV2", "CleanupFunction", True)
    assert schedule.expression == "cron(30 3 * * ? *)"
    assert new_stack.scheduled_event() == {"source": "schedule"}
    described = stack.client("scheduler").get_schedule(Name=schedule.name)
    assert described["ScheduleExpressionTimezone"] == "UTC"
    assert described["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    queue_arn = described["Target"]["DeadLetterConfig"]["Arn"]
    assert queue_arn == stack.attributes["CleanupFunctionNightlyQueue"]["Arn"]
    assert stack.outputs["CleanupFunctionName"] == stack.resources["CleanupFunction"]
    # and the function knows both keys' secrets and the tunables, with the safe defaults
    environment = stack.functions["CleanupFunction"].environment
    assert environment["TALONIC_WRITE_KEY_SECRET"] == stack.outputs["WriteKeySecretArn"]
    assert environment["TALONIC_READ_KEY_SECRET"] == stack.outputs["ReadKeySecretArn"]
    assert (environment["CLEANUP_DRY_RUN"], environment["CLEANUP_RETENTION_DAYS"]) == ("true", "90")
    assert stack.functions["CleanupFunction"].timeout == 300


def test_the_write_key_secret_denies_everyone_but_create_and_cleanup(new_stack: Cleanup) -> None:
    stack = new_stack.stack
    described = stack.client("secretsmanager").get_resource_policy(SecretId=stack.outputs["WriteKeySecretArn"])
    [statement] = json.loads(described["ResourcePolicy"])["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "secretsmanager:GetSecretValue",
    )
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [stack.attributes["CreateRunFunctionRole"]["Arn"], stack.attributes["CleanupFunctionRole"]["Arn"]]


def test_a_disabled_schedule_with_its_own_expression_and_time_zone() -> None:
    parameters = {
        "CleanupEnabled": "false",
        "CleanupSchedule": "cron(0 4 ? * MON *)",
        "CleanupScheduleTimezone": "Europe/Berlin",
    }
    with cleanup_stack(**parameters) as cleanup:
        schedule = cleanup.schedule
        described = cleanup.stack.client("scheduler").get_schedule(Name=schedule.name)
        assert (described["State"], described["ScheduleExpression"], described["ScheduleExpressionTimezone"]) == (
            "DISABLED",
            "cron(0 4 ? * MON *)",
            "Europe/Berlin",
        )


def test_a_new_stack_only_reports_what_it_would_delete(new_stack: Cleanup) -> None:
    # given outdated runs and recent ones
    outdated = {new_stack.add(age) for age in (200, 300)} | {new_stack.add(100, "failed")}
    for age in range(1, 9):
        new_stack.add(age)
    # when the schedule fires, and when someone asks for dry_run false by hand
    scheduled = new_stack.run()
    manual = new_stack.run({"dry_run": False})
    # then nothing is deleted: a manual request cannot turn a dry-run stack into deleting
    assert new_stack.emulator.count(method="DELETE") == 0
    for result in (scheduled, manual):
        assert result["dry_run"] is True
        assert {line["run_id"] for line in result["runs"]["would_delete"]} == outdated
        assert result["deleted"] == 0
    # and each run published a report that says so
    report = new_stack.reports()[0]
    assert report["Subject"] == "[INFO] Cleanup dry run: would delete 3 of 11 runs"
    assert report["MessageAttributes"]["kind"]["Value"] == "cleanup_report"
    assert report["Structured"] is not None
    assert "Set CleanupDryRun to false" in report["Structured"]["email"]
    assert len(new_stack.reports()) == 2


def test_a_manual_dry_run_on_a_live_stack_deletes_nothing(live: Cleanup) -> None:
    # given the sample events, and outdated runs on a stack that deletes
    schedule_event = json.loads((REPO / "events/cleanup/schedule.json").read_text())
    dry_run_event = json.loads((REPO / "events/cleanup/dry_run.json").read_text())
    assert schedule_event == live.scheduled_event()
    outdated = {live.add(age) for age in (200, 300)}
    for age in (1, 2, 3):
        live.add(age)
    # when someone invokes it by hand with {"dry_run": true}
    result = live.run(dry_run_event)
    # then this one run only reports
    assert result["dry_run"] is True
    assert {line["run_id"] for line in result["runs"]["would_delete"]} == outdated
    assert live.emulator.count(method="DELETE") == 0
    # and a request it does not understand is refused, not guessed
    with pytest.raises(Exception, match="unknown input field") as raised:
        live.run({"dryrun": True})
    assert type(raised.value).__name__ == "InvalidCleanupInputError"
    assert live.emulator.count(method="DELETE") == 0


def test_a_live_stack_deletes_outdated_runs_including_those_beyond_the_lists_horizon(live: Cleanup) -> None:
    # given outdated runs recorded by earlier watches, then 100 newer runs that fill the list
    old = [live.add(age) for age in (400, 500, 600)] + [live.add(40, "failed")]
    for run_id in old:
        live.remember(run_id)
    exempt = live.add(700, name="keep-audit")
    live.remember(exempt)
    for n in range(100):
        live.add(1 + n / 100)
    # when the schedule fires
    result = live.run()
    # then the old runs were found in the table, read again, deleted, and marked in the table
    assert {line["run_id"] for line in result["runs"]["deleted"]} == set(old)
    assert (result["examined"], result["eligible"], result["failed"], result["deferred"]) == (105, 4, 0, 0)
    assert result["sources"] == {"listed": 100, "recorded": 5, "table_only": 5, "unreadable": 0}
    assert result["kept"] == {"baseline": 2, "exempt": 1, "within_retention": 98}
    assert set(old).isdisjoint(live.emulator.runs)
    assert exempt in live.emulator.runs
    for run_id in old:
        record = live.table.get(run_id)
        assert record is not None
        assert record["status"] == "deleted"
    # and the report went to the alert topic
    [report] = live.reports()
    assert report["Subject"] == "[INFO] Cleanup deleted 4 of 4 outdated runs"
    assert report["MessageAttributes"]["severity"]["Value"] == "info"
    assert result["message_id"] == report["MessageId"]
    # and a second run has nothing to do, and says nothing
    again = live.run()
    assert (again["eligible"], again["message_id"]) == (0, None)
    assert len(live.reports()) == 1


def test_the_cap_stops_everything_and_alerts() -> None:
    with cleanup_stack(**LIVE, CleanupMaxDeletions="2") as cleanup:
        for age in range(200, 205):
            cleanup.add(age)
        result = cleanup.run()
        assert result["blocked"] == "would delete 3 of the 5 runs seen, more than CleanupMaxDeletions (2)"
        assert cleanup.emulator.count(method="DELETE") == 0
        [alert] = cleanup.reports()
        assert alert["MessageAttributes"]["kind"]["Value"] == "cleanup_blocked"
        assert alert["MessageAttributes"]["severity"]["Value"] == "warning"


def test_a_read_only_key_in_the_write_secret_fails_with_a_clear_error(live: Cleanup) -> None:
    # given a write-key secret that holds a key with the read scope only
    live.stack.put_secret("WriteKeySecret", READ_KEY)
    outdated = {live.add(age) for age in range(200, 210)}
    for age in (1, 2):
        live.add(age)
    # when the schedule fires, the function fails by name, after publishing what happened
    with pytest.raises(Exception, match="the write key lacks the write scope") as raised:
        live.run()
    assert type(raised.value).__name__ == "CleanupUnauthorizedError"
    assert outdated <= set(live.emulator.runs)
    [report] = live.reports()
    assert report["Subject"].startswith("[WARNING] Cleanup stopped: the write key lacks the write scope")
    assert READ_KEY not in json.dumps(report)


def test_a_429_storm_finishes_with_nothing_lost(live: Cleanup) -> None:
    outdated = {live.add(200 + age) for age in range(12)}
    for age in (1, 2):
        live.add(age)
    live.emulator.inject("status", count=10, method="DELETE", status=429)
    result = live.run()
    assert {line["run_id"] for line in result["runs"]["deleted"]} == outdated
    assert result["requests"]["rate_limited"] == 10
    assert (result["failed"], result["deferred"]) == (0, 0)
    assert outdated.isdisjoint(live.emulator.runs)


def test_the_lambda_deadline_stops_cleanly_and_the_next_run_resumes(live: Cleanup) -> None:
    outdated = {live.add(200 + age) for age in range(20)}
    for age in (1, 2):
        live.add(age)
    # given that the Lambda's 300 s are nearly gone after the third delete
    live.emulator.after_requests(3, lambda: live.clock.advance(285), method="DELETE")
    first = live.run()
    assert first["deferred"] > 0
    assert first["deleted"] + first["deferred"] == 20
    assert {line["note"] for line in first["runs"]["deferred"]} == {"deadline"}
    deleted_first = {line["run_id"] for line in first["runs"]["deleted"]}
    # and the next scheduled run deletes what was left
    second = live.run()
    assert deleted_first | {line["run_id"] for line in second["runs"]["deleted"]} == outdated
    assert live.emulator.count(method="DELETE") == 20
