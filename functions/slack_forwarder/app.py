"""Forwards each alert published on the topic to a Slack incoming webhook, as Block Kit."""

from __future__ import annotations

from functools import cache
from typing import Any

import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from talonic_watchdog.config import Env
from talonic_watchdog.observability import logger, tracer
from talonic_watchdog.slack import message_for_sns, parse_webhook_secret, post_to_slack, webhook_session

SECRET_MAX_AGE_SECONDS = 300


@cache
def secrets_provider() -> SecretsProvider:
    return SecretsProvider()


@cache
def session() -> requests.Session:
    return webhook_session()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Input: an SNS event. Output: how many messages were posted. Raises SlackDeliveryError when Slack
    refuses, so Lambda's asynchronous retries try again."""
    secret_id = Env().text("SLACK_WEBHOOK_SECRET")
    value = secrets_provider().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    webhook_url = parse_webhook_secret(value if isinstance(value, str | bytes) else None, secret_id=secret_id)
    posted = 0
    for record in event.get("Records", []):
        sns = record.get("Sns", {})
        post_to_slack(session(), webhook_url, message_for_sns(str(sns.get("Message", "")), sns.get("Subject")))
        posted += 1
    return {"posted": posted}
