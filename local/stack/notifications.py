"""Capturing what is published to SNS, exactly as the publisher sent it.

moto keeps published messages only in its internal models, and a subscribed SQS queue would receive just
one protocol's body of a ``MessageStructure=json`` message. While the local stack is entered,
``SnsCapture.hooked_into_moto`` wraps moto's ``Topic.publish`` (reached by every publish: the boto3 API, a
handler, Step Functions' ``sns:publish``) and records the message, subject, structure and attributes as
published, with the per-protocol bodies parsed.

moto checks a JSON-structured message only when it delivers it to a subscription, so a message without a
``default`` body goes unnoticed when the topic has no subscribers; SNS rejects it at publish time. The
wrapper applies SNS's check (``InvalidParameter``) before moto's publish.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict
from unittest import mock

from moto.awslambda.models import LambdaBackend
from moto.sns.exceptions import InvalidParameterValue
from moto.sns.models import Topic

from local.stack.bridge import Delivery


class PublishedMessage(TypedDict):
    """A message as published, in the terms of the SNS envelope a subscriber receives.

    ``Message`` is the body a subscriber without its own protocol's body receives (the ``default`` body of
    a JSON-structured message); ``Structured`` holds every per-protocol body of a JSON-structured message
    (``default``, ``email``, ``https``...), ``None`` otherwise. ``MessageAttributes`` map each name to
    ``{"Type": ..., "Value": ...}`` as in the envelope.
    """

    TopicArn: str
    MessageId: str
    Subject: str | None
    Message: str
    MessageStructure: str | None
    MessageAttributes: dict[str, dict[str, str]]
    Structured: dict[str, Any] | None


def _structured_bodies(message: str) -> dict[str, Any]:
    """SNS's publish-time check of a ``MessageStructure=json`` message, and its bodies."""
    try:
        bodies = json.loads(message)
    except ValueError:
        raise InvalidParameterValue(
            "Invalid parameter: Message Structure - JSON message body failed to parse"
        ) from None
    if not isinstance(bodies, dict) or "default" not in bodies:
        raise InvalidParameterValue("Invalid parameter: Message Structure - No default entry in JSON message body")
    return bodies


class SnsCapture:
    """Records every message published to any topic while hooked into moto."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[PublishedMessage] = []

    @contextmanager
    def hooked_into_moto(self) -> Iterator[None]:
        original = Topic.publish
        capture = self

        def publish(
            topic: Topic,
            message: str,
            subject: str | None = None,
            message_attributes: dict[str, Any] | None = None,
            group_id: str | None = None,
            deduplication_id: str | None = None,
            message_structure: str | None = None,
        ) -> str:
            bodies = _structured_bodies(message) if message_structure == "json" else None
            message_id = original(
                topic, message, subject, message_attributes, group_id, deduplication_id, message_structure
            )
            record = PublishedMessage(
                TopicArn=topic.arn,
                MessageId=message_id,
                Subject=subject,
                Message=str(bodies["default"]) if bodies is not None else message,
                MessageStructure=message_structure,
                MessageAttributes={name: dict(value) for name, value in (message_attributes or {}).items()},
                Structured=bodies,
            )
            with capture._lock:
                capture.messages.append(record)
            return message_id

        with mock.patch.object(Topic, "publish", publish):
            yield


@contextmanager
def sns_to_lambda(
    enqueue: Callable[[Delivery], None],
    function_arn: Callable[[str], str | None],
    deliver_unless_in_handler: Callable[[], None],
) -> Iterator[None]:
    """Deliver SNS messages to the stack's Lambda subscribers through the in-process runtime.

    moto hands a Lambda subscription's message to ``send_sns_message``, which invokes the function outside the
    patched ``invoke`` (and drops the message attributes). The message is queued instead and delivered after
    the publishing handler returns, as SNS delivers asynchronously.
    """

    def send_sns_message(
        backend: Any, function_name: str, message: str, subject: str | None = None, qualifier: str | None = None
    ) -> None:
        arn = function_arn(function_name)
        if arn is None:
            raise ValueError(f"SNS subscriber {function_name} is not a function of the stack")
        record = {
            "EventVersion": "1.0",
            "EventSource": "aws:sns",
            "Sns": {"Type": "Notification", "Message": message, "Subject": subject, "MessageAttributes": {}},
        }
        enqueue(Delivery("sns", arn, {"Records": [record]}))
        deliver_unless_in_handler()

    with mock.patch.object(LambdaBackend, "send_sns_message", send_sns_message):
        yield
