"""Alerts as Slack Block Kit messages, posted to an incoming webhook.

For teams that use a plain incoming webhook rather than AWS Chatbot. The forwarder reads the `lambda` body of
each SNS alert (the alert as data) and builds the blocks here. Retries use urllib3's Retry (429 and 5xx,
honouring Retry-After); the webhook URL is a secret and is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from talonic_watchdog.errors import ConfigurationError, WatchdogError

logger = logging.getLogger(__name__)

SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "info": ":white_check_mark:"}
TEXT_LIMIT = 2900  # Slack's section text limit is 3000 characters


class SlackDeliveryError(WatchdogError):
    """Slack did not take the message after the retries; the Lambda's async retry tries again."""


def parse_webhook_secret(value: str | bytes | None, *, secret_id: str) -> str:
    text = (value.decode() if isinstance(value, bytes) else value or "").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("webhook_url") or "")
        except (ValueError, AttributeError) as error:
            raise ConfigurationError(f"secret {secret_id} is not valid JSON with a webhook_url") from error
    if not text.startswith(("https://", "http://")):
        raise ConfigurationError(f"secret {secret_id} does not hold a webhook URL")
    return text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}


def blocks_for_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """A Block Kit message for one alert document (see alerts.alert_document)."""
    emoji = SEVERITY_EMOJI.get(str(alert.get("severity")), ":bell:")
    title = f"{emoji} {alert.get('title', 'Talonic watchdog alert')}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        _section(str(alert.get("description", ""))),
    ]
    facts = alert.get("facts") or {}
    if facts:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in list(facts.items())[:10]],
            }
        )
    fields = alert.get("worst_fields") or []
    if fields:
        lines = []
        for change in fields:
            lines.append(f"• {change.get('description', change.get('field_name'))}")
            lines += [f"    _e.g. {example}_" for example in change.get("examples", [])]
        blocks.append(_section("*Fields that need attention*\n" + "\n".join(lines)))
    steps = alert.get("next_steps") or []
    if steps:
        blocks.append(_section("*What to do*\n" + "\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1))))
    links = alert.get("links") or {}
    if links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": name[:75]}, "url": url}
                    for name, url in links.items()
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{alert.get('kind')} · {alert.get('severity')} · golden sample "
                    f"{alert.get('golden_sample_id') or 'unknown'}",
                }
            ],
        }
    )
    return {"text": title, "blocks": blocks}


def message_for_sns(message: str, subject: str | None) -> dict[str, Any]:
    """The Slack message for one SNS message: an alert of ours, or anything else (a CloudWatch alarm)."""
    try:
        document = json.loads(message)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("talonic_watchdog_alert"), dict):
        return blocks_for_alert(document["talonic_watchdog_alert"])
    if isinstance(document, dict) and "AlarmName" in document:
        text = f":rotating_light: *{document['AlarmName']}* is {document.get('NewStateValue')}: " + str(
            document.get("NewStateReason", "")
        )
        return {"text": text[:TEXT_LIMIT], "blocks": [_section(text)]}
    text = f"*{subject}*\n{message}" if subject else message
    return {"text": text[:TEXT_LIMIT], "blocks": [_section(text)]}


def webhook_session(retries: int = 3) -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=retries,
        backoff_factor=1.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def post_to_slack(session: requests.Session, webhook_url: str, payload: dict[str, Any], *, timeout: float = 10) -> None:
    try:
        response = session.post(webhook_url, json=payload, timeout=(3.05, timeout))
    except requests.RequestException as error:
        # Only the class name: a requests message carries the URL, which is the secret.
        raise SlackDeliveryError(f"posting to Slack failed: {type(error).__name__}") from None
    if response.status_code >= 300:
        raise SlackDeliveryError(f"Slack answered {response.status_code}")
    logger.info("alert posted to Slack", extra={"status": response.status_code})
