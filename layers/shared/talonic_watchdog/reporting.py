"""The alert step: from a finished watch's state to at most one published alert, with its evidence.

Order matters for "exactly once": the alert is published through Powertools Idempotency (a retried step or a
second workflow for the same run publishes nothing new), and only then is the run marked with its alert kind,
which is what the golden sample's next run reads to decide on a recovery notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from talonic_watchdog.alerts import ABOUT_ACCURACY, Alert, AlertContext, AlertKind, build_alert, classify
from talonic_watchdog.baselines import Baseline, accuracy_trend, find_baseline
from talonic_watchdog.client import TalonicClient
from talonic_watchdog.errors import TalonicError
from talonic_watchdog.field_accuracy import FieldChange, field_accuracy, worst_fields
from talonic_watchdog.publishing import Publisher, alert_payload
from talonic_watchdog.runs_table import RunsTable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    topic_arn: str
    default_threshold: float
    thresholds: tuple[tuple[str, float], ...] = ()  # golden sample id → threshold
    regression_points: float = 5.0
    baseline_runs: int = 5
    include_values: bool = False
    talonic_app_url: str = "https://app.talonic.com"

    def threshold_for(self, watch: dict[str, Any], golden_sample_id: str | None) -> float:
        """A per-execution override wins, then the golden sample's own threshold, then the default."""
        if watch.get("accuracy_threshold") is not None:
            return float(watch["accuracy_threshold"])
        return dict(self.thresholds).get(golden_sample_id or "", self.default_threshold)


@dataclass
class AlertDependencies:
    client: TalonicClient
    table: RunsTable
    publisher: Publisher


@dataclass
class AlertOutcome:
    alert: Alert | None
    published: dict[str, Any] = field(default_factory=dict)
    context: AlertContext | None = None

    def as_output(self) -> dict[str, Any]:
        if self.alert is None:
            return {"alerted": False}
        return {
            "alerted": True,
            "kind": self.alert.kind.value,
            "severity": self.alert.severity.value,
            **self.published,
        }


def _worst_fields(
    run_id: str, baseline: Baseline | None, deps: AlertDependencies, settings: AlertSettings, budget: float
) -> list[FieldChange]:
    """The per-field picture of this run against the latest baseline run. Fetched here, by the alert
    function, so a large result set never travels through the state machine's 256 KB payload."""
    try:
        current = field_accuracy(deps.client.get_results(run_id, budget_seconds=budget))
    except TalonicError as error:
        logger.warning("no per-field results for the alert", extra={"error": type(error).__name__})
        return []
    before = None
    if baseline is not None:
        try:
            before = field_accuracy(deps.client.get_results(baseline.latest.run_id, budget_seconds=budget))
        except TalonicError as error:  # the baseline run may have been cleaned up: compare without it
            logger.info("baseline run results unavailable", extra={"error": type(error).__name__})
    return worst_fields(current, before, include_examples=settings.include_values)


def report_watch(
    state: dict[str, Any], *, deps: AlertDependencies, settings: AlertSettings, budget_seconds: float
) -> AlertOutcome:
    watch, run = state.get("watch", {}), state.get("run", {})
    run_id = run.get("id") or watch.get("validation_run_id")
    golden = run.get("golden_sample_id") or watch.get("golden_sample_id")
    threshold = settings.threshold_for(watch, golden)
    baseline: Baseline | None = None
    previous_kind: str | None = None
    trend: tuple[float, ...] = ()
    if golden and run_id and "error" not in state and state.get("poll", {}).get("next") == "completed":
        baseline = find_baseline(
            golden,
            exclude_run_id=run_id,
            table=deps.table,
            client=deps.client,
            size=settings.baseline_runs,
            budget_seconds=budget_seconds,
        )
        previous = deps.table.previous_finished(golden, before_run_id=run_id)
        previous_kind = previous.get("alert_kind") if previous else None
    if baseline is not None and run.get("accuracy") is not None:
        # The baseline's runs, oldest first, then this one: the list API may know runs the table has not seen.
        trend = (*(past.accuracy for past in reversed(baseline.runs)), float(run["accuracy"]))
    elif golden:
        trend = tuple(accuracy_trend(golden, table=deps.table))
    context = AlertContext(
        threshold=threshold,
        regression_points=settings.regression_points,
        baseline=baseline,
        previous_alert_kind=previous_kind,
        trend=trend,
        talonic_app_url=settings.talonic_app_url,
    )
    kind = classify(state, context)
    if kind is None:
        return AlertOutcome(alert=None, context=context)
    worst = _worst_fields(run_id, baseline, deps, settings, budget_seconds) if kind in ABOUT_ACCURACY else []
    alert = build_alert(state, kind, context, worst)
    published = deps.publisher.publish(alert=alert_payload(alert, settings.topic_arn))
    if run_id and kind is not AlertKind.WATCH_FAILED and "error" not in state:
        deps.table.mark_alerted(run_id, kind.value)
    return AlertOutcome(alert=alert, published=published, context=context)
