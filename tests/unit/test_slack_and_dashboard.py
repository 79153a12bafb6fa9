"""The Slack Block Kit rendering and webhook posting, the sparkline, and the dashboard's body."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local.stack.template import load_template
from talonic_watchdog.baselines import sparkline
from talonic_watchdog.errors import ConfigurationError
from talonic_watchdog.slack import (
    SlackDeliveryError,
    message_for_sns,
    parse_webhook_secret,
    post_to_slack,
    webhook_session,
)
from tests.webhook_receiver import webhook_receiver


def test_a_cloudwatch_alarm_and_plain_text_become_simple_messages():
    alarm = message_for_sns(
        json.dumps({"AlarmName": "FunctionErrors", "NewStateValue": "ALARM", "NewStateReason": "1 error"}), "ALARM"
    )
    assert alarm["text"].startswith(":rotating_light: *FunctionErrors* is ALARM")
    plain = message_for_sns("hello", "Subject")
    assert plain["blocks"][0]["text"]["text"] == "*Subject*\nhello"


@pytest.mark.parametrize("value", ["", "ftp://x", '{"url": "https://hooks.slack.com/x"}', "{oops"])
def test_a_bad_webhook_secret_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError):
        parse_webhook_secret(value, secret_id="slack")


def test_posting_retries_429_and_names_a_final_refusal_without_the_url():
    with webhook_receiver(refuse_first=1) as slack:
        post_to_slack(webhook_session(), slack.url, {"text": "hi"})
        assert slack.statuses == [429, 200]
    with webhook_receiver(refuse_first=10) as slack:
        with pytest.raises(SlackDeliveryError) as caught:
            post_to_slack(webhook_session(retries=1), slack.url, {"text": "hi"})
        assert "429" in str(caught.value)
        assert slack.url not in str(caught.value)


def test_sparklines_scale_to_their_own_range():
    assert sparkline([0.9, 0.95, 1.0]) == "▁▄█"
    assert sparkline([0.8, 0.8]) == "██"
    assert sparkline([]) == ""


def test_the_dashboard_body_is_json_with_accuracy_per_golden_sample():
    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    body = template["Resources"]["WatchdogDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    resolved = re.sub(r"\$\{[^}]+\}", "placeholder", body)
    widgets = json.loads(resolved)["widgets"]
    titles = [widget["properties"]["title"] for widget in widgets]
    assert titles[0] == "Accuracy per golden sample (%)"
    assert "golden_sample_id" in json.dumps(widgets[0])
    assert "RunAccuracy" in json.dumps(widgets[0])
