"""Publishes what a finished watch found: low accuracy, a regression, a recovery, a failed run, a timeout, a
refused key or a lost run, each with its evidence, exactly once."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import runtime
from talonic_watchdog.config import Env
from talonic_watchdog.observability import emit_metric, logger, metrics, tracer
from talonic_watchdog.publishing import Publisher, build_publisher
from talonic_watchdog.reporting import AlertDependencies, AlertSettings, report_watch


def settings_from_env(env: Env) -> AlertSettings:
    thresholds = {}
    for golden_sample, value in env.pairs("GOLDEN_SAMPLE_THRESHOLDS").items():
        thresholds[golden_sample] = Env({"threshold": value}).number("threshold", low=0.0, high=1.0)
    return AlertSettings(
        topic_arn=env.text("ALERT_TOPIC_ARN"),
        default_threshold=env.number("ACCURACY_THRESHOLD", 0.9, low=0.0, high=1.0),
        thresholds=tuple(sorted(thresholds.items())),
        regression_points=env.number("REGRESSION_POINTS", 5.0, low=0.0, high=100.0),
        baseline_runs=env.integer("BASELINE_RUNS", 5, low=1, high=50),
        include_values=env.text("ALERT_INCLUDE_VALUES", "false").lower() == "true",
        talonic_app_url=env.text("TALONIC_APP_URL", "https://app.talonic.com"),
    )


@cache
def publisher(topic_arn: str, idempotency_table: str) -> Publisher:
    return build_publisher(runtime.aws_client("sns"), topic_arn, idempotency_table)


@logger.inject_lambda_context(correlation_id_path="watch.execution_name")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the workflow's state (with `error` when the watch failed). Output: what was published."""
    env = Env()
    settings = settings_from_env(env)
    target = publisher(settings.topic_arn, env.text("IDEMPOTENCY_TABLE"))
    target.config.register_lambda_context(context)
    deps = AlertDependencies(
        client=runtime.talonic_client(runtime.talonic_settings(env, "TALONIC_READ_KEY_SECRET")),
        table=runtime.runs_table(runtime.table_settings(env)),
        publisher=target,
    )
    outcome = report_watch(event, deps=deps, settings=settings, budget_seconds=runtime.time_budget(context))

    run, poll = event.get("run", {}), event.get("poll", {})
    metrics.add_metric(name="WatchesFinished", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PollRequestsPerRun", unit=MetricUnit.Count, value=poll.get("requests", 0))
    if run.get("accuracy") is not None and run.get("golden_sample_id"):
        emit_metric(
            "RunAccuracy",
            MetricUnit.Percent,
            float(run["accuracy"]) * 100,
            golden_sample_id=str(run["golden_sample_id"]),
        )
    if outcome.alert is not None:
        emit_metric("Alerts", MetricUnit.Count, 1, kind=outcome.alert.kind.value)
    logger.info("watch reported", extra=outcome.as_output())
    return outcome.as_output()
