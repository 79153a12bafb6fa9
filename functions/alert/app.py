"""Publishes what a finished watch found: low accuracy, a failed run, a timeout, a refused key, a lost run."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import runtime
from talonic_watchdog.alerts import decide_alert
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, metrics, tracer
from talonic_watchdog.publishing import Publisher, alert_payload, build_publisher


@dataclass(frozen=True, slots=True)
class AlertSettings:
    topic_arn: str
    idempotency_table: str


@cache
def publisher(settings: AlertSettings) -> Publisher:
    return build_publisher(runtime.aws_client("sns"), settings.topic_arn, settings.idempotency_table)


@logger.inject_lambda_context(correlation_id_path="watch.execution_name")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: the workflow's state (with `error` when the watch failed). Output: what was published."""
    env = Env()
    settings = AlertSettings(topic_arn=env.text("ALERT_TOPIC_ARN"), idempotency_table=env.text("IDEMPOTENCY_TABLE"))
    alert = decide_alert(event)
    metrics.add_metric(name="WatchesFinished", unit=MetricUnit.Count, value=1)
    if alert is None:
        logger.info("no alert", extra={"run": event.get("run", {}).get("id")})
        return {"alerted": False}
    target = publisher(settings)
    target.config.register_lambda_context(context)
    published = target.publish(alert=alert_payload(alert, settings.topic_arn))
    with single_metric(name="Alerts", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="kind", value=alert.kind.value)
    return {"alerted": True, "kind": alert.kind.value, "severity": alert.severity.value, **published}
