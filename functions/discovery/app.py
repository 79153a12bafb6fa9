"""Scheduled sweep: finds validation runs started outside the watchdog and watches them (read key)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import clock, runtime
from talonic_watchdog.config import Env
from talonic_watchdog.discovery import DiscoverySettings, sweep
from talonic_watchdog.observability import logger, metrics, tracer
from talonic_watchdog.triggers import start_watch


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the scheduler's event (ignored). Output: the sweep's report (seen, new, watches started, recorded
    only, skipped and why, whether runs may have been missed beyond the list's newest-100 horizon)."""
    env = Env()
    settings = DiscoverySettings(
        lookback_hours=env.number("DISCOVERY_LOOKBACK_HOURS", 24, low=0, high=24 * 30),
        min_budget_share=env.number("DISCOVERY_MIN_BUDGET_SHARE", 0.2, low=0, high=1),
    )
    sfn, state_machine_arn = runtime.aws_client("stepfunctions"), env.text("WATCH_STATE_MACHINE_ARN")
    report = sweep(
        client=runtime.talonic_client(runtime.talonic_settings(env, "TALONIC_READ_KEY_SECRET")),
        table=runtime.runs_table(runtime.table_settings(env)),
        start_watch=lambda watch_input: start_watch(sfn, state_machine_arn, watch_input),
        settings=settings,
        now=clock.now(),
        budget_seconds=runtime.time_budget(context),
    )
    for name, value in (
        ("DiscoveryRunsSeen", report.seen),
        ("DiscoveryRunsNew", report.new),
        ("DiscoveryWatchesStarted", report.watches_started),
        ("DiscoveryRunsRecorded", report.recorded_only),
        ("DiscoveryRunsSkipped", report.skipped),
        ("DiscoveryMayHaveMissedRuns", int(report.may_have_missed_runs)),
        ("DiscoverySweepsSkipped", int(report.skipped_reason is not None and report.seen == 0)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return report.as_dict()
