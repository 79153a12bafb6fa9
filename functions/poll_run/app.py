"""Reads a validation run once and decides how long the workflow waits before the next look (read key)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import clock, runtime
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, metrics, tracer
from talonic_watchdog.polling import PollPolicy
from talonic_watchdog.watch import poll_run


@logger.inject_lambda_context(correlation_id_path="watch.execution_name")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input and output: the workflow's state; sets `poll.next` and, when waiting, `poll.wait_seconds`."""
    metrics.add_metric(name="Polls", unit=MetricUnit.Count, value=1)
    env = Env()
    policy = PollPolicy(max_wait_seconds=env.number("POLL_MAX_WAIT_SECONDS", 900, low=10, high=3600))
    requests_before = event.get("poll", {}).get("requests", 0)
    state = poll_run(
        event,
        client=runtime.talonic_client(runtime.talonic_settings(env, "TALONIC_READ_KEY_SECRET")),
        table=runtime.runs_table(runtime.table_settings(env)),
        policy=policy,
        now=clock.now(),
        budget_seconds=runtime.time_budget(context),
    )
    poll = state["poll"]
    metrics.add_metric(name="PollRequests", unit=MetricUnit.Count, value=poll.get("requests", 0) - requests_before)
    logger.info(
        "polled",
        extra={
            "status": state.get("run", {}).get("status"),
            "next": poll.get("next"),
            "wait_seconds": poll.get("wait_seconds"),
            "requests": poll.get("requests"),
        },
    )
    return state
