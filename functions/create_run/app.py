"""Creates the validation run for a finished job run, with the write-scoped key."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import clock, runtime
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, tracer
from talonic_watchdog.watch import create_run


@logger.inject_lambda_context(correlation_id_path="watch.execution_name")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input and output: the workflow's state; adds `watch.validation_run_id` and `run`."""
    env = Env()
    return create_run(
        event,
        client=runtime.talonic_client(runtime.talonic_settings(env, "TALONIC_WRITE_KEY_SECRET")),
        table=runtime.runs_table(runtime.table_settings(env)),
        now=clock.now(),
        budget_seconds=runtime.time_budget(context),
    )
