"""Receives Talonic's signal deliveries on a Lambda function URL and puts them on the event bus."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog import runtime
from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, tracer
from talonic_watchdog.triggers import DEFAULT_MAX_SIGNAL_AGE_SECONDS, IngressSecret, handle_signal

SECRET_MAX_AGE_SECONDS = 300


@cache
def secrets_provider() -> SecretsProvider:
    return SecretsProvider()


def ingress_secret(secret_id: str) -> IngressSecret:
    value = secrets_provider().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    return IngressSecret.parse(value if isinstance(value, str | bytes) else None, secret_id=secret_id)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: a function-URL request (payload 2.0). Output: 202 accepted, 400 bad body, 401 bad credentials (or,
    when the ingress secret has a signing_secret, a bad signature or a stale delivery: `event.delivered_at`
    more than INGRESS_MAX_SIGNAL_AGE_SECONDS from now), 405 not POST, 502 the bus refused."""
    env = Env()
    return handle_signal(
        event,
        secret=ingress_secret(env.text("INGRESS_SECRET")),
        auth_header=env.text("INGRESS_AUTH_HEADER", "X-API-Key"),
        events=runtime.aws_client("events"),
        bus_name=env.text("EVENT_BUS_NAME", "default"),
        max_age_seconds=env.number(
            "INGRESS_MAX_SIGNAL_AGE_SECONDS", DEFAULT_MAX_SIGNAL_AGE_SECONDS, low=1, high=86_400
        ),
    )
