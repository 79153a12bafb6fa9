"""`make demo`: the watchdog, end to end, on this machine: no AWS account, no Docker.

The stack is built from template.yaml on moto (the real state machine, the real handlers in-process) and
Talonic is the emulator on 127.0.0.1. Waits are compressed by a virtual clock: the logic is unchanged, only
time passes faster. The story:

1. a job run finishes and Talonic's `run.dataspace.completed` signal reaches the ingress URL;
2. the workflow creates the validation run and polls it, each poll shown as it happens;
3. the run completes below its baseline: the alert, as the email and as the Slack message;
4. a later run recovers: the recovery notice;
5. the discovery sweep finds a run started from Talonic's dashboard and watches it;
6. the scheduled cleanup runs as a dry run, then for real;
7. a summary.

It exits 0 when every step did what it should, and 1 with the reason when one did not.

With `TALONIC_API_URL` and `TALONIC_READ_KEY` in the environment, it watches a real run instead (the one in
`TALONIC_VALIDATION_RUN_ID`, else the newest), in real time, and renders the alert locally; cleanup stays a
dry run and is given no write key.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from typing import Any

from local.embedded import REPO, embedded_system
from local.stack import LocalStack, VirtualClock
from local.talonic_emulator import RunBehaviour, TalonicEmulator

READ_KEY = "tlnc_test_demo_read_0000000000"
WRITE_KEY = "tlnc_test_demo_write_000000000"
GOLDEN_SAMPLE = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
RETIRED_GOLDEN_SAMPLE = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
START = 1_796_385_600.0  # 2026-12-04T12:00:00Z
DAY = 86_400
HEALTHY = {"invoice_number": (10, 10), "total_amount": (9, 10), "issue_date": (10, 10), "vendor_name": (10, 10)}
SLIPPING = {"invoice_number": (7, 10), "total_amount": (9, 10), "issue_date": (10, 10), "vendor_name": (10, 10)}


class DemoFailed(Exception):
    """A step of the story did not do what it should."""


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise DemoFailed(reason)


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


def indented(text: str) -> None:
    print(textwrap.indent(text, "  "))


def quiet_the_machinery() -> None:
    """Keep the story readable: the functions' JSON logs and EMF metrics stay quiet here."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # moto's ASL interpreter logs an ERROR whenever a Choice's IsPresent meets a missing path, which is how
    # IsPresent works: noise for a reader, so its logger is quieted (a real failure still fails the demo).
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def follow_watch(stack: LocalStack, execution_arn: str) -> dict[str, Any]:
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
                step = f"next look in {poll['wait_seconds']:>4} s" if poll.get("next") == "wait" else poll["next"]
                print(
                    f"  t+{poll.get('elapsed_seconds', 0):6.0f} s  poll {poll['polls']:>2}: "
                    f"{run.get('status', '?'):<9} → {step:<20} requests spent: {poll['requests']}"
                )
        shown = len(events)
        if description["status"] != "RUNNING":
            return dict(description)
        time.sleep(0.02)


def show_alert(message: Mapping[str, Any], *, slack: bool) -> None:
    bodies = message["Structured"] or {}
    print(f"  Subject: {message['Subject']}")
    print("  --- email ---")
    indented(bodies["email"])
    if slack:
        content = json.loads(bodies["https"])["content"]
        print("  --- Slack (AWS Chatbot custom notification) ---")
        indented(f"{content['title']}\n{content['description']}")
        for step in content["nextSteps"]:
            print(f"  • {step}")


class Story:
    """The embedded demo: the stack, the emulator, and the steps of the story."""

    def __init__(self, stack: LocalStack, emulator: TalonicEmulator, clock: VirtualClock) -> None:
        self.stack, self.emulator, self.clock = stack, emulator, clock
        self.sfn = stack.client("stepfunctions")

    def executions(self) -> list[dict[str, Any]]:
        arn = self.stack.outputs["WatchStateMachineArn"]
        return list(self.sfn.list_executions(stateMachineArn=arn)["executions"])

    def signal(self, job_run_id: str, name: str) -> dict[str, Any]:
        """Talonic's delivery for a finished job run, through the ingress URL; returns the watch it started."""
        secret = self.stack.client("secretsmanager").get_secret_value(SecretId=self.stack.outputs["IngressSecretArn"])
        envelope = {
            "event": {
                "event_type": "run.dataspace.completed",
                "event_id": f"evt_{job_run_id[:8]}",
                "attempt": 1,
                "idempotency_key": f"idem_{job_run_id[:8]}",
                "delivered_at": "2026-12-04T12:00:00.000Z",
            },
            "payload": {"run_id": job_run_id, "golden_sample_id": GOLDEN_SAMPLE, "name": name},
            "content": None,
        }
        before = {e["executionArn"] for e in self.executions()}
        answer = self.stack.invoke_function_url(
            "IngressFunction",
            headers={"X-API-Key": json.loads(secret["SecretString"])["token"]},
            body=json.dumps(envelope),
        )
        print(f"  POST {self.stack.outputs['IngressUrl']} → {answer['statusCode']} {answer['body']}")
        expect(answer["statusCode"] == 202, f"the ingress function answered {answer['statusCode']}")
        started = [e for e in self.executions() if e["executionArn"] not in before]
        expect(len(started) == 1, f"expected one new watch, found {len(started)}")
        print(f"  EventBridge rule → StartWatchFunction → execution {started[0]['name']}")
        return started[0]

    def seed(self) -> None:
        """Talonic's history before the watchdog arrived: a healthy golden sample, and old runs to clean up."""
        now = self.clock()
        for days in range(5, 0, -1):
            self.emulator.add_run(
                golden_sample_id=GOLDEN_SAMPLE,
                name=f"invoices nightly, {days} days ago",
                created_at=now - days * DAY,
                behaviour=RunBehaviour(pending_seconds=60, running_seconds=600, fields=HEALTHY),
            )
        for months in range(8):
            self.emulator.add_run(
                golden_sample_id=RETIRED_GOLDEN_SAMPLE,
                name=f"legacy invoices #{months}",
                created_at=now - (120 + 30 * months) * DAY,
                behaviour=RunBehaviour(pending_seconds=60, running_seconds=600, fields=HEALTHY),
            )
        for days in (30, 40):
            self.emulator.add_run(
                golden_sample_id=RETIRED_GOLDEN_SAMPLE,
                name=f"failed try, {days} days ago",
                created_at=now - days * DAY,
                behaviour=RunBehaviour(pending_seconds=60, running_seconds=60, final_status="failed"),
            )
        self.emulator.add_run(
            golden_sample_id=RETIRED_GOLDEN_SAMPLE,
            name="keep-audit-2026",
            created_at=now - 300 * DAY,
            behaviour=RunBehaviour(pending_seconds=60, running_seconds=600, fields=HEALTHY),
        )
        print(
            f"  Talonic holds {len(self.emulator.runs)} earlier validation runs: five healthy nightly runs of golden"
            f" sample {GOLDEN_SAMPLE[:8]}, and old runs of a retired golden sample"
        )

    def run(self) -> int:
        heading("0. Before: Talonic's history")
        self.seed()

        heading("1. A job run finishes: Talonic's signal reaches the ingress URL")
        # The validation run it gets: 2 minutes pending, 9 minutes running, then invoice numbers slip.
        self.emulator.default_behaviour = RunBehaviour(pending_seconds=120, running_seconds=540, fields=SLIPPING)
        execution = self.signal("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", "invoices nightly")

        heading("2. The workflow creates the validation run and polls it")
        started = self.clock()
        description = follow_watch(self.stack, execution["executionArn"])
        expect(description["status"] == "SUCCEEDED", f"the watch ended {description['status']}")
        print(f"  the watch took {self.clock() - started:.0f} virtual seconds")

        heading("3. The run completes below its baseline: the alert")
        messages = self.stack.published_messages()
        expect(len(messages) == 1, f"expected one alert, got {len(messages)}")
        expect(messages[0]["MessageAttributes"]["kind"]["Value"] == "regression", "expected a regression alert")
        show_alert(messages[0], slack=True)

        heading("4. The next night's run recovers: the recovery notice")
        self.clock.advance(DAY)
        self.emulator.default_behaviour = RunBehaviour(pending_seconds=120, running_seconds=540, fields=HEALTHY)
        execution = self.signal("4d5e6f7a-8b9c-4dae-8f10-2b3c4d5e6f7a", "invoices nightly")
        description = self.stack.wait_for_execution(execution["executionArn"])
        expect(description["status"] == "SUCCEEDED", f"the second watch ended {description['status']}")
        messages = self.stack.published_messages()
        expect(
            [m["MessageAttributes"]["kind"]["Value"] for m in messages] == ["regression", "recovery"],
            "expected one recovery notice after the alert",
        )
        show_alert(messages[1], slack=False)

        heading("5. Discovery: a run started from Talonic's dashboard")
        manual = self.emulator.add_run(
            golden_sample_id=GOLDEN_SAMPLE,
            name="manual re-check",
            behaviour=RunBehaviour(pending_seconds=30, running_seconds=200, fields=HEALTHY),
        )
        report = self.stack.invoke("DiscoveryFunction", {"source": "schedule"})
        print(
            f"  sweep: seen {report['seen']}, new {report['new']}, watches started {report['watches_started']},"
            f" recorded only {report['recorded_only']}, requests {report['requests']}"
        )
        expect(report["watches_started"] == 1, "the sweep should watch the new running run")
        watch = next(e for e in self.executions() if e["name"] == f"run-{manual['id']}")
        description = self.stack.wait_for_execution(watch["executionArn"])
        expect(description["status"] == "SUCCEEDED", "the discovered run's watch should succeed")
        print(f"  execution {watch['name']} watched it to the end: no alert (accuracy above its baseline)")

        heading("6. The scheduled cleanup: first a dry run, then for real")
        dry = self.stack.invoke("CleanupFunction", {"source": "schedule", "dry_run": True})
        self.show_cleanup(dry, "would delete")
        expect(dry["dry_run"] and dry["eligible"] > 0 and not dry["deleted"], "the dry run should delete nothing")
        real = self.stack.invoke("CleanupFunction", {"source": "schedule"})
        self.show_cleanup(real, "deleted")
        expect(real["deleted"] == dry["eligible"], "cleanup should delete what the dry run listed")
        gone = {line["run_id"] for line in real["runs"]["deleted"]}
        expect(not gone & set(self.emulator.runs), "every run reported deleted should be gone from Talonic")

        heading("Summary")
        kinds = [m["MessageAttributes"]["kind"]["Value"] for m in self.stack.published_messages()]
        print(f"  executions: {len(self.executions())} · alerts: {', '.join(kinds)}")
        print(
            f"  Talonic requests served by the emulator: {len(self.emulator.requests)} "
            f"({self.emulator.count(method='POST')} create, {self.emulator.count(method='GET')} reads,"
            f" {self.emulator.count(method='DELETE')} deletes)"
        )
        print(f"  runs deleted: {real['deleted']} · runs left in Talonic: {len(self.emulator.runs)}")
        return 0

    @staticmethod
    def show_cleanup(report: dict[str, Any], verb: str) -> None:
        mode = "dry run" if report["dry_run"] else "for real"
        kept = ", ".join(f"{reason} {count}" for reason, count in sorted(report["kept"].items()))
        print(
            f"  {mode}: examined {report['examined']}, eligible {report['eligible']}, deleted {report['deleted']},"
            f" kept {sum(report['kept'].values())} ({kept})"
        )
        key = "would_delete" if report["dry_run"] else "deleted"
        for line in report["runs"][key]:
            print(f"    {verb} {line['run_id'][:8]}: {line['age_days']:.0f} days old, {line['reason']}")


def embedded_demo() -> int:
    parameters = {"LogLevel": "WARNING", "CleanupDryRun": "false", "CleanupExemptNamePrefixes": "keep-"}
    with embedded_system(read_key=READ_KEY, write_key=WRITE_KEY, start=START, **parameters) as system:
        print(f"Local stack from template.yaml on moto; Talonic emulator on {system.emulator.url}")
        return Story(system.stack, system.emulator, system.clock).run()


def real_api_demo(api_url: str, read_key: str) -> int:
    """Watch a real validation run with the real API, in real time; alerts are rendered here, not sent."""
    stack = LocalStack(
        template_path=str(REPO / "template.yaml"),
        parameters={"TalonicApiUrl": api_url, "LogLevel": "WARNING"},
        clock=VirtualClock(time.time()),
        wait_scale=1.0,  # real waits: the real API's request budget is not ours to spend faster
    )
    with stack:
        stack.put_secret("ReadKeySecret", read_key)
        print(f"Local stack from template.yaml on moto; Talonic API at {api_url}")
        run_id = os.environ.get("TALONIC_VALIDATION_RUN_ID", "")
        if not run_id:
            heading("Looking for the newest validation run")
            report = stack.invoke("DiscoveryFunction", {"source": "schedule"})
            print(f"  discovery: seen {report['seen']}, watches started {report['watches_started']}")
            executions = stack.client("stepfunctions").list_executions(
                stateMachineArn=stack.outputs["WatchStateMachineArn"]
            )["executions"]
            expect(bool(executions) or report["seen"] > 0, "the API listed no validation runs")
            arns = [e["executionArn"] for e in executions]
        else:
            arns = [stack.start_execution({"validation_run_id": run_id}, name=f"run-{run_id}")]
        for arn in arns:
            heading(f"Watching {arn.rsplit(':', 1)[-1]}")
            description = follow_watch(stack, arn)
            print(f"  the watch ended {description['status']}")
        heading("Alerts (rendered here; nothing was sent)")
        for message in stack.published_messages():
            show_alert(message, slack=False)
        heading("Cleanup, dry run (no write key is given to this demo)")
        report = stack.invoke("CleanupFunction", {"source": "schedule", "dry_run": True})
        Story.show_cleanup(report, "would delete")
    return 0


def main() -> int:
    quiet_the_machinery()
    api_url, read_key = os.environ.get("TALONIC_API_URL", ""), os.environ.get("TALONIC_READ_KEY", "")
    if api_url and read_key:
        return real_api_demo(api_url, read_key)
    return embedded_demo()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoFailed as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
