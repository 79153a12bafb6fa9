"""One test per story of the watch workflow: the end state, the SNS messages, and the traffic Talonic saw."""

from __future__ import annotations

import json

import pytest

from local.talonic_emulator import RunBehaviour
from tests.integration.conftest import GOLDEN, READ_KEY, ROTATED_READ_KEY, Watchdog

pytestmark = pytest.mark.integration

JOB_RUN = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"


def completes(accuracy: float, *, pending: int = 1, running: int = 2, status: str = "completed") -> RunBehaviour:
    return RunBehaviour(pending_reads=pending, running_reads=running, final_status=status, accuracy=accuracy)


def test_a_run_above_the_threshold_completes_without_an_alert(watchdog: Watchdog) -> None:
    # given a run that completes at 95 % after one pending and two running reads
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.95))
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then the watch succeeded quietly after four reads and three waits of about ten seconds
    assert execution["status"] == "SUCCEEDED"
    assert watchdog.alerts() == []
    assert watchdog.run_reads(run["id"]) == 4
    assert len(watchdog.waits()) == 3
    assert all(9 <= wait <= 10 for wait in watchdog.waits())
    output = json.loads(execution["output"])
    assert output["report"]["alert"] == {"alerted": False}
    assert output["poll"]["requests"] == 4
    # and the run is in the runs table with its accuracy
    record = watchdog.record(run["id"])
    assert record is not None
    assert record["status"]["S"] == "completed"
    assert record["accuracy"]["N"] == "0.95"


def test_a_run_below_the_threshold_alerts_once_by_email_and_chatbot(watchdog: Watchdog) -> None:
    # given a run that completes at 72 %
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, name="invoices nightly", behaviour=completes(0.72))
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then one alert, with a subject, a readable email and an AWS Chatbot custom notification
    assert execution["status"] == "SUCCEEDED"
    [message] = watchdog.alerts()
    assert message["Subject"] == "[CRITICAL] Accuracy 72.0 % below 90.0 % on invoices nightly"
    assert message["MessageStructure"] == "json"
    assert message["MessageAttributes"]["kind"]["Value"] == "low_accuracy"
    assert message["MessageAttributes"]["severity"]["Value"] == "critical"
    assert message["MessageAttributes"]["golden_sample_id"]["Value"] == GOLDEN
    bodies = message["Structured"]
    assert bodies is not None
    assert run["id"] in bodies["email"]
    assert "What to do:" in bodies["email"]
    chatbot = json.loads(bodies["https"])
    assert chatbot["version"] == "1.0"
    assert chatbot["source"] == "custom"
    assert "72.0 %" in chatbot["content"]["title"]
    assert chatbot["metadata"]["threadId"] == f"golden-sample-{GOLDEN}"


def test_a_failed_run_alerts(watchdog: Watchdog) -> None:
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.0, status="failed"))
    execution = watchdog.watch({"validation_run_id": run["id"]})
    assert execution["status"] == "SUCCEEDED"
    [message] = watchdog.alerts()
    assert message["MessageAttributes"]["kind"]["Value"] == "run_failed"
    assert "failed" in message["Subject"]


def test_the_deadline_ends_the_watch_with_a_timeout_alert(watchdog: Watchdog) -> None:
    # given a run that never leaves pending, and a watch with a 3-minute deadline
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_seconds=10**7))
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"], "deadline_minutes": 3})
    # then the execution fails by name after about 3 virtual minutes, with one timeout alert
    assert execution["status"] == "FAILED"
    assert execution["error"] == "WatchDeadlineExceeded"
    [message] = watchdog.alerts()
    assert message["MessageAttributes"]["kind"]["Value"] == "timed_out"
    assert 170 <= sum(watchdog.waits()) <= 181
    assert 10 <= watchdog.run_reads(run["id"]) <= 20


def test_a_run_deleted_mid_watch_alerts_and_fails_by_name(watchdog: Watchdog) -> None:
    # given a running run that someone deletes after the watch's second read
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.9, pending=5, running=5))
    watchdog.emulator.after_requests(
        2, lambda: watchdog.emulator.remove_run(run["id"]), method="GET", path_regex=run["id"]
    )
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then the watch alerts "run missing" and fails with RunNotFoundError
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RunNotFoundError"
    [message] = watchdog.alerts()
    assert message["MessageAttributes"]["kind"]["Value"] == "run_missing"
    assert watchdog.run_reads(run["id"]) == 3


def test_a_key_revoked_mid_watch_is_refetched_once_then_alerts(watchdog: Watchdog) -> None:
    # given a run, and the read key revoked after the watch's first read
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.9, pending=5, running=5))
    watchdog.emulator.after_requests(1, lambda: watchdog.emulator.revoke_key(READ_KEY), method="GET")
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then the second poll met a 401, fetched the secret again, met another 401, and the watch alerted
    assert execution["status"] == "FAILED"
    assert execution["error"] == "WatchUnauthorizedError"
    assert [r.status for r in watchdog.emulator.requests] == [200, 401, 401]
    [message] = watchdog.alerts()
    assert message["MessageAttributes"]["kind"]["Value"] == "unauthorized"
    assert READ_KEY not in json.dumps(message)


def test_a_key_rotated_mid_watch_is_picked_up_without_an_alert(watchdog: Watchdog) -> None:
    # given the read key replaced in Talonic and in the secret after the first read
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.95))
    watchdog.emulator.add_key(ROTATED_READ_KEY, scopes={"read"}, alias="rotated")

    def rotate() -> None:
        watchdog.emulator.revoke_key(READ_KEY)
        watchdog.stack.put_secret("ReadKeySecret", ROTATED_READ_KEY)

    watchdog.emulator.after_requests(1, rotate, method="GET")
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then one 401 led to a fresh secret and the watch finished
    assert execution["status"] == "SUCCEEDED"
    assert [r.key_alias for r in watchdog.emulator.requests if r.status == 401] == ["read"]
    assert watchdog.alerts() == []


def test_a_429_storm_waits_as_long_as_talonic_asked(watchdog: Watchdog) -> None:
    # given three 429s asking for 45 s each, then a run that completes
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.95, pending=0, running=1))
    watchdog.emulator.inject("status", count=3, status=429, retry_after_seconds=45, method="GET")
    # when it is watched
    execution = watchdog.watch({"validation_run_id": run["id"]})
    # then the workflow waited 45 s three times instead of failing, and no Lambda slept through them
    assert execution["status"] == "SUCCEEDED"
    assert watchdog.waits()[:3] == [45, 45, 45]
    assert watchdog.emulator.count(status=429) == 3
    assert watchdog.alerts() == []


def test_a_job_run_gets_a_validation_run_created_then_watched(watchdog: Watchdog) -> None:
    # given a finished job run, and a create whose answer is lost once (the run exists, the reply does not)
    watchdog.emulator.default_behaviour = completes(0.95)
    watchdog.emulator.inject("drop", count=1, method="POST", after_processing=True)
    # when the workflow is started for it
    execution = watchdog.watch({"dataspace_run_id": JOB_RUN, "golden_sample_id": GOLDEN, "name": "nightly"})
    # then exactly one run was created (the retry replayed the same Idempotency-Key) and it was watched
    assert execution["status"] == "SUCCEEDED"
    posts = watchdog.emulator.requests_matching(method="POST")
    assert len(posts) == 2
    assert len({post.idempotency_key for post in posts}) == 1
    [run_id] = list(watchdog.emulator.runs)
    assert posts[0].json_body == {"golden_sample_id": GOLDEN, "dataspace_run_id": JOB_RUN, "name": "nightly"}
    assert watchdog.run_reads(run_id) == 4
    record = watchdog.record(run_id)
    assert record is not None
    assert record["dataspace_run_id"]["S"] == JOB_RUN


def test_the_same_run_started_twice_is_watched_once_and_alerts_once(watchdog: Watchdog) -> None:
    # given a run that will complete below the threshold
    run = watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=completes(0.5))
    event = {"source": "talonic", "detail-type": "run.dataspace.completed", "detail": {"validation_run_id": run["id"]}}
    # when the start function is called twice for it, and someone also starts a watch under another name
    first = watchdog.stack.invoke("StartWatchFunction", event)
    second = watchdog.stack.invoke("StartWatchFunction", event)
    arn = watchdog.executions()[0]["executionArn"]
    watchdog.stack.wait_for_execution(arn)
    other = watchdog.watch({"validation_run_id": run["id"]}, name="manual-rewatch")
    # then one execution watched it, the other stood down, and one alert went out
    assert first["execution_name"] == second["execution_name"] == f"run-{run['id']}"
    assert [e["name"] for e in watchdog.executions()] == ["manual-rewatch", f"run-{run['id']}"]
    assert other["status"] == "SUCCEEDED"
    assert "AlreadyWatched" in {
        e.get("stateEnteredEventDetails", {}).get("name")
        for e in watchdog.stack.execution_history(other["executionArn"])
    }
    assert len(watchdog.alerts()) == 1


@pytest.mark.parametrize(
    "bad_input",
    [{}, {"validation_run_id": "not-a-uuid"}, {"dataspace_run_id": JOB_RUN}, {"validation_run_id": GOLDEN, "x": 1}],
)
def test_bad_input_fails_at_once_by_name_without_calling_talonic(watchdog: Watchdog, bad_input: dict) -> None:  # type: ignore[type-arg]
    execution = watchdog.watch(bad_input)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidWatchInputError"
    assert watchdog.emulator.requests == []
    assert watchdog.alerts() == []


# -- triggers ----------------------------------------------------------------------------------------------


def signal_body(run_id: str = JOB_RUN, attempt: int = 1) -> str:
    return json.dumps(
        {
            "event": {
                "event_type": "run.dataspace.completed",
                "event_id": "evt_1",
                "idempotency_key": "idem_1",
                "attempt": attempt,
                "delivered_at": "2026-12-04T12:00:00.000Z",
            },
            "payload": {"run_id": run_id, "golden_sample_id": GOLDEN},
            "content": None,
        }
    )


def test_a_signal_with_good_auth_starts_one_watch_even_when_redelivered(watchdog: Watchdog) -> None:
    # given Talonic's signal for a finished job run, delivered three times (at-least-once delivery)
    watchdog.emulator.default_behaviour = completes(0.95)
    headers = {"X-API-Key": watchdog.ingress_token(), "Content-Type": "application/json"}
    # when it reaches the ingress URL
    answers = [
        watchdog.stack.invoke_function_url("IngressFunction", headers=headers, body=signal_body(attempt=n))
        for n in (1, 2, 3)
    ]
    # then every delivery is accepted, one execution watches the job run, and one run is created
    assert [answer["statusCode"] for answer in answers] == [202, 202, 202]
    [execution] = watchdog.executions()
    assert execution["name"].startswith(f"job-{JOB_RUN}-")
    done = watchdog.stack.wait_for_execution(execution["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert len(watchdog.emulator.runs) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "wrong-token-of-enough-length"}, 401), ({"Authorization": "Bearer nope"}, 401)],
)
def test_a_signal_with_missing_or_wrong_auth_starts_nothing(watchdog: Watchdog, headers: dict, status: int) -> None:  # type: ignore[type-arg]
    answer = watchdog.stack.invoke_function_url("IngressFunction", headers=headers, body=signal_body())
    assert answer["statusCode"] == status
    assert watchdog.executions() == []
    assert watchdog.emulator.requests == []


def test_a_signal_with_a_bad_body_gets_400_and_starts_nothing(watchdog: Watchdog) -> None:
    headers = {"X-API-Key": watchdog.ingress_token()}
    answer = watchdog.stack.invoke_function_url("IngressFunction", headers=headers, body='{"event": "x"}')
    assert answer["statusCode"] == 400
    assert watchdog.executions() == []


def test_an_event_from_your_own_pipeline_starts_a_watch(watchdog: Watchdog) -> None:
    # given a job run announced on the bus by someone's own pipeline
    watchdog.emulator.default_behaviour = completes(0.95)
    detail = {"dataspace_run_id": JOB_RUN, "golden_sample_id": GOLDEN}
    watchdog.stack.put_events(
        [{"Source": "talonic", "DetailType": "run.dataspace.completed", "Detail": json.dumps(detail)}]
    )
    # then the rule from the template started the watch, and an event of another type started nothing
    watchdog.stack.put_events([{"Source": "talonic", "DetailType": "run.dataspace.failed", "Detail": "{}"}])
    [execution] = watchdog.executions()
    assert watchdog.stack.wait_for_execution(execution["executionArn"])["status"] == "SUCCEEDED"
