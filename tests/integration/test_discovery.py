"""Discovery: runs started outside the watchdog are watched or recorded exactly once across sweeps."""

from __future__ import annotations

import json

import pytest
import requests

from local.talonic_emulator import RunBehaviour
from tests.integration.conftest import GOLDEN, READ_KEY, REPO, Watchdog

pytestmark = pytest.mark.integration

SCHEDULE_EVENT = json.loads((REPO / "events/discovery/schedule.json").read_text())
HOUR = 3600


def sweep(watchdog: Watchdog) -> dict:  # type: ignore[type-arg]
    report = watchdog.stack.invoke("DiscoveryFunction", SCHEDULE_EVENT)
    for execution in watchdog.executions():
        watchdog.stack.wait_for_execution(execution["executionArn"])
    return report  # type: ignore[no-any-return]


def started_elsewhere(watchdog: Watchdog, *, hours_ago: float, behaviour: RunBehaviour, **kw) -> str:  # type: ignore[no-untyped-def]
    created = watchdog.clock() - hours_ago * HOUR
    return str(watchdog.emulator.add_run(golden_sample_id=GOLDEN, created_at=created, behaviour=behaviour, **kw)["id"])


def test_each_new_run_is_watched_or_recorded_exactly_once_across_sweeps(watchdog: Watchdog) -> None:
    # given runs started from Talonic's dashboard: one running, one that just completed low, one that failed an
    # hour ago, and one that completed last month
    running = started_elsewhere(
        watchdog, hours_ago=0.01, behaviour=RunBehaviour(pending_reads=0, running_reads=2, accuracy=0.95)
    )
    just_low = started_elsewhere(
        watchdog, hours_ago=1, behaviour=RunBehaviour(pending_seconds=60, running_seconds=60, accuracy=0.5)
    )
    failed = started_elsewhere(
        watchdog, hours_ago=2, behaviour=RunBehaviour(pending_seconds=60, running_seconds=60, final_status="failed")
    )
    ancient = started_elsewhere(
        watchdog, hours_ago=24 * 30, behaviour=RunBehaviour(pending_seconds=60, running_seconds=60, accuracy=0.3)
    )
    # when the sweep runs three times
    reports = [sweep(watchdog) for _ in range(3)]
    # then the first sweep found four new runs, watched three and only recorded the old one; later sweeps
    # found nothing new
    assert reports[0] | {"requests": 0} == {
        "seen": 4,
        "new": 4,
        "watches_started": 3,
        "already_watching": 0,
        "recorded_only": 1,
        "skipped": 0,
        "skipped_reason": None,
        "may_have_missed_runs": False,
        "requests": 0,
    }
    assert [r["new"] for r in reports[1:]] == [0, 0]
    names = sorted(e["name"] for e in watchdog.executions())
    assert names == sorted(f"run-{run_id}" for run_id in (running, just_low, failed))
    # and each recent finished run alerted once, the running one completed above the threshold after them (a
    # recovery of the golden sample), and the old one never alerted
    kinds = sorted(m["MessageAttributes"]["kind"]["Value"] for m in watchdog.alerts())
    assert kinds == ["low_accuracy", "recovery", "run_failed"]
    assert watchdog.record(ancient)["status"]["S"] == "completed"  # type: ignore[index]
    assert all(watchdog.record(run_id) for run_id in (running, just_low, failed, ancient))
    # one list call per sweep (the alert step's baseline lookups list too, on their own account)
    assert [report["requests"] for report in reports] == [1, 1, 1]


def test_runs_the_workflow_already_watches_are_left_alone(watchdog: Watchdog) -> None:
    # given a run watched through the workflow
    run = watchdog.emulator.add_run(
        golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=0, running_reads=1, accuracy=0.95)
    )
    watchdog.watch({"validation_run_id": run["id"]})
    # when the sweep runs
    report = sweep(watchdog)
    # then it knows the run and starts nothing
    assert report["seen"] == 1
    assert report["new"] == 0
    assert len(watchdog.executions()) == 1


def test_a_first_sweep_over_a_long_history_sends_no_alert_storm(watchdog: Watchdog) -> None:
    # given 150 low-accuracy runs finished over the last months (more than the list's newest-100 horizon)
    for n in range(150):
        started_elsewhere(
            watchdog, hours_ago=48 + n, behaviour=RunBehaviour(pending_seconds=1, running_seconds=1, accuracy=0.4)
        )
    # when the first sweep runs
    report = sweep(watchdog)
    # then the 100 listed runs are recorded, none watched or alerted, and the sweep says runs may have been missed
    assert report["seen"] == 100
    assert report["recorded_only"] == 100
    assert report["watches_started"] == 0
    assert report["may_have_missed_runs"] is True
    assert watchdog.alerts() == []


def test_the_sweep_stands_down_when_the_rate_limit_budget_is_low(watchdog: Watchdog) -> None:
    # given a daily quota of 10 requests of which someone else spent 8 with the same key, and a new running run
    watchdog.emulator.daily_quota = 10
    run_id = started_elsewhere(watchdog, hours_ago=0.01, behaviour=RunBehaviour(pending_reads=0, running_reads=5))
    for _ in range(8):
        requests.get(
            f"{watchdog.emulator.url}/v1/validation/runs/{run_id}",
            headers={"Authorization": f"Bearer {READ_KEY}"},
            timeout=5,
        )
    # when two sweeps run: the first learns the budget from its list call, the second knows it before calling
    first = watchdog.stack.invoke("DiscoveryFunction", SCHEDULE_EVENT)
    second = watchdog.stack.invoke("DiscoveryFunction", SCHEDULE_EVENT)
    # then neither started a watch, the run stays unrecorded for a later sweep, and the second made no request
    assert first["seen"] == 1
    assert first["watches_started"] == 0
    assert first["skipped_reason"] == "rate-limit budget low"
    assert watchdog.record(run_id) is None
    assert second["seen"] == 0
    assert second["requests"] == 0
    assert second["skipped_reason"] == "rate-limit budget low"
    assert watchdog.executions() == []
