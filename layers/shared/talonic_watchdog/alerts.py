"""What the watch tells people: classify a finished watch, build an actionable alert, render it for SNS.

An alert says what got worse and compared with what: the accuracy against its threshold, the baseline (median
of the golden sample's last completed runs, and which runs those were), the worst fields with their change
against the latest baseline run, and a sparkline of the recent trend. A golden sample that alerted and comes
back above its threshold gets one recovery notice.

One alert is rendered four ways (SNS `MessageStructure=json`): `email` is readable text, `https` is the AWS
Chatbot custom-notification JSON (Chatbot drops plain text) for Slack, `lambda` is the alert as data for the
Slack webhook forwarder, and `default` serves every other protocol. Message attributes `kind`, `severity` and
`golden_sample_id` let subscriptions filter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from talonic_watchdog.baselines import Baseline, sparkline
from talonic_watchdog.field_accuracy import FieldChange
from talonic_watchdog.redaction import redact

SUBJECT_LIMIT = 99  # SNS allows 100 characters; email clients show fewer


class AlertKind(StrEnum):
    LOW_ACCURACY = "low_accuracy"
    REGRESSION = "regression"
    RECOVERY = "recovery"
    RUN_FAILED = "run_failed"
    TIMED_OUT = "timed_out"
    UNAUTHORIZED = "unauthorized"
    RUN_MISSING = "run_missing"
    WATCH_FAILED = "watch_failed"
    CLEANUP_REPORT = "cleanup_report"  # what a cleanup run deleted (info; warning when something failed)
    CLEANUP_BLOCKED = "cleanup_blocked"  # a cleanup run stopped by its blast-radius cap (warning)


# The kinds after which a good run of the same golden sample is news: a recovery.
RECOVERABLE = frozenset({AlertKind.LOW_ACCURACY, AlertKind.REGRESSION, AlertKind.RUN_FAILED})
# The kinds for which the per-field results say what got worse.
ABOUT_ACCURACY = frozenset({AlertKind.LOW_ACCURACY, AlertKind.REGRESSION})


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
class AlertContext:
    """What the alert function knows beyond the workflow's state."""

    threshold: float
    regression_points: float = 5.0
    baseline: Baseline | None = None
    previous_alert_kind: str | None = None  # the alert of the golden sample's previous finished run
    trend: tuple[float, ...] = ()  # accuracies of recent runs, oldest first, this one included
    talonic_app_url: str = "https://app.talonic.com"


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
    worst_fields: list[FieldChange] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


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


def classify(state: dict[str, Any], context: AlertContext) -> AlertKind | None:
    """Which alert a finished watch raises, or None when all is well (and nothing needs saying)."""
    if "error" in state:
        return ERROR_KINDS.get(str(state["error"].get("Error")), AlertKind.WATCH_FAILED)
    outcome = state.get("poll", {}).get("next")
    if outcome == "failed":
        return AlertKind.RUN_FAILED
    if outcome == "deadline":
        return AlertKind.TIMED_OUT
    if outcome != "completed":
        return None
    accuracy = state.get("run", {}).get("accuracy")
    if accuracy is None:
        return AlertKind.WATCH_FAILED
    if float(accuracy) < context.threshold:
        return AlertKind.LOW_ACCURACY
    baseline = context.baseline
    # Rounded: 0.96 - 0.91 is 4.9999… in floating point, and a 5-point drop should count as 5 points.
    if baseline is not None and round((baseline.median - float(accuracy)) * 100, 6) >= context.regression_points:
        return AlertKind.REGRESSION
    if context.previous_alert_kind in RECOVERABLE:
        return AlertKind.RECOVERY
    return None


def _links(state: dict[str, Any], context: AlertContext, run_id: str | None) -> dict[str, str]:
    links: dict[str, str] = {}
    if run_id:
        links["Run in Talonic"] = f"{context.talonic_app_url.rstrip('/')}/validation/runs/{run_id}"
    execution_arn = state.get("watch", {}).get("execution_arn")
    if isinstance(execution_arn, str) and execution_arn.count(":") >= 3:
        region = execution_arn.split(":")[3]
        links["Execution in the AWS console"] = (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}"
        )
    return links


def build_alert(
    state: dict[str, Any], kind: AlertKind, context: AlertContext, worst: list[FieldChange] | None = None
) -> Alert:
    """The alert of `kind` for this state, with everything the reader needs to act on it."""
    watch, run, poll = state.get("watch", {}), state.get("run", {}), state.get("poll", {})
    run_id = run.get("id") or watch.get("validation_run_id")
    golden = run.get("golden_sample_id") or watch.get("golden_sample_id")
    label = run.get("name") or run_id or watch.get("dataspace_run_id") or "validation run"
    accuracy = run.get("accuracy")
    facts = {
        "Validation run": str(run_id or "not created"),
        "Golden sample": str(golden or "unknown"),
        "Job run": str(run.get("dataspace_run_id") or watch.get("dataspace_run_id") or "n/a"),
    }
    if accuracy is not None:
        facts["Accuracy"] = _percent(accuracy)
        facts["Threshold"] = _percent(context.threshold)
    if context.baseline is not None and kind in ABOUT_ACCURACY | {AlertKind.RECOVERY}:
        facts["Baseline"] = context.baseline.describe()
    if context.trend:
        facts["Trend"] = f"{sparkline(list(context.trend))} (last {len(context.trend)} runs, oldest first)"
    facts["Polls"] = str(poll.get("polls", 0))
    common: dict[str, Any] = {
        "kind": kind,
        "dedupe_key": run_id or f"execution:{watch.get('execution_name', 'unknown')}",
        "golden_sample_id": golden,
        "run_id": run_id,
        "facts": facts,
        "worst_fields": list(worst or []),
        "links": _links(state, context, run_id),
    }

    if kind is AlertKind.LOW_ACCURACY:
        return Alert(
            severity=Severity.CRITICAL if float(accuracy) < context.threshold - 0.1 else Severity.WARNING,
            title=f"Accuracy {_percent(accuracy)} below {_percent(context.threshold)} on {label}",
            description=f"Validation run {run_id} completed with accuracy {_percent(accuracy)}, below the threshold "
            f"of {_percent(context.threshold)}.",
            next_steps=[
                "Look at the worst fields below and their per-field results in Talonic",
                "Check what changed since the baseline runs (schema, prompts, document mix)",
            ],
            **common,
        )
    if kind is AlertKind.REGRESSION:
        baseline = context.baseline
        drop = (baseline.median - float(accuracy)) * 100 if baseline else 0.0
        return Alert(
            severity=Severity.WARNING,
            title=f"Accuracy fell {drop:.1f} pts to {_percent(accuracy)} on {label}",
            description=f"Validation run {run_id} is still above its threshold of {_percent(context.threshold)}, "
            f"but {drop:.1f} points below its baseline ({baseline.describe() if baseline else 'n/a'}).",
            next_steps=[
                "Look at the fields that got worse below",
                "Compare this run with the latest baseline run in Talonic",
            ],
            **common,
        )
    if kind is AlertKind.RECOVERY:
        return Alert(
            severity=Severity.INFO,
            title=f"Recovered: accuracy {_percent(accuracy)} on {label}",
            description=f"Validation run {run_id} is back above its threshold of {_percent(context.threshold)} "
            f"after the previous run alerted ({context.previous_alert_kind}).",
            next_steps=["Nothing to do; close the incident if one is open"],
            **common,
        )
    if kind is AlertKind.RUN_FAILED:
        return Alert(
            severity=Severity.CRITICAL,
            title=f"Validation run {label} failed",
            description="Talonic reports that the validation run failed; it produced no accuracy.",
            next_steps=["Open the run in Talonic to see why it failed", "Re-run the validation once fixed"],
            **common,
        )
    if kind is AlertKind.TIMED_OUT:
        minutes = (float(watch.get("deadline_at", 0)) - float(watch.get("started_at", 0))) / 60
        facts["Last status"] = str(run.get("status", "unknown"))
        return Alert(
            severity=Severity.WARNING,
            title=f"Validation run {label} still {run.get('status', 'unfinished')} after {minutes:.0f} min",
            description=f"The watch gave up after {minutes:.0f} minutes (its deadline) and {poll.get('polls', 0)} "
            "polls without seeing the run finish.",
            next_steps=["Check the run in Talonic", "Raise WatchDeadlineMinutes if runs this long are normal"],
            **common,
        )
    if "error" in state:
        name = str(state["error"].get("Error", "Error"))
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
        }.get(kind, ["Open the execution in the AWS console", "Check Talonic's status page"])
        return Alert(
            severity=Severity.WARNING if kind is AlertKind.RUN_MISSING else Severity.CRITICAL,
            title=f"Watch of {label} stopped: {name}",
            description=_error_message(state["error"]),
            next_steps=steps,
            **common,
        )
    return Alert(
        severity=Severity.WARNING,
        title=f"Validation run {label} completed without an accuracy",
        description="Talonic reports the run completed but sent no accuracy; it cannot be judged.",
        next_steps=["Open the run in Talonic and check its results"],
        **common,
    )


# -- rendering ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnsMessage:
    subject: str
    message: str  # JSON with default, email, https and lambda bodies
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


def _field_lines(alert: Alert) -> list[str]:
    lines: list[str] = []
    for change in alert.worst_fields:
        lines.append(change.describe())
        lines += [f"    e.g. {example}" for example in change.examples]
    return lines


def render_email(alert: Alert) -> str:
    lines = [alert.title, "", alert.description, ""]
    width = max(len(name) for name in alert.facts) if alert.facts else 0
    lines += [f"{name.ljust(width)}  {value}" for name, value in alert.facts.items()]
    if alert.worst_fields:
        lines += ["", "Fields that need attention:"] + [f"  {line}" for line in _field_lines(alert)]
    if alert.next_steps:
        lines += ["", "What to do:"] + [f"  {n}. {step}" for n, step in enumerate(alert.next_steps, 1)]
    if alert.links:
        lines += ["", "Links:"] + [f"  {name}: {url}" for name, url in alert.links.items()]
    lines += ["", f"Kind: {alert.kind.value} · Severity: {alert.severity.value}", "— Talonic watchdog"]
    return "\n".join(lines)


def _emoji(severity: Severity) -> str:
    return {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":warning:", Severity.INFO: ":white_check_mark:"}[
        severity
    ]


def render_chatbot(alert: Alert) -> dict[str, Any]:
    """AWS Chatbot custom notification; one Slack thread per golden sample."""
    parts = [alert.description, "\n".join(f"*{name}:* {value}" for name, value in alert.facts.items())]
    if alert.worst_fields:
        parts.append("*Fields that need attention:*\n" + "\n".join(f"• {line}" for line in _field_lines(alert)))
    next_steps = list(alert.next_steps) + [f"<{url}|{name}>" for name, url in alert.links.items()]
    keywords = [alert.severity.value, alert.kind.value]
    if alert.golden_sample_id:
        keywords.append(f"golden-sample:{alert.golden_sample_id[:8]}")
    return {
        "version": "1.0",
        "source": "custom",
        "id": f"{alert.dedupe_key}:{alert.kind.value}",
        "content": {
            "textType": "client-markdown",
            "title": f"{_emoji(alert.severity)} {alert.title}",
            "description": "\n".join(parts)[:7900],
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            # One Slack thread per golden sample; alerts about no golden sample (cleanup) thread by kind.
            "threadId": f"golden-sample-{alert.golden_sample_id}"
            if alert.golden_sample_id
            else f"watchdog-{alert.kind.value}",
            "summary": alert.title,
            "eventType": alert.kind.value,
            "relatedResources": [alert.run_id] if alert.run_id else [],
            "additionalContext": {"severity": alert.severity.value},
        },
    }


def alert_document(alert: Alert) -> dict[str, Any]:
    """The alert as data (the `lambda` body), for subscribers that render it themselves."""
    document = asdict(alert)
    document["kind"] = alert.kind.value
    document["severity"] = alert.severity.value
    document["worst_fields"] = [{**asdict(change), "description": change.describe()} for change in alert.worst_fields]
    return document


def render(alert: Alert) -> SnsMessage:
    email = render_email(alert)
    bodies = {
        "default": f"{alert.title}\n{alert.description}",
        "email": email,
        "email-json": email,
        "https": json.dumps(render_chatbot(alert)),
        "lambda": json.dumps({"talonic_watchdog_alert": alert_document(alert)}),
    }
    attributes = {
        "kind": {"DataType": "String", "StringValue": alert.kind.value},
        "severity": {"DataType": "String", "StringValue": alert.severity.value},
    }
    if alert.golden_sample_id:
        attributes["golden_sample_id"] = {"DataType": "String", "StringValue": alert.golden_sample_id}
    return SnsMessage(subject=_subject(alert), message=json.dumps(bodies), attributes=attributes)
