"""Publishing alerts to SNS exactly once per (run, kind).

Powertools Idempotency does the bookkeeping in DynamoDB: a retried alert step, or a second workflow for the
same run, finds the first publication's record and publishes nothing. A record left "in progress" by a
function that timed out expires with the Lambda's deadline (register_lambda_context), so the retry publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import BotoCoreError, ClientError

from talonic_watchdog.alerts import Alert, render
from talonic_watchdog.errors import WatchdogError

logger = logging.getLogger(__name__)

ALERT_MEMORY_SECONDS = 30 * 86_400  # a (run, kind) alerts once within this window


class AlertDeliveryError(WatchdogError):
    """SNS did not take the alert; the state machine retries the step (the publication is idempotent)."""


@dataclass(frozen=True, slots=True)
class Publisher:
    publish: Callable[..., dict[str, Any]]
    config: IdempotencyConfig


def build_publisher(sns: Any, topic_arn: str, idempotency_table: str) -> Publisher:
    config = IdempotencyConfig(
        event_key_jmespath="[dedupe_key, kind]",
        expires_after_seconds=ALERT_MEMORY_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    persistence = DynamoDBPersistenceLayer(table_name=idempotency_table, boto3_client=_dynamodb_client())

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="alert", persistence_store=persistence, config=config
    )
    def publish(alert: dict[str, Any]) -> dict[str, Any]:
        try:
            response = sns.publish(**alert["sns"])
        except (ClientError, BotoCoreError) as error:
            raise AlertDeliveryError(f"SNS did not accept the {alert['kind']} alert: {error}") from error
        logger.info("alert published", extra={"kind": alert["kind"], "dedupe_key": alert["dedupe_key"]})
        return {"message_id": response.get("MessageId"), "kind": alert["kind"]}

    return Publisher(publish=publish, config=config)


def _dynamodb_client() -> Any:
    return boto3.client("dynamodb")


def alert_payload(alert: Alert, topic_arn: str) -> dict[str, Any]:
    """What the idempotent publish takes: the key fields and the rendered SNS call."""
    return {
        "dedupe_key": alert.dedupe_key,
        "kind": alert.kind.value,
        "sns": render(alert).publish_kwargs(topic_arn),
    }
