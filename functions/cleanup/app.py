"""Deletes outdated validation runs on a schedule (write key), safely: dry run by default, capped, reported."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import runtime
from talonic_watchdog.cleanup import (
    CleanupSettings,
    CleanupUnauthorizedError,
    Deadline,
    publish_report,
    requested_dry_run,
    run_cleanup,
)
from talonic_watchdog.config import Env
from talonic_watchdog.errors import ConfigurationError
from talonic_watchdog.observability import logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the scheduler's event, or `{"dry_run": true}` (which can only make a run drier).

    Output: the report (see README). A refused key raises CleanupUnauthorizedError, an unusable key secret
    ConfigurationError, both after the report is published.
    """
    metrics.add_metric(name="CleanupRuns", unit=MetricUnit.Count, value=1)
    env = Env()
    settings = CleanupSettings.from_env(env)
    requested = requested_dry_run(event)  # checked even on a dry-run stack: a malformed request fails loudly
    dry_run = settings.dry_run or requested
    topic_arn = env.text("ALERT_TOPIC_ARN")
    report = run_cleanup(
        settings=settings,
        dry_run=dry_run,
        read_client=runtime.paced_talonic_client(runtime.talonic_settings(env, "TALONIC_READ_KEY_SECRET")),
        write_client=runtime.paced_talonic_client(runtime.talonic_settings(env, "TALONIC_WRITE_KEY_SECRET")),
        table=runtime.runs_table(runtime.table_settings(env)),
        deadline=Deadline.from_context(context, reserve_seconds=settings.reserve_seconds),
    )
    metrics.add_metric(name="CleanupDeletions", unit=MetricUnit.Count, value=len(report.deleted))
    metrics.add_metric(name="CleanupFailures", unit=MetricUnit.Count, value=len(report.failed))
    message_id = publish_report(runtime.aws_client("sns"), topic_arn, report)
    result = {**report.to_dict(), "message_id": message_id}
    if report.stopped:
        raise (CleanupUnauthorizedError if report.unauthorized else ConfigurationError)(report.stopped)
    return result
