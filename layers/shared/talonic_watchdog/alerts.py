"""What the watch tells people: decide whether a finished watch alerts, and render the alert for SNS.

One alert is rendered three ways (SNS `MessageStructure=json`): `email` is readable text, `https` is the AWS
Chatbot custom-notification JSON (Chatbot drops plain text) for Slack, and `default` serves every other
protocol. Message attributes `kind`, `severity` and `golden_sample_id` let subscriptions filter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from talonic_watchdog.redaction import redact

SUBJECT_LIMIT = 99  # SNS allows 100 characters; email clients show fewer
CONSOLE = "https://console.aws.amazon.com/states/home#/v2/executions/details/"


class AlertKind(StrEnum):
    LOW_ACCURACY = "low_accuracy"
    RUN_FAILED = "run_failed"
    TIMED_OUT = "timed_out"
    UNAUTHORIZED = "unauthorized"
    RUN_MISSING = "run_missing"
    WATCH_FAILED = "watch_failed"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


# The workflow's named errors (see watch.py), as the kind of alert they raise.
ERROR_KINDS = {
    "WatchUnauthorizedError": AlertKind.UNAUTHORIZED,
    "RunNotFoundError": AlertKind.RUN_MISSING,
}


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    severity: Severity
    title: str
    description: str
    dedupe_key: str
    golden_sample_id: str | None = None
    run_id: str | None = None
    next_steps: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _error_message(error: dict[str, Any]) -> str:
    """A Step Functions Catch result: Cause is the Lambda's error JSON, or plain text."""
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return redact(str(message or error.get("Error") or "unknown error"))[:1000]


def decide_alert(state: dict[str, Any]) -> Alert | None:
    """The alert a finished watch raises, or None when all is well."""
    watch = state.get("watch", {})
    run = state.get("run", {})
    poll = state.get("poll", {})
    run_id = run.get("id") or watch.get("validation_run_id")
    golden = run.get("golden_sample_id") or watch.get("golden_sample_id")
    label = run.get("name") or run_id or watch.get("dataspace_run_id") or "validation run"
    dedupe_key = run_id or f"execution:{watch.get('execution_name', 'unknown')}"
    facts = {
        "Validation run": str(run_id or "not created"),
        "Golden sample": str(golden or "unknown"),
        "Job run": str(run.get("dataspace_run_id") or watch.get("dataspace_run_id") or "n/a"),
        "Polls": str(poll.get("polls", 0)),
    }
    common: dict[str, Any] = {"dedupe_key": dedupe_key, "golden_sample_id": golden, "run_id": run_id, "facts": facts}

    if "error" in state:
        error = state["error"]
        name = str(error.get("Error", "Error"))
        kind = ERROR_KINDS.get(name, AlertKind.WATCH_FAILED)
        facts["Error"] = name
        steps = {
            AlertKind.UNAUTHORIZED: [
                "Check that the Talonic key in the stack's secret is valid and has the needed scope",
                "Rotate the key in Secrets Manager if it was revoked; the next watch picks it up",
            ],
            AlertKind.RUN_MISSING: [
                "Check whether the validation run was deleted in Talonic",
                "Start a new watch if the run should exist",
            ],
        }.get(kind, ["Open the execution in the Step Functions console", "Check Talonic's status page"])
        return Alert(
            kind=kind,
            severity=Severity.CRITICAL if kind is not AlertKind.RUN_MISSING else Severity.WARNING,
            title=f"Watch of {label} stopped: {name}",
            description=_error_message(error),
            next_steps=steps,
            **common,
        )

    outcome = poll.get("next")
    threshold = float(watch.get("accuracy_threshold", 0.0))
    if outcome == "failed":
        return Alert(
            kind=AlertKind.RUN_FAILED,
            severity=Severity.CRITICAL,
            title=f"Validation run {label} failed",
            description="Talonic reports that the validation run failed; it produced no accuracy.",
            next_steps=["Open the run in Talonic to see why it failed", "Re-run the validation once fixed"],
            **common,
        )
    if outcome == "deadline":
        minutes = (float(watch.get("deadline_at", 0)) - float(watch.get("started_at", 0))) / 60
        facts["Last status"] = str(run.get("status", "unknown"))
        return Alert(
            kind=AlertKind.TIMED_OUT,
            severity=Severity.WARNING,
            title=f"Validation run {label} still {run.get('status', 'unfinished')} after {minutes:.0f} min",
            description=f"The watch gave up after {minutes:.0f} minutes (its deadline) and {poll.get('polls', 0)} "
            "polls without seeing the run finish.",
            next_steps=["Check the run in Talonic", "Raise WatchDeadlineMinutes if runs this long are normal"],
            **common,
        )
    if outcome == "completed":
        accuracy = run.get("accuracy")
        facts["Accuracy"] = _percent(accuracy)
        facts["Threshold"] = _percent(threshold)
        if accuracy is None:
            return Alert(
                kind=AlertKind.WATCH_FAILED,
                severity=Severity.WARNING,
                title=f"Validation run {label} completed without an accuracy",
                description="Talonic reports the run completed but sent no accuracy; it cannot be judged.",
                next_steps=["Open the run in Talonic and check its results"],
                **common,
            )
        if float(accuracy) < threshold:
            return Alert(
                kind=AlertKind.LOW_ACCURACY,
                severity=Severity.CRITICAL if float(accuracy) < threshold - 0.1 else Severity.WARNING,
                title=f"Accuracy {_percent(accuracy)} below {_percent(threshold)} on {label}",
                description=f"Validation run {run_id} completed with accuracy {_percent(accuracy)}, below the "
                f"threshold of {_percent(threshold)}.",
                next_steps=[
                    "Open the run's per-field results in Talonic to see which fields failed",
                    "Compare with the golden sample's previous runs",
                ],
                **common,
            )
    return None


@dataclass(frozen=True, slots=True)
class SnsMessage:
    subject: str
    message: str  # JSON with default, email and https bodies
    attributes: dict[str, dict[str, str]]

    def publish_kwargs(self, topic_arn: str) -> dict[str, Any]:
        return {
            "TopicArn": topic_arn,
            "Subject": self.subject,
            "Message": self.message,
            "MessageStructure": "json",
            "MessageAttributes": self.attributes,
        }


def _subject(alert: Alert) -> str:
    text = f"[{alert.severity.value.upper()}] {alert.title}"
    # SNS rejects subjects over 100 characters and any line break in them.
    text = " ".join(text.split())
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "…"


def render_email(alert: Alert) -> str:
    lines = [alert.title, "", alert.description, ""]
    width = max(len(name) for name in alert.facts) if alert.facts else 0
    lines += [f"{name.ljust(width)}  {value}" for name, value in alert.facts.items()]
    if alert.next_steps:
        lines += ["", "What to do:"] + [f"  {n}. {step}" for n, step in enumerate(alert.next_steps, 1)]
    lines += ["", f"Kind: {alert.kind.value} · Severity: {alert.severity.value}", "— Talonic watchdog"]
    return "\n".join(lines)


def render_chatbot(alert: Alert) -> dict[str, Any]:
    """AWS Chatbot custom notification; one Slack thread per golden sample."""
    facts = "\n".join(f"*{name}:* {value}" for name, value in alert.facts.items())
    return {
        "version": "1.0",
        "source": "custom",
        "id": f"{alert.dedupe_key}:{alert.kind.value}",
        "content": {
            "textType": "client-markdown",
            "title": f"{_emoji(alert.severity)} {alert.title}",
            "description": f"{alert.description}\n{facts}",
            "nextSteps": alert.next_steps,
            "keywords": [alert.severity.value, alert.kind.value]
            + ([alert.golden_sample_id] if alert.golden_sample_id else []),
        },
        "metadata": {
            "threadId": f"golden-sample-{alert.golden_sample_id or 'unknown'}",
            "summary": alert.title,
            "eventType": alert.kind.value,
            "relatedResources": [alert.run_id] if alert.run_id else [],
            "additionalContext": {"severity": alert.severity.value},
        },
    }


def _emoji(severity: Severity) -> str:
    return {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":warning:", Severity.INFO: ":large_green_circle:"}[
        severity
    ]


def render(alert: Alert) -> SnsMessage:
    email = render_email(alert)
    bodies = {
        "default": f"{alert.title}\n{alert.description}",
        "email": email,
        "email-json": email,
        "https": json.dumps(render_chatbot(alert)),
    }
    attributes = {
        "kind": {"DataType": "String", "StringValue": alert.kind.value},
        "severity": {"DataType": "String", "StringValue": alert.severity.value},
    }
    if alert.golden_sample_id:
        attributes["golden_sample_id"] = {"DataType": "String", "StringValue": alert.golden_sample_id}
    return SnsMessage(subject=_subject(alert), message=json.dumps(bodies), attributes=attributes)
