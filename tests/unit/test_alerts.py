"""Deciding and rendering alerts: which watch outcomes alert, and what each body says."""

from __future__ import annotations

import json

import pytest

from talonic_watchdog.alerts import AlertKind, Severity, decide_alert, render

RUN_ID = "0b9f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"


def state(next_step: str | None = "completed", accuracy: float | None = 0.8, **extra):  # type: ignore[no-untyped-def]
    run = {"id": RUN_ID, "status": next_step or "running", "golden_sample_id": GOLDEN, "name": "nightly"}
    if accuracy is not None:
        run["accuracy"] = accuracy
    base = {
        "watch": {
            "execution_name": "run-x",
            "accuracy_threshold": 0.9,
            "started_at": 0,
            "deadline_at": 3600,
            "validation_run_id": RUN_ID,
        },
        "run": run,
        "poll": {"polls": 7, "requests": 7, "next": next_step},
    }
    return base | extra


def test_above_the_threshold_nothing_is_sent():
    assert decide_alert(state(accuracy=0.95)) is None
    assert decide_alert(state(accuracy=0.9)) is None


def test_below_the_threshold_alerts_with_the_numbers():
    alert = decide_alert(state(accuracy=0.85))
    assert alert is not None
    assert alert.kind is AlertKind.LOW_ACCURACY
    assert alert.severity is Severity.WARNING
    assert "85.0 %" in alert.title
    assert "90.0 %" in alert.title
    assert decide_alert(state(accuracy=0.5)).severity is Severity.CRITICAL  # type: ignore[union-attr]


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
                    "Cause": json.dumps({"errorMessage": "401 tlnc_live_secret1"}),
                }
            },
            AlertKind.UNAUTHORIZED,
        ),
        ({"error": {"Error": "RunNotFoundError", "Cause": "{}"}}, AlertKind.RUN_MISSING),
        ({"error": {"Error": "ApiUnavailableError", "Cause": "plain text cause"}}, AlertKind.WATCH_FAILED),
        ({"error": {"Error": "States.Timeout", "Cause": ""}}, AlertKind.WATCH_FAILED),
    ],
)
def test_every_outcome_has_its_kind(kwargs, kind):
    alert = decide_alert(state(**kwargs))
    assert alert is not None
    assert alert.kind is kind
    assert "tlnc_live_secret1" not in alert.description


def test_the_sns_message_has_email_chatbot_and_default_bodies():
    # given a low-accuracy alert
    alert = decide_alert(state(accuracy=0.42))
    assert alert is not None
    # when rendered
    message = render(alert)
    bodies = json.loads(message.message)
    # then the subject fits, the email reads as text, and the https body is a Chatbot custom notification
    assert len(message.subject) < 100
    assert "\n" not in message.subject
    assert message.subject.startswith("[CRITICAL] Accuracy 42.0 %")
    assert "What to do:" in bodies["email"]
    assert RUN_ID in bodies["email"]
    chatbot = json.loads(bodies["https"])
    assert chatbot["version"] == "1.0"
    assert chatbot["source"] == "custom"
    assert chatbot["content"]["title"].endswith(alert.title)
    assert chatbot["content"]["nextSteps"]
    assert chatbot["metadata"]["threadId"] == f"golden-sample-{GOLDEN}"
    assert bodies["default"]
    assert message.attributes["kind"]["StringValue"] == "low_accuracy"
    assert message.attributes["severity"]["StringValue"] == "critical"
    assert message.publish_kwargs("arn:topic")["MessageStructure"] == "json"


def test_a_long_title_is_cut_to_a_valid_subject():
    long_state = state(accuracy=0.1)
    long_state["run"]["name"] = "x" * 300
    message = render(decide_alert(long_state))  # type: ignore[arg-type]
    assert len(message.subject) <= 99
    assert message.subject.endswith("…")
