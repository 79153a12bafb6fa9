"""First step of the watch: validate the execution input and complete it. No API call, no secret."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import clock
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, tracer
from talonic_watchdog.watch import WatchSettings, prepare_watch


def settings_from_env(env: Env) -> WatchSettings:
    return WatchSettings(
        deadline_minutes=env.number("WATCH_DEADLINE_MINUTES", 360, low=1, high=1380),
        default_golden_sample_id=env.text("DEFAULT_GOLDEN_SAMPLE_ID", "") or None,
    )


@logger.inject_lambda_context(correlation_id_path="execution_name")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input `{"input": <execution input>, "execution_name", "execution_arn"}`; output the workflow's state."""
    return prepare_watch(
        event.get("input"),
        settings=settings_from_env(Env()),
        execution_name=str(event.get("execution_name", "")),
        execution_arn=event.get("execution_arn"),
        now=clock.now(),
    )
