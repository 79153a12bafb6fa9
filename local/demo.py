"""`make demo`: the watchdog, end to end, on this machine: no AWS account, no Docker.

The stack is built from template.yaml on moto (the real state machine, the real handlers in-process) and
Talonic is the emulator on 127.0.0.1. Waits are compressed by a virtual clock: the logic is unchanged, only
time passes faster. The story:

1. a job run finishes and Talonic's `run.dataspace.completed` signal reaches the ingress URL;
2. the workflow creates the validation run and polls it, each poll shown as it happens;
3. the run completes below the threshold: the alert is shown as the email and as the Slack message.

Exits 0 when every step did what it should, and 1 with the reason when one did not.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from local.stack import LocalStack, VirtualClock
from local.talonic_emulator import RunBehaviour, TalonicEmulator

REPO = Path(__file__).resolve().parents[1]
READ_KEY = "tlnc_test_demo_read_0000000000"
WRITE_KEY = "tlnc_test_demo_write_000000000"
GOLDEN_SAMPLE = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
JOB_RUN = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
START = 1_796_385_600.0  # 2026-12-04T12:00:00Z


class DemoFailed(Exception):
    """A step of the story did not do what it should."""


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise DemoFailed(reason)


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def show_polls_live(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
    """Print each poll as the workflow makes it, until the execution ends."""
    sfn = stack.client("stepfunctions")
    shown = 0
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events = stack.execution_history(execution_arn)
        for event in events[shown:]:
            if event["type"] == "TaskStateExited" and event["stateExitedEventDetails"]["name"] == "PollRun":
                state = json.loads(event["stateExitedEventDetails"]["output"])
                run, poll = state.get("run", {}), state["poll"]
                wait = f"next look in {poll['wait_seconds']:>4} s" if poll.get("next") == "wait" else poll["next"]
                print(
                    f"  t+{poll['elapsed_seconds']:6.0f} s  poll {poll['polls']:>2}: status {run.get('status', '?'):<9}"
                    f" → {wait:<20} requests spent: {poll['requests']}"
                )
        shown = len(events)
        if description["status"] != "RUNNING":
            return dict(description)
        time.sleep(0.02)


def main() -> int:
    # Keep the story readable: the functions' JSON logs and EMF metrics stay quiet here.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # moto's ASL interpreter logs an ERROR whenever a Choice's IsPresent meets a missing path, which is how
    # IsPresent works: noise for a reader, so its logger is quieted here (a real failure still fails the demo).
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    clock = VirtualClock(START)
    with TalonicEmulator(clock=clock) as emulator:
        emulator.add_key(READ_KEY, scopes={"read"}, alias="read")
        emulator.add_key(WRITE_KEY, scopes={"read", "write"}, alias="write")
        # The validation run this job run gets: 2 minutes pending, 9 minutes running, then 81 % accurate.
        emulator.default_behaviour = RunBehaviour(pending_seconds=120, running_seconds=540, accuracy=0.81)
        stack = LocalStack(
            template_path=str(REPO / "template.yaml"),
            parameters={"TalonicApiUrl": emulator.url, "AccuracyThreshold": "0.9", "LogLevel": "WARNING"},
            clock=clock,
        )
        with stack:
            stack.put_secret("ReadKeySecret", READ_KEY)
            stack.put_secret("WriteKeySecret", json.dumps({"api_key": WRITE_KEY}))
            print(f"Local stack from template.yaml on moto; Talonic emulator on {emulator.url}")

            heading("1. A job run finishes: Talonic's signal reaches the ingress URL")
            token = json.loads(
                stack.client("secretsmanager").get_secret_value(SecretId=stack.outputs["IngressSecretArn"])[
                    "SecretString"
                ]
            )["token"]
            signal = {
                "event": {
                    "event_type": "run.dataspace.completed",
                    "event_id": "evt_demo",
                    "attempt": 1,
                    "idempotency_key": "idem_demo",
                    "delivered_at": "2026-12-04T12:00:00.000Z",
                },
                "payload": {"run_id": JOB_RUN, "golden_sample_id": GOLDEN_SAMPLE, "name": "invoices nightly"},
                "content": None,
            }
            answer = stack.invoke_function_url("IngressFunction", headers={"X-API-Key": token}, body=json.dumps(signal))
            print(f"  POST {stack.outputs['IngressUrl']} → {answer['statusCode']} {answer['body']}")
            expect(answer["statusCode"] == 202, f"the ingress function answered {answer['statusCode']}")
            executions = stack.client("stepfunctions").list_executions(
                stateMachineArn=stack.outputs["WatchStateMachineArn"]
            )["executions"]
            expect(len(executions) == 1, f"expected one watch to start, found {len(executions)}")
            print(f"  EventBridge rule → StartWatchFunction → execution {executions[0]['name']}")

            heading("2. The workflow creates the validation run and polls it")
            started = clock()
            description = show_polls_live(stack, executions[0]["executionArn"])
            expect(description["status"] == "SUCCEEDED", f"the watch ended {description['status']}")
            [run_id] = list(emulator.runs)
            print(f"  validation run {run_id} completed; the watch took {clock() - started:.0f} virtual seconds")

            heading("3. Accuracy is below the threshold: the alert")
            messages = stack.published_messages()
            expect(len(messages) == 1, f"expected one alert, got {len(messages)}")
            bodies = messages[0]["Structured"] or {}
            print(f"  Subject: {messages[0]['Subject']}")
            print("  --- email ---")
            print(textwrap.indent(bodies["email"], "  "))
            chatbot = json.loads(bodies["https"])
            print("  --- Slack (AWS Chatbot custom notification) ---")
            print(textwrap.indent(chatbot["content"]["title"], "  "))
            print(textwrap.indent(chatbot["content"]["description"], "  "))
            for step in chatbot["content"]["nextSteps"]:
                print(f"  • {step}")

            heading("Summary")
            reads = emulator.count(method="GET")
            print(
                f"  executions: 1 · alerts: {len(messages)} · Talonic requests: {len(emulator.requests)}"
                f" ({emulator.count(method='POST')} create, {reads} reads)"
            )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoFailed as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
