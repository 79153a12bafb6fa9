"""Security: least privilege as deployed, no secret in anything the system writes, and an ingress that refuses
missing, wrong and replayed credentials.

test_template_wiring.py reads each function's policies as text, and test_cleanup.py checks the write key's
resource policy names the two roles; here the two are evaluated together, against the roles the deployed
functions really run as, and the leak scan runs the stories with every log line captured.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.talonic_emulator import RunBehaviour
from tests.integration.conftest import GOLDEN, READ_KEY, WRITE_KEY, Watchdog, running_watchdog
from tests.webhook_receiver import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.integration

JOB_RUN = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
INGRESS_TOKEN = "ingress-token-9f8e7d6c5b4a39281706"
SIGNING_SECRET = "whsec_it_signing_5c4b3a29"
SLACK_SECRET = "talonic-watchdog/slack-webhook-of-the-leak-scan"  # not test_alerting's: the forwarder caches by name
# Loggers of the test harness only: moto serves AWS by wrapping `requests` with the `responses` library, which
# logs every URL that passes through it (the Slack webhook's too); no Lambda has it.
HARNESS_LOGGERS = {"responses"}
# SAM policy templates the stack uses that reach no secret and no table (checked by name, so a new one fails
# here until someone says what it reaches)
HARMLESS_TEMPLATES = {
    "SNSPublishMessagePolicy",
    "EventBridgePutEventsPolicy",
    "StepFunctionsExecutionPolicy",
    "LambdaInvokePolicy",
}


# -- least privilege ----------------------------------------------------------------------------------------


def statements(policy: Any) -> list[dict[str, Any]]:
    if isinstance(policy, dict) and "Statement" in policy:
        found = policy["Statement"]
        return list(found) if isinstance(found, list) else [found]
    return []


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def identity_allows_reading(policies: list[Any], secret_arn: str) -> bool:
    """Whether a role's policies (SAM templates and inline statements, resolved) allow GetSecretValue."""
    for policy in policies:
        if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy:
            if fnmatch.fnmatchcase(secret_arn, policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]):
                return True
            continue
        if isinstance(policy, dict) and "Statement" not in policy:
            unknown = set(policy) - HARMLESS_TEMPLATES
            assert not unknown, f"policy template(s) {unknown}: say what they reach"
            continue
        assert not isinstance(policy, str), f"managed policy {policy}: say what it reaches"
        for statement in statements(policy):
            actions = as_list(statement.get("Action", []))
            reads = any(fnmatch.fnmatchcase("secretsmanager:GetSecretValue", action) for action in actions)
            on_it = any(fnmatch.fnmatchcase(secret_arn, resource) for resource in as_list(statement.get("Resource")))
            if statement.get("Effect") == "Allow" and reads and on_it:
                return True
    return False


def resource_policy_denies(resource_policy: dict[str, Any] | None, role_arn: str) -> bool:
    """Whether a secret's resource policy denies GetSecretValue to this role (the conditions the stack uses)."""
    for statement in statements(resource_policy or {}):
        actions = as_list(statement.get("Action", []))
        if statement.get("Effect") != "Deny" or not any(
            fnmatch.fnmatchcase("secretsmanager:GetSecretValue", action) for action in actions
        ):
            continue
        condition = statement.get("Condition") or {}
        assert set(condition) <= {"ArnNotEquals", "StringNotEquals"}, f"condition {condition}: evaluate it here"
        excepted = [arn for test in condition.values() for arn in as_list(test.get("aws:PrincipalArn", []))]
        if not condition or role_arn not in excepted:
            return True
    return False


SECRET_VARIABLES = {
    "ReadKeySecret": "TALONIC_READ_KEY_SECRET",
    "WriteKeySecret": "TALONIC_WRITE_KEY_SECRET",
    "IngressSecret": "INGRESS_SECRET",
}


def test_only_the_create_and_cleanup_roles_can_read_the_write_key() -> None:
    # given the stack as deployed from the template: each function's role and policies, each secret's policy
    with running_watchdog() as watchdog:
        stack = watchdog.stack
        lambdas, secrets = stack.client("lambda"), stack.client("secretsmanager")
        roles = {
            name: lambdas.get_function(FunctionName=spec.name)["Configuration"]["Role"]
            for name, spec in stack.functions.items()
        }
        for secret, variable in SECRET_VARIABLES.items():
            arn = stack.resources[secret]
            described = secrets.get_resource_policy(SecretId=arn)
            resource_policy = json.loads(described["ResourcePolicy"]) if described.get("ResourcePolicy") else None
            told = {name for name, spec in stack.functions.items() if variable in spec.environment}
            # when each role is checked against the secret: by its own policies, then with the secret's policy
            granted = {
                name for name, policies in stack.function_policies.items() if identity_allows_reading(policies, arn)
            }
            effective = {name for name in granted if not resource_policy_denies(resource_policy, roles[name])}
            # then exactly the functions told where the secret is may read it, at both layers
            assert granted == effective == told, secret
            if secret == "WriteKeySecret":
                assert told == {"CreateRunFunction", "CleanupFunction"}
                # and the resource policy would keep out a poll, alert or ingress role that some other policy
                # let read every secret, and no role of the stack but the two
                for name in ("PollRunFunction", "AlertFunction", "IngressFunction"):
                    assert resource_policy_denies(resource_policy, roles[name]), name
                assert {name for name in roles if not resource_policy_denies(resource_policy, roles[name])} == told


def test_no_wildcard_on_secrets_or_tables_where_an_arn_will_do() -> None:
    with running_watchdog(SlackWebhookSecretArn=SLACK_SECRET) as watchdog:
        stack = watchdog.stack
        tables = {stack.attributes[name]["Arn"] for name in ("RunsTable", "IdempotencyTable")}
        indexes = {f"{stack.attributes['RunsTable']['Arn']}/index/by_golden_sample"}
        secrets = {stack.resources[name] for name in ("ReadKeySecret", "WriteKeySecret", "IngressSecret")}
        every_policy = [
            (name, policy)
            for owner in (stack.function_policies, stack.state_machine_policies)
            for name, policies in owner.items()
            for policy in policies
        ]
        assert {name for name, _ in every_policy} >= {"PollRunFunction", "CleanupFunction", "WatchStateMachine"}
        for name, policy in every_policy:
            # SAM policy templates: each names its secret, topic, bus, state machine or function, never "*"
            if isinstance(policy, dict) and "Statement" not in policy:
                for template, arguments in policy.items():
                    assert "*" not in json.dumps(arguments), (name, template)
                    if template == "AWSSecretsManagerGetSecretValuePolicy":
                        assert arguments["SecretArn"] in secrets | {SLACK_SECRET}, name
            for statement in statements(policy):
                actions = as_list(statement["Action"])
                resources = as_list(statement["Resource"])
                services = {action.split(":")[0] for action in actions}
                assert all(not action.endswith(":*") and action != "*" for action in actions), (name, actions)
                if "dynamodb" in services:
                    assert services == {"dynamodb"}, name
                    assert set(resources) <= tables | indexes, (name, resources)
                if "secretsmanager" in services:
                    assert set(resources) <= secrets, (name, resources)
                if "*" in resources:
                    # only for actions that support no resource-level permissions (log delivery)
                    assert services == {"logs"}, (name, actions)


# -- no secret in anything the system writes ----------------------------------------------------------------


def sign(body: str) -> str:
    return "sha256=" + hmac.new(SIGNING_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()


def delivery(epoch: float, attempt: int = 1, run_id: str = JOB_RUN) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps(
        {
            "event": {
                "event_type": "run.dataspace.completed",
                "event_id": f"evt_{run_id[:8]}",
                "idempotency_key": f"idem_{run_id[:8]}",
                "attempt": attempt,
                "delivered_at": stamp,
            },
            "payload": {"run_id": run_id, "golden_sample_id": GOLDEN},
            "content": None,
        }
    )


def post_signal(watchdog: Watchdog, body: str, *, token: str | None = INGRESS_TOKEN, signature: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-API-Key"] = token
    if signature is not None:
        headers["X-Talonic-Signature"] = signature
    return watchdog.stack.invoke_function_url("IngressFunction", headers=headers, body=body)


@pytest.fixture
def signed_ingress() -> Iterator[tuple[Watchdog, WebhookReceiver]]:
    """A stack whose ingress requires signatures, with the Slack forwarder, logging at DEBUG, deleting."""
    parameters = {
        "SlackWebhookSecretArn": SLACK_SECRET,
        "LogLevel": "DEBUG",
        "CleanupDryRun": "false",
        "KeepNewestPerGoldenSample": "1",
        "CleanupMaxDeletionShare": "1",
    }
    with webhook_receiver() as slack, running_watchdog(**parameters) as watchdog:
        watchdog.stack.client("secretsmanager").create_secret(
            Name=SLACK_SECRET, SecretString=json.dumps({"webhook_url": slack.url})
        )
        watchdog.stack.put_secret(
            "IngressSecret", json.dumps({"token": INGRESS_TOKEN, "signing_secret": SIGNING_SECRET})
        )
        watchdog.emulator.default_behaviour = RunBehaviour(pending_reads=1, running_reads=1, accuracy=0.95)
        yield watchdog, slack


class _CurrentStdout:
    """Writes to whatever sys.stdout is when a line is written: capsys swaps it between test phases."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def every_log_line(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger reaches caplog, at DEBUG, and Powertools' JSON lines reach capsys.

    The root logger is at DEBUG, as Lambda's ApplicationLogLevel=DEBUG would set it; the system's own loggers
    (Powertools' and talonic_watchdog's, which may not propagate) get caplog's handler and DEBUG too, and
    Powertools' handler writes to the current stdout, which capsys captures (by itself the handler keeps the
    stream it was created with). Libraries keep the levels the system gives them.
    """
    import talonic_watchdog.observability  # noqa: F401 - the system's loggers exist before they are hooked

    caplog.set_level(logging.DEBUG)
    undo: list[Any] = []
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue
        handler = getattr(logger, "powertools_handler", None)
        if logger.name.startswith("talonic_watchdog") or handler is not None:
            undo.append((logger.setLevel, logger.level))
            logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            undo.append((logger.removeHandler, caplog.handler))
        if isinstance(handler, logging.StreamHandler):
            undo.append((handler.setStream, handler.stream))
            handler.setStream(_CurrentStdout())  # type: ignore[arg-type]
    try:
        yield caplog
    finally:
        for action, argument in reversed(undo):
            action(argument)


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), json.dumps(vars(record), default=str)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def everything_written(
    watchdog: Watchdog, slack: WebhookReceiver, logs: dict[str, str], answers: list[Any]
) -> dict[str, str]:
    """Each place the system writes to, as text: log lines (by logger), SNS messages (all protocol bodies),
    executions (input, output, every history event), DynamoDB items, events delivered, what callers got."""
    stack = watchdog.stack
    sfn, dynamodb = stack.client("stepfunctions"), stack.client("dynamodb")
    executions = []
    for execution in watchdog.executions():
        arn = execution["executionArn"]
        description = sfn.describe_execution(executionArn=arn)
        description.pop("ResponseMetadata", None)
        executions.append({"description": description, "history": stack.execution_history(arn)})
    items = {
        table: dynamodb.scan(TableName=stack.resources[table])["Items"] for table in ("RunsTable", "IdempotencyTable")
    }
    return logs | {
        "SNS messages": json.dumps(stack.published_messages(), default=str),
        "executions": json.dumps(executions, default=str),
        "DynamoDB items": json.dumps(items, default=str),
        "events delivered": json.dumps([vars(delivery) for delivery in stack.deliveries], default=str),
        "Slack posts": json.dumps(slack.posts),
        "answers": json.dumps(answers, default=str),
    }


def test_no_key_token_or_webhook_url_appears_in_anything_the_system_writes(
    signed_ingress: tuple[Watchdog, WebhookReceiver],
    every_log_line: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watchdog, slack = signed_ingress
    emulator = watchdog.emulator
    answers: list[Any] = []
    # given the stories: a signal for a job run (a create, then a watch), a refused signal and a stale replay
    fresh = delivery(watchdog.clock())
    answers.append(post_signal(watchdog, fresh, signature=sign(fresh)))
    answers.append(post_signal(watchdog, fresh, token="not-the-token-but-long-enough", signature=sign(fresh)))
    [job_watch] = watchdog.executions()
    answers.append(watchdog.stack.wait_for_execution(job_watch["executionArn"]))
    watchdog.clock.advance(3600)
    answers.append(post_signal(watchdog, fresh, signature=sign(fresh)))
    # a run that completes below its threshold (an alert, posted to Slack too)
    low = emulator.add_run(
        golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=0, running_reads=1, accuracy=0.5)
    )
    answers.append(watchdog.watch({"validation_run_id": low["id"]}))
    # a cleanup that deletes two outdated runs with the write key, and reports
    for days in (200, 300):
        old = RunBehaviour(pending_seconds=0, running_seconds=60)
        emulator.add_run(golden_sample_id=GOLDEN, created_at=watchdog.clock() - days * 86_400, behaviour=old)
    answers.append(watchdog.stack.invoke("CleanupFunction", {"source": "schedule"}))
    # and a watch whose read key is revoked after its first read (401, a fresh read of the secret, 401)
    revoked = emulator.add_run(golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=3, running_reads=3))
    emulator.after_requests(1, lambda: emulator.revoke_key(READ_KEY), method="GET", path_regex=revoked["id"])
    answers.append(watchdog.watch({"validation_run_id": revoked["id"]}))

    # when everything the system wrote is collected
    captured = capsys.readouterr()
    logs = {"stdout (Powertools JSON lines, EMF)": captured.out, "stderr": captured.err}
    for record in every_log_line.records:
        if record.name.split(".")[0] in HARNESS_LOGGERS:
            continue
        where = f"log lines of {record.name}"
        logs[where] = logs.get(where, "") + record_text(record) + "\n"
    written = everything_written(watchdog, slack, logs, answers)

    # then the stories happened as told (so the scan below looked at something)
    assert [answer.get("statusCode") for answer in answers if "statusCode" in answer] == [202, 401, 401]
    assert json.loads(answers[3]["body"])["message"] == "stale delivery"
    assert [answer["status"] for answer in answers if "executionArn" in answer] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert answers[5]["deleted"] == 2
    kinds = [m["MessageAttributes"]["kind"]["Value"] for m in watchdog.stack.published_messages()]
    assert kinds == ["low_accuracy", "cleanup_report", "unauthorized"]
    assert len(slack.posts) == 3
    assert emulator.count(status=401) == 2
    assert emulator.count(method="POST") == 1 and emulator.count(method="DELETE") == 2
    assert '"message":"polled"' in captured.out and '"level":"INFO"' in captured.out  # Powertools' JSON lines
    assert any(record.levelno == logging.DEBUG for record in every_log_line.records)
    # and no key, token, signing secret or webhook URL appears in any of it
    secrets = {
        "the read key": READ_KEY,
        "the write key": WRITE_KEY,
        "the ingress token": INGRESS_TOKEN,
        "the signing secret": SIGNING_SECRET,
        "the Slack webhook URL": slack.url,
        "the Slack webhook's path": slack.url.split("127.0.0.1", 1)[1].split("/", 1)[1],
    }
    leaks = [
        f"{what} in the {where}"
        for where, text in written.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert leaks == [], "\n".join(leaks)
    # nor anything shaped like a Talonic key (the redaction mask, tlnc_***, is fine)
    shaped = {where: re.findall(r"tlnc_(?!\*\*\*)[A-Za-z0-9_\-]+", text) for where, text in written.items()}
    assert {where: found for where, found in shaped.items() if found} == {}


# -- the ingress refuses missing, wrong and replayed credentials ------------------------------------------


def test_the_ingress_refuses_missing_wrong_and_replayed_credentials() -> None:
    with running_watchdog() as watchdog:
        # given an ingress secret with a signing secret, the template's tolerance of 5 minutes, and a delivery
        # Talonic signed at 12:00:00
        assert watchdog.stack.functions["IngressFunction"].environment["INGRESS_MAX_SIGNAL_AGE_SECONDS"] == "300"
        watchdog.stack.put_secret(
            "IngressSecret", json.dumps({"token": INGRESS_TOKEN, "signing_secret": SIGNING_SECRET})
        )
        watchdog.emulator.default_behaviour = RunBehaviour(pending_reads=0, running_reads=1, accuracy=0.95)
        sent_at = watchdog.clock()
        body = delivery(sent_at)

        def status(answer: dict[str, Any]) -> tuple[int, str | None]:
            return answer["statusCode"], json.loads(answer["body"]).get("message")

        # when it arrives without the token, with a wrong one, or without or with a wrong signature
        refused = [
            post_signal(watchdog, body, token=None, signature=sign(body)),
            post_signal(watchdog, body, token="wrong-token-of-the-same-length-xx", signature=sign(body)),
            post_signal(watchdog, body),
            post_signal(watchdog, body, signature=sign(body.replace("completed", "failed"))),
        ]
        # then each is refused, and nothing reaches the bus
        assert [status(answer) for answer in refused] == [
            (401, "missing or wrong credentials"),
            (401, "missing or wrong credentials"),
            (401, "bad or missing X-Talonic-Signature"),
            (401, "bad or missing X-Talonic-Signature"),
        ]
        assert watchdog.stack.deliveries == []

        # when the delivery arrives as signed, and is replayed a minute later (a duplicate within the window)
        accepted = post_signal(watchdog, body, signature=sign(body))
        watchdog.clock.advance(60)
        replayed_soon = post_signal(watchdog, body, signature=sign(body))
        # then both are accepted, and they start one watch: the same execution name, the same execution
        assert status(accepted)[0] == status(replayed_soon)[0] == 202
        names = {delivery.result["execution_name"] for delivery in watchdog.stack.deliveries}
        assert len(watchdog.stack.deliveries) == 2
        assert len(names) == len(watchdog.executions()) == 1

        # when the same delivery is replayed ten minutes after it was signed, or arrives stamped in the future
        watchdog.clock.advance(540)
        replayed_late = post_signal(watchdog, body, signature=sign(body))
        from_the_future = delivery(watchdog.clock() + 600)
        early = post_signal(watchdog, from_the_future, signature=sign(from_the_future))
        # then both are refused as stale, and nothing more reaches the bus
        assert status(replayed_late) == status(early) == (401, "stale delivery")
        assert len(watchdog.stack.deliveries) == 2

        # when Talonic itself retries later, as it does: a fresh stamp, the next attempt, signed again
        retry = delivery(watchdog.clock(), attempt=2)
        retried = post_signal(watchdog, retry, signature=sign(retry))
        # then it passes, and still one watch runs and one validation run is created
        assert status(retried)[0] == 202
        assert len(watchdog.stack.deliveries) == 3
        assert {delivery.result["execution_name"] for delivery in watchdog.stack.deliveries} == names
        [execution] = watchdog.executions()
        assert watchdog.stack.wait_for_execution(execution["executionArn"])["status"] == "SUCCEEDED"
        assert watchdog.emulator.count(method="POST") == 1
