"""Alerts people act on: baselines, worst fields, recovery, thresholds per golden sample, exactly once,
the Slack webhook forwarder, and the metrics behind the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.talonic_emulator import RunBehaviour
from tests.integration.conftest import GOLDEN, Watchdog, running_watchdog
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration

OTHER_GOLDEN = "11111111-2222-4333-8444-555555555555"
HEALTHY = {"invoice_number": (10, 10), "total_amount": (9, 10), "issue_date": (10, 10)}  # 96.7 %
SLIPPING = {"invoice_number": (8, 10), "total_amount": (9, 10), "issue_date": (10, 10)}  # 90.0 %
BROKEN = {"invoice_number": (4, 10), "total_amount": (8, 10), "issue_date": (9, 10)}  # 70.0 %


def finished_run(watchdog: Watchdog, fields: dict[str, tuple[int, int]], golden: str = GOLDEN, **kw: Any) -> str:
    behaviour = RunBehaviour(pending_reads=0, running_reads=1, fields=fields)
    return str(watchdog.emulator.add_run(golden_sample_id=golden, behaviour=behaviour, **kw)["id"])


def earlier_run(watchdog: Watchdog, fields: dict[str, tuple[int, int]], hours_ago: float) -> str:
    """A run that finished long before the watchdog looked: only the list API knows it."""
    behaviour = RunBehaviour(pending_seconds=60, running_seconds=600, fields=fields)
    created = watchdog.clock() - 3600 * hours_ago
    return str(watchdog.emulator.add_run(golden_sample_id=GOLDEN, behaviour=behaviour, created_at=created)["id"])


def kinds(watchdog: Watchdog) -> list[str]:
    return [m["MessageAttributes"]["kind"]["Value"] for m in watchdog.alerts()]


def test_a_drop_below_the_baseline_alerts_as_a_regression_with_the_fields_that_got_worse(watchdog: Watchdog) -> None:
    # given five earlier runs at 96.7 % that only the list API knows, and a new run at 90.0 % (on the threshold)
    baseline_ids = [earlier_run(watchdog, HEALTHY, hours_ago=6 - n) for n in range(5)]
    run_id = finished_run(watchdog, SLIPPING, name="invoices nightly")
    # when the new run is watched
    watchdog.watch({"validation_run_id": run_id})
    # then a regression alert names its baseline runs and the field that got worse
    [message] = watchdog.alerts()
    assert message["MessageAttributes"]["kind"]["Value"] == "regression"
    email = message["Structured"]["email"]
    assert "Accuracy fell 6.7 pts to 90.0 % on invoices nightly" in message["Subject"]
    assert "median 96.7 % of the last 5 completed runs" in email
    assert all(baseline_id[:8] in email for baseline_id in baseline_ids)
    assert "invoice_number: 8/10 correct (80 %), ▼ 20 pts vs baseline (100 %)" in email
    assert "issue_date" not in email.split("Fields that need attention:")[1].split("What to do:")[0]


def test_values_stay_out_of_alerts_unless_the_stack_allows_them() -> None:
    for allowed in ("false", "true"):
        with running_watchdog(AlertIncludeValues=allowed) as watchdog:
            run_id = finished_run(watchdog, BROKEN)
            watchdog.watch({"validation_run_id": run_id})
            [message] = watchdog.alerts()
            published = json.dumps(message)
            wrong_values = {
                row["expected_value"]
                for row in watchdog.emulator.results(run_id)
                if row["judge_verdict"] == "incorrect" or row["match_type"] == "no_match"
            }
            shown = {value for value in wrong_values if value and json.dumps(value)[1:-1] in published}
            if allowed == "false":
                assert shown == set()
                assert "e.g." not in message["Structured"]["email"]
            else:
                assert shown
                assert "e.g." in message["Structured"]["email"]


def test_a_golden_sample_that_alerted_sends_one_recovery_notice(watchdog: Watchdog) -> None:
    # given a bad run, then two good ones, of the same golden sample
    for fields in (BROKEN, HEALTHY, HEALTHY):
        watchdog.clock.advance(3600)
        watchdog.watch({"validation_run_id": finished_run(watchdog, fields)})
    # then the bad one alerted, the first good one recovered, and the second said nothing
    assert kinds(watchdog) == ["low_accuracy", "recovery"]
    recovery = watchdog.alerts()[1]
    assert recovery["Subject"].startswith("[INFO] Recovered: accuracy 96.7 %")
    assert "▁" in recovery["Structured"]["email"]  # the trend shows the dip


def test_thresholds_per_golden_sample_and_the_execution_override() -> None:
    with running_watchdog(GoldenSampleThresholds=f"{GOLDEN}=0.98") as watchdog:
        # given the same 96.7 % on a strict golden sample, on another one, and with a per-execution override
        watchdog.watch({"validation_run_id": finished_run(watchdog, HEALTHY)})
        watchdog.watch({"validation_run_id": finished_run(watchdog, HEALTHY, golden=OTHER_GOLDEN)})
        watchdog.watch({"validation_run_id": finished_run(watchdog, HEALTHY), "accuracy_threshold": 0.95})
        # then the strict golden sample alerted against its own threshold, the other golden sample did not, and
        # the override (95 %) judged the third run good: a recovery of the strict golden sample
        low, recovery = watchdog.alerts()
        assert low["Subject"].startswith("[WARNING] Accuracy 96.7 % below 98.0 % on ")
        assert low["MessageAttributes"]["golden_sample_id"]["Value"] == GOLDEN
        assert recovery["MessageAttributes"]["kind"]["Value"] == "recovery"
        assert "back above its threshold of 95.0 %" in recovery["Structured"]["email"]


def test_a_retried_alert_step_publishes_once(watchdog: Watchdog) -> None:
    # given a finished watch whose alert was published
    run_id = finished_run(watchdog, BROKEN)
    execution = watchdog.watch({"validation_run_id": run_id})
    state = json.loads(execution["output"])
    state.pop("report")
    # when the alert step runs again for the same run (a retry, or a second workflow)
    again = watchdog.stack.invoke("AlertFunction", state)
    # then nothing new is published and the answer is the first publication's
    assert len(watchdog.alerts()) == 1
    assert again["message_id"] == watchdog.alerts()[0]["MessageId"]


def test_the_slack_forwarder_posts_block_kit_and_retries_a_429() -> None:
    with (
        webhook_receiver(refuse_first=1) as slack,
        running_watchdog(SlackWebhookSecretArn="talonic-watchdog/slack-webhook") as watchdog,
    ):
        # given a webhook secret, and Slack refusing the first post with a 429
        watchdog.stack.client("secretsmanager").create_secret(
            Name="talonic-watchdog/slack-webhook", SecretString=json.dumps({"webhook_url": slack.url})
        )
        # when a run alerts
        watchdog.watch({"validation_run_id": finished_run(watchdog, BROKEN, name="invoices nightly")})
        # then Slack got one Block Kit message after one retry
        assert slack.statuses == [429, 200]
        [post] = slack.posts
        assert post["text"] == ":red_circle: Accuracy 70.0 % below 90.0 % on invoices nightly"
        block_types = [block["type"] for block in post["blocks"]]
        assert block_types == ["header", "section", "section", "section", "section", "actions", "context"]
        assert "invoice_number: 4/10 correct (40 %)" in json.dumps(post)
        assert {element["text"]["text"] for element in post["blocks"][5]["elements"]} == {
            "Run in Talonic",
            "Execution in the AWS console",
        }


def test_the_alert_step_emits_the_metrics_behind_the_dashboard(
    watchdog: Watchdog, capsys: pytest.CaptureFixture[str]
) -> None:
    watchdog.watch({"validation_run_id": finished_run(watchdog, BROKEN)})
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_name = {
        metric["Name"]: (document, directive["Dimensions"])
        for document in documents
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    accuracy, accuracy_dimensions = by_name["RunAccuracy"]
    assert accuracy["RunAccuracy"] == [70.0]
    assert accuracy["golden_sample_id"] == GOLDEN
    assert ["golden_sample_id", "service"] in accuracy_dimensions
    alerts, alert_dimensions = by_name["Alerts"]
    assert alerts["kind"] == "low_accuracy"
    assert ["kind", "service"] in alert_dimensions
    assert by_name["PollRequestsPerRun"][0]["PollRequestsPerRun"] == [2.0]
    assert "Polls" in by_name
