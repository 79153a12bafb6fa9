"""Starts one watch per finished job run (EventBridge target), under a deterministic execution name."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import runtime
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, tracer
from talonic_watchdog.triggers import start_watch, watch_input_from_event


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: a `run.dataspace.completed` EventBridge event. Output: the execution name, and whether it is new.

    An event that cannot start a watch raises InvalidSignalError (it shows in the function's errors).
    """
    env = Env()
    watch_input = watch_input_from_event(
        event,
        golden_sample_map=env.pairs("GOLDEN_SAMPLE_MAP"),
        default_golden_sample_id=env.text("DEFAULT_GOLDEN_SAMPLE_ID", "") or None,
    )
    result = start_watch(runtime.aws_client("stepfunctions"), env.text("WATCH_STATE_MACHINE_ARN"), watch_input)
    return {"execution_name": result.execution_name, "started": result.started}
