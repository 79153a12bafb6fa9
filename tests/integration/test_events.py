"""Every sample event in events/ is invoked on its function and does what its name says, so none goes stale.

The same files serve `sam local invoke <Function> -e events/<function>/<case>.json` on a machine with Docker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from local.talonic_emulator import RunBehaviour
from talonic_watchdog.watch import InvalidWatchInputError
from tests.integration.conftest import GOLDEN, REPO, Watchdog, running_watchdog
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration

RUN_ID = "0b9f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
JOB_RUN = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"


def event(path: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "events" / path).read_text()))


def kinds(watchdog: Watchdog) -> list[str]:
    return [m["MessageAttributes"]["kind"]["Value"] for m in watchdog.alerts()]


def finish_executions(watchdog: Watchdog) -> list[str]:
    """Let the watches a case started finish before the stack goes away; their end states."""
    return [watchdog.stack.wait_for_execution(e["executionArn"])["status"] for e in watchdog.executions()]


def prepare_existing_run(w: Watchdog) -> None:
    state = w.stack.invoke("PrepareWatchFunction", event("prepare_watch/existing_run.json"))
    assert state["watch"]["validation_run_id"] == RUN_ID
    assert state["watch"]["execution_arn"].endswith(f"run-{RUN_ID}")


def prepare_job_run(w: Watchdog) -> None:
    state = w.stack.invoke("PrepareWatchFunction", event("prepare_watch/job_run.json"))
    assert state["watch"]["create_idempotency_key"].startswith("watchdog-create-")
    assert state["watch"]["accuracy_threshold"] == 0.95
    assert state["watch"]["deadline_at"] - state["watch"]["started_at"] == 120 * 60


def prepare_bad_input(w: Watchdog) -> None:
    with pytest.raises(InvalidWatchInputError, match="unknown input field"):
        w.stack.invoke("PrepareWatchFunction", event("prepare_watch/bad_input.json"))


def create_run(w: Watchdog) -> None:
    state = w.stack.invoke("CreateRunFunction", event("create_run/job_run_state.json"))
    [run] = w.emulator.runs.values()
    assert state["watch"]["validation_run_id"] == run["id"]
    assert run["dataspace_run_id"] == JOB_RUN


def poll_first(w: Watchdog) -> None:
    w.emulator.add_run(golden_sample_id=GOLDEN, run_id=RUN_ID, behaviour=RunBehaviour(pending_reads=3))
    state = w.stack.invoke("PollRunFunction", event("poll_run/first_poll_state.json"))
    assert state["poll"]["next"] == "wait"
    assert state["poll"]["wait_seconds"] >= 1
    assert state["run"]["status"] == "pending"


def alert_low(w: Watchdog) -> None:
    assert w.stack.invoke("AlertFunction", event("alert/low_accuracy_state.json"))["kind"] == "low_accuracy"
    assert kinds(w) == ["low_accuracy"]


def alert_failed(w: Watchdog) -> None:
    assert w.stack.invoke("AlertFunction", event("alert/run_failed_state.json"))["kind"] == "run_failed"


def alert_unauthorized(w: Watchdog) -> None:
    assert w.stack.invoke("AlertFunction", event("alert/watch_unauthorized_state.json"))["kind"] == "unauthorized"
    assert "401" in w.alerts()[0]["Structured"]["email"]


def start_watch(w: Watchdog) -> None:
    w.emulator.default_behaviour = RunBehaviour(pending_reads=0, running_reads=1, accuracy=0.95)
    answer = w.stack.invoke("StartWatchFunction", event("start_watch/job_run_completed.json"))
    assert answer["execution_name"].startswith(f"job-{JOB_RUN}-")
    assert [e["name"] for e in w.executions()] == [answer["execution_name"]]
    assert finish_executions(w) == ["SUCCEEDED"]


def ingress_signal(w: Watchdog) -> None:
    w.emulator.default_behaviour = RunBehaviour(pending_reads=0, running_reads=1, accuracy=0.95)
    request = event("ingress/signal.json")
    request["headers"]["x-api-key"] = w.ingress_token()
    answer = w.stack.invoke("IngressFunction", request)
    assert answer["statusCode"] == 202
    assert finish_executions(w) == ["SUCCEEDED"]


def cleanup_schedule(w: Watchdog) -> None:
    report = w.stack.invoke("CleanupFunction", event("cleanup/schedule.json"))
    assert report["dry_run"] is True  # a new stack only dry-runs


def cleanup_dry_run(w: Watchdog) -> None:
    assert w.stack.invoke("CleanupFunction", event("cleanup/dry_run.json"))["dry_run"] is True


def discovery_schedule(w: Watchdog) -> None:
    w.emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=1, running_reads=0, accuracy=1))
    report = w.stack.invoke("DiscoveryFunction", event("discovery/schedule.json"))
    assert report["watches_started"] == 1
    assert finish_executions(w) == ["SUCCEEDED"]


CASES: dict[str, Callable[[Watchdog], None]] = {
    "prepare_watch/existing_run.json": prepare_existing_run,
    "prepare_watch/job_run.json": prepare_job_run,
    "prepare_watch/bad_input.json": prepare_bad_input,
    "create_run/job_run_state.json": create_run,
    "poll_run/first_poll_state.json": poll_first,
    "alert/low_accuracy_state.json": alert_low,
    "alert/run_failed_state.json": alert_failed,
    "alert/watch_unauthorized_state.json": alert_unauthorized,
    "start_watch/job_run_completed.json": start_watch,
    "ingress/signal.json": ingress_signal,
    "cleanup/schedule.json": cleanup_schedule,
    "cleanup/dry_run.json": cleanup_dry_run,
    "discovery/schedule.json": discovery_schedule,
}


def test_every_sample_event_is_exercised_and_every_function_has_one():
    files = {str(path.relative_to(REPO / "events")) for path in (REPO / "events").glob("*/*.json")}
    assert files == set(CASES) | {"slack_forwarder/alert_notification.json"}
    functions = {path.name for path in (REPO / "functions").iterdir() if (path / "app.py").exists()}
    assert {name.split("/")[0] for name in files} == functions


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_sample_event_does_what_its_name_says(watchdog: Watchdog, case: str) -> None:
    CASES[case](watchdog)


def test_the_slack_sample_event_posts_one_message() -> None:
    with webhook_receiver() as slack, running_watchdog(SlackWebhookSecretArn="talonic-watchdog/slack") as w:
        w.stack.client("secretsmanager").create_secret(Name="talonic-watchdog/slack", SecretString=slack.url)
        assert w.stack.invoke("SlackForwarderFunction", event("slack_forwarder/alert_notification.json")) == {
            "posted": 1
        }
        assert slack.posts[0]["text"] == ":warning: Accuracy 81.0 % below 90.0 % on invoices nightly"
