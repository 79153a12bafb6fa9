"""Classifying finished watches and building the alert bodies for every kind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from talonic_watchdog.alerts import AlertContext, AlertKind, build_alert, classify, render
from talonic_watchdog.baselines import Baseline, BaselineRun
from talonic_watchdog.field_accuracy import FieldChange

RUN_ID = "0b9f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:watch:run-x"
BASELINE = Baseline(
    (
        BaselineRun("aaaaaaaa-0000-4000-8000-000000000001", 0.96, "2026-12-03T10:00:00.000Z"),
        BaselineRun("aaaaaaaa-0000-4000-8000-000000000002", 0.95, "2026-12-02T10:00:00.000Z"),
        BaselineRun("aaaaaaaa-0000-4000-8000-000000000003", 0.97, "2026-12-01T10:00:00.000Z"),
    )
)


def state(next_step: str | None = "completed", accuracy: float | None = 0.8, **extra: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": RUN_ID,
        "status": next_step or "running",
        "golden_sample_id": GOLDEN,
        "name": "nightly",
    }
    if accuracy is not None:
        run["accuracy"] = accuracy
    base = {
        "watch": {
            "execution_name": "run-x",
            "execution_arn": EXECUTION,
            "started_at": 0,
            "deadline_at": 3600,
            "validation_run_id": RUN_ID,
        },
        "run": run,
        "poll": {"polls": 7, "requests": 7, "next": next_step},
    }
    return base | extra


CONTEXT = AlertContext(threshold=0.9, regression_points=5, baseline=BASELINE, trend=(0.96, 0.95, 0.97, 0.8))


@pytest.mark.parametrize(
    ("accuracy", "previous", "kind"),
    [
        (0.97, None, None),
        (0.93, None, None),  # 3 points under the baseline's median of 96 %: not a regression
        (0.91, None, AlertKind.REGRESSION),  # above the threshold, 5 points under the median
        (0.85, None, AlertKind.LOW_ACCURACY),
        (0.95, "low_accuracy", AlertKind.RECOVERY),
        (0.95, "run_failed", AlertKind.RECOVERY),
        (0.95, "recovery", None),  # one recovery notice, not one per good run
        (0.85, "low_accuracy", AlertKind.LOW_ACCURACY),
    ],
)
def test_completed_runs_are_classified_against_threshold_baseline_and_history(accuracy, previous, kind):
    context = AlertContext(threshold=0.9, regression_points=5, baseline=BASELINE, previous_alert_kind=previous)
    assert classify(state(accuracy=accuracy), context) is kind


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"next_step": "failed", "accuracy": None}, AlertKind.RUN_FAILED),
        ({"next_step": "deadline", "accuracy": None}, AlertKind.TIMED_OUT),
        ({"next_step": "completed", "accuracy": None}, AlertKind.WATCH_FAILED),
        (
            {
                "error": {
                    "Error": "WatchUnauthorizedError",
                    "Cause": json.dumps({"errorMessage": "401 tlnc_live_abc12"}),
                }
            },
            AlertKind.UNAUTHORIZED,
        ),
        ({"error": {"Error": "RunNotFoundError", "Cause": "{}"}}, AlertKind.RUN_MISSING),
        ({"error": {"Error": "ApiUnavailableError", "Cause": "plain"}}, AlertKind.WATCH_FAILED),
        ({"error": {"Error": "States.Timeout", "Cause": ""}}, AlertKind.WATCH_FAILED),
    ],
)
def test_every_other_outcome_has_its_kind_and_no_key_leaks(kwargs, kind):
    given = state(**kwargs)
    assert classify(given, CONTEXT) is kind
    alert = build_alert(given, kind, CONTEXT)
    assert "tlnc_live_abc12" not in json.dumps(json.loads(render(alert).message))


WORST = [
    FieldChange("invoice_number", correct=6, counted=10, accuracy=0.6, baseline_accuracy=0.9),
    FieldChange("total_amount", correct=9, counted=10, accuracy=0.9, baseline_accuracy=0.9),
]


def bodies_of(kind: AlertKind, given: dict[str, Any], context: AlertContext = CONTEXT, worst=None):  # type: ignore[no-untyped-def]
    message = render(build_alert(given, kind, context, worst))
    structured = json.loads(message.message)
    return message, structured["email"], json.loads(structured["https"]), json.loads(structured["lambda"])


def test_low_accuracy_says_what_got_worse_compared_with_what():
    message, email, chatbot, document = bodies_of(AlertKind.LOW_ACCURACY, state(accuracy=0.78), worst=WORST)
    assert message.subject == "[CRITICAL] Accuracy 78.0 % below 90.0 % on nightly"
    assert "Baseline" in email
    assert "median 96.0 % of the last 3 completed runs: aaaaaaaa (96.0 %)" in email
    assert "invoice_number: 6/10 correct (60 %), ▼ 30 pts vs baseline (90 %)" in email
    assert "▇" in email  # the trend sparkline
    assert (
        f"https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{EXECUTION}"
        in email
    )
    assert f"https://app.talonic.com/validation/runs/{RUN_ID}" in email
    assert chatbot["version"] == "1.0"
    assert chatbot["source"] == "custom"
    assert chatbot["metadata"]["threadId"] == f"golden-sample-{GOLDEN}"
    assert chatbot["content"]["keywords"] == ["critical", "low_accuracy", "golden-sample:6f0c4c1e"]
    assert any(step.startswith("<https://app.talonic.com") for step in chatbot["content"]["nextSteps"])
    assert "Fields that need attention" in chatbot["content"]["description"]
    assert document["talonic_watchdog_alert"]["worst_fields"][0]["field_name"] == "invoice_number"


def test_regression_names_the_baseline_runs_and_the_drop():
    message, email, chatbot, _ = bodies_of(AlertKind.REGRESSION, state(accuracy=0.91), worst=WORST)
    assert message.subject == "[WARNING] Accuracy fell 5.0 pts to 91.0 % on nightly"
    assert "still above its threshold of 90.0 %" in email
    assert "aaaaaaaa (96.0 %), aaaaaaaa (95.0 %), aaaaaaaa (97.0 %)" in email
    assert chatbot["content"]["keywords"][:2] == ["warning", "regression"]


def test_recovery_is_an_info_notice_that_asks_nothing():
    context = AlertContext(threshold=0.9, baseline=BASELINE, previous_alert_kind="low_accuracy", trend=(0.8, 0.95))
    message, email, _, _ = bodies_of(AlertKind.RECOVERY, state(accuracy=0.95), context)
    assert message.subject == "[INFO] Recovered: accuracy 95.0 % on nightly"
    assert "after the previous run alerted (low_accuracy)" in email
    assert message.attributes["severity"]["StringValue"] == "info"


@pytest.mark.parametrize(
    ("given", "kind", "subject", "phrase"),
    [
        (state("failed", None), AlertKind.RUN_FAILED, "[CRITICAL] Validation run nightly failed", "Re-run"),
        (
            state("deadline", None),
            AlertKind.TIMED_OUT,
            "[WARNING] Validation run nightly still deadline after 60 min",
            "WatchDeadlineMinutes",
        ),
        (
            state(None, None, error={"Error": "WatchUnauthorizedError", "Cause": '{"errorMessage": "401"}'}),
            AlertKind.UNAUTHORIZED,
            "[CRITICAL] Watch of nightly stopped: WatchUnauthorizedError",
            "Rotate the key",
        ),
    ],
)
def test_failure_kinds_have_subjects_and_next_steps(given, kind, subject, phrase):
    message, email, _, _ = bodies_of(kind, given)
    assert message.subject == subject
    assert phrase in email
    assert len(message.subject) < 100
    assert message.attributes["kind"]["StringValue"] == kind.value


def test_a_long_title_is_cut_to_a_valid_subject():
    long_state = state(accuracy=0.1)
    long_state["run"]["name"] = "x" * 300
    message = render(build_alert(long_state, AlertKind.LOW_ACCURACY, CONTEXT))
    assert len(message.subject) <= 99
    assert message.subject.endswith("…")
