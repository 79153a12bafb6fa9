"""The local stack: resources built from a template, handlers run in-process, waits compressed, events bridged.

Most tests use a small fixture application (tests/local/fixtures/: a template, a state machine and a
handler that does what its event asks); one builds the real template.yaml and checks what it created.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.stack import LambdaContext, LocalStack, TemplateError, VirtualClock, WaitRecord
from local.stack.template import NO_VALUE, PseudoParameters, Resolver, load_template
from talonic_watchdog import clock as watchdog_clock

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"
REAL_TEMPLATE = Path(__file__).parents[2] / "template.yaml"
START = 1_796_385_600.0  # 2026-12-04T12:00:00Z


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def stack(clock: VirtualClock) -> Iterator[LocalStack]:
    with LocalStack(FIXTURE_TEMPLATE, clock=clock) as entered:
        yield entered


def run(stack: LocalStack, execution_input: dict[str, Any]) -> dict[str, Any]:
    return stack.wait_for_execution(stack.start_execution(execution_input), timeout=30)


# -- the template ------------------------------------------------------------------------------------------


def test_short_form_intrinsics_load_as_long_form_and_resolve(tmp_path: Path) -> None:
    # given a template written with short-form intrinsics
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources: {}\n"
        "Conditions:\n  Yes: !Equals [a, a]\n"
        "Outputs:\n"
        "  Sub: {Value: !Sub ['${Name}-${AWS::Region}-${!Literal}', {Name: !Ref Name}]}\n"
        "  Att: {Value: !GetAtt Thing.Arn}\n"
        "  Pick: {Value: !Select [2, !Split [',', 'a,b,c']]}\n"
        "  Gone: {Value: [keep, !If [Yes, !Ref AWS::NoValue, drop]]}\n"
        "  Date: {Value: 2026-12-04}\n"
    )

    class Lookup:
        def ref(self, logical_id: str) -> Any:
            raise AssertionError(logical_id)

        def get_att(self, logical_id: str, attribute: str) -> Any:
            return f"arn:{logical_id}:{attribute}"

    # when it is loaded and its outputs resolved
    body = load_template(template)
    resolver = Resolver(
        parameters={"Name": "x"},
        pseudo=PseudoParameters(),
        conditions=body["Conditions"],
        mappings={},
        lookup=Lookup(),
    )
    values = {name: resolver.resolve(output["Value"]) for name, output in body["Outputs"].items()}

    # then the tags became long-form intrinsics and evaluate as CloudFormation evaluates them
    assert body["Outputs"]["Att"]["Value"] == {"Fn::GetAtt": ["Thing", "Arn"]}
    assert values == {
        "Sub": "x-us-east-1-${Literal}",
        "Att": "arn:Thing:Arn",
        "Pick": "c",
        "Gone": ["keep"],
        "Date": "2026-12-04",
    }
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_parameters_are_validated_as_cloudformation_validates_them() -> None:
    # given parameters that break the fixture template's AllowedPattern, AllowedValues, or are unknown
    # when a stack is made with each, then it is refused with the parameter's name in the message
    with pytest.raises(TemplateError, match="Greeting"):
        LocalStack(FIXTURE_TEMPLATE, parameters={"Greeting": "Hello!"})
    with pytest.raises(TemplateError, match="RetentionDays"):
        LocalStack(FIXTURE_TEMPLATE, parameters={"RetentionDays": 2})
    with pytest.raises(TemplateError, match="Colour"):
        LocalStack(FIXTURE_TEMPLATE, parameters={"Colour": "red"})


def test_every_resource_is_created_from_the_template(stack: LocalStack) -> None:
    # given the fixture stack, entered

    # then each resource exists in moto, named <stack>-<LogicalId>, and wired as the template says
    resources = stack.resources
    secrets = stack.client("secretsmanager")
    assert secrets.get_secret_value(SecretId=resources["Secret"])["SecretString"] == '{"api_key": ""}'
    generated = json.loads(secrets.get_secret_value(SecretId=resources["GeneratedSecret"])["SecretString"])
    assert generated["user"] == "fixture"
    assert len(generated["token"]) == 24
    assert generated["token"].isalnum()

    table = stack.client("dynamodb").describe_table(TableName=resources["Table"])["Table"]
    assert table["TableName"] == "talonic-watchdog-local-Table"
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["by_kind"]
    ttl = stack.client("dynamodb").describe_time_to_live(TableName=resources["Table"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    assert stack.client("sns").list_subscriptions_by_topic(TopicArn=resources["Topic"])["Subscriptions"] == []
    assert "EmailSubscription" not in resources  # its condition is false: Email is empty

    log_groups = stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert [(group["logGroupName"], group["retentionInDays"]) for group in log_groups] == [
        ("/aws/lambda/talonic-watchdog-local-WorkFunction", 7)
    ]

    assert stack.skipped_resources == ["Detector"]
    [alarm] = stack.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert alarm["MetricName"] == "Errors"
    assert stack.outputs == {
        "WorkflowArn": resources["Workflow"],
        "TopicArn": resources["Topic"],
        "WorkUrl": stack.functions["WorkFunction"].url,
        "WorkFunctionName": "talonic-watchdog-local-WorkFunction",
        "Joined": "hello-b",
    }
    assert stack.outputs["WorkUrl"].startswith("https://")
    assert stack.outputs["WorkUrl"].endswith(".lambda-url.us-east-1.on.aws/")


def test_functions_get_globals_their_environment_and_policies_resolved(stack: LocalStack) -> None:
    # given the fixture stack, entered
    # when the function's configuration is read back from moto
    configuration = stack.client("lambda").get_function_configuration(FunctionName=stack.resources["WorkFunction"])

    # then Globals were merged (the function's own variables win) and every reference resolved
    assert configuration["Environment"]["Variables"] == {
        "SHARED": "from-globals",
        "OVERRIDDEN": "from-function",
        "SECRET_ARN": stack.resources["Secret"],
        "TABLE_NAME": "talonic-watchdog-local-Table",
        "TOPIC_ARN": stack.resources["Topic"],
        "GREETING": "hello from talonic-watchdog-local",
    }
    assert (configuration["Runtime"], configuration["Timeout"], configuration["MemorySize"]) == ("python3.13", 30, 256)
    assert configuration["Handler"] == "app.lambda_handler"
    assert stack.functions["WorkFunction"].module == "tests.local.fixtures.handlers.app"
    assert stack.function_policies["WorkFunction"] == [
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": stack.resources["Secret"]}},
        {"SNSPublishMessagePolicy": {"TopicName": "talonic-watchdog-local-Topic"}},
    ]
    assert stack.state_machine_policies["Workflow"] == [
        {"LambdaInvokePolicy": {"FunctionName": "talonic-watchdog-local-WorkFunction"}}
    ]


def test_a_true_condition_creates_the_conditional_resource_and_output() -> None:
    # given an alert email address
    with LocalStack(FIXTURE_TEMPLATE, parameters={"Email": "ops@example.com"}) as stack:
        # then the email subscription exists, and so does the output that refers to it
        subscriptions = stack.client("sns").list_subscriptions_by_topic(TopicArn=stack.resources["Topic"])
        assert [(item["Protocol"], item["Endpoint"]) for item in subscriptions["Subscriptions"]] == [
            ("email", "ops@example.com")
        ]
        assert stack.outputs["EmailSubscriptionArn"] == stack.resources["EmailSubscription"]


def test_a_definition_placeholder_without_substitution_is_an_error(tmp_path: Path) -> None:
    # given a state machine whose definition uses a placeholder the template does not substitute
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Comment": "${Nope}", "End": True}}}
    (tmp_path / "machine.asl.json").write_text(json.dumps(definition))
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Machine:\n    Type: AWS::Serverless::StateMachine\n"
        "    Properties:\n      DefinitionUri: machine.asl.json\n"
    )

    # when the stack is entered, then it refuses, naming the placeholder
    with pytest.raises(TemplateError, match=r"\$\{Nope\}"), LocalStack(tmp_path / "template.yaml"):
        pass


def test_only_one_stack_can_be_entered_at_a_time(stack: LocalStack) -> None:
    # given an entered stack, when a second is entered, then it is refused
    with pytest.raises(RuntimeError, match="another LocalStack"), LocalStack(FIXTURE_TEMPLATE):
        pass


# -- Lambda in-process -----------------------------------------------------------------------------------------


def test_a_handler_exception_is_caught_by_its_class_name(stack: LocalStack) -> None:
    # given a handler that raises FixtureFailure, which the state machine catches by that name
    # when the workflow runs it through the lambda:invoke integration
    result = run(stack, {"action": "fail", "message": "boom"})

    # then the Catch took the execution to its Fail state, with the Lambda error payload as the cause
    assert (result["status"], result["error"]) == ("FAILED", "WorkFailed")
    cause = json.loads(result["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("FixtureFailure", "boom")
    assert "fixtures/handlers/app.py" in cause["stackTrace"][0]


def test_a_handler_exception_is_caught_through_a_plain_lambda_arn_resource(stack: LocalStack) -> None:
    # given the same failure, reached through a Task whose Resource is the function's ARN
    result = run(stack, {"path": "legacy", "action": "fail"})

    # then it is caught by class name too
    assert (result["status"], result["error"]) == ("FAILED", "WorkFailed")
    assert json.loads(result["cause"])["errorType"] == "FixtureFailure"


def test_the_lambda_api_reports_an_exception_as_an_unhandled_function_error(stack: LocalStack) -> None:
    # given the handler, when it is invoked through the Lambda API and raises
    response = stack.client("lambda").invoke(
        FunctionName=stack.resources["WorkFunction"], Payload=json.dumps({"action": "fail", "message": "nope"})
    )

    # then the response carries the function error and the runtime's error payload, as AWS's does
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert (payload["errorType"], payload["errorMessage"]) == ("FixtureFailure", "nope")
    assert isinstance(payload["stackTrace"], list)


def test_the_environment_is_set_during_the_call_and_restored_after(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a process variable the function also sets, and one only the function sets
    monkeypatch.setenv("OVERRIDDEN", "from-the-test")
    monkeypatch.delenv("SECRET_ARN", raising=False)

    # when the handler runs
    result = stack.invoke("WorkFunction", {"action": "echo"})

    # then it saw the function's environment (and sam local's marker), and the process's is back after
    assert result["environment"]["OVERRIDDEN"] == "from-function"
    assert result["environment"]["SECRET_ARN"] == stack.resources["Secret"]
    assert result["environment"]["AWS_SAM_LOCAL"] == "true"
    assert os.environ["OVERRIDDEN"] == "from-the-test"
    assert "SECRET_ARN" not in os.environ


def test_the_lambda_context_describes_the_function(stack: LocalStack) -> None:
    # given the function (Timeout 30, MemorySize 256 from Globals), when it is invoked
    result = stack.invoke("WorkFunction", {"action": "echo"})

    # then its context names it, and on the still virtual clock all 30 s remain
    assert result["function_name"] == "talonic-watchdog-local-WorkFunction"
    assert result["invoked_function_arn"] == stack.attributes["WorkFunction"]["Arn"]
    assert result["memory_limit_in_mb"] == 256
    assert result["remaining_ms"] == 30_000


def test_the_remaining_time_follows_the_virtual_clock(stack: LocalStack, clock: VirtualClock) -> None:
    # given a context made for the 30 s function
    context = LambdaContext(stack.functions["WorkFunction"], clock, "request-1")

    # when 12.5 virtual seconds pass, then 17.5 s remain; and never less than nothing
    clock.advance(12.5)
    assert context.get_remaining_time_in_millis() == 17_500
    clock.advance(60)
    assert context.get_remaining_time_in_millis() == 0


def test_the_shared_package_reads_the_virtual_clock_while_the_stack_runs(clock: VirtualClock) -> None:
    # given a stack on a virtual clock
    with LocalStack(FIXTURE_TEMPLATE, clock=clock) as stack:
        # when a handler asks the shared package for "now", then it gets the virtual time
        assert stack.invoke("WorkFunction", {"action": "now"}) == {"now": START}

    # and after the stack exits, the shared package reads the system clock again
    assert abs(watchdog_clock.now() - time.time()) < 5


# -- time ----------------------------------------------------------------------------------------------------


def test_a_wait_of_an_hour_advances_the_clock_an_hour_and_finishes_fast(stack: LocalStack, clock: VirtualClock) -> None:
    # given a handler that asks the workflow to wait 3600 s
    started = time.monotonic()

    # when the workflow runs
    arn = stack.start_execution({"action": "wait", "seconds": 3600})
    result = stack.wait_for_execution(arn)

    # then it waited the hour on the virtual clock, in well under a real second or so
    assert result["status"] == "SUCCEEDED"
    assert stack.waits == [WaitRecord(arn, 3600)]
    assert clock() == START + 3600
    assert time.monotonic() - started < 5


def test_a_timestamp_wait_is_measured_on_the_virtual_clock(stack: LocalStack, clock: VirtualClock) -> None:
    # given a wait until two virtual hours from now
    until = datetime.fromtimestamp(START + 7200, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # when the workflow waits for it
    arn = stack.start_execution({"wait_until": until})
    result = stack.wait_for_execution(arn)

    # then it waited exactly those two hours
    assert result["status"] == "SUCCEEDED"
    assert stack.waits == [WaitRecord(arn, 7200)]
    assert clock() == START + 7200


def test_retry_intervals_are_capped_jittered_and_compressed(stack: LocalStack, clock: VirtualClock) -> None:
    # given a handler that always raises TransientError: retried twice (10 s, then 30 s capped at 20 s,
    # both with full jitter), then caught
    arn = stack.start_execution({"action": "transient"})
    result = stack.wait_for_execution(arn)

    # then the execution gave up after the two retries, each delay within its bound, on the virtual clock
    assert (result["status"], result["error"]) == ("FAILED", "GaveUp")
    delays = stack.retry_delays
    assert [delay.execution_arn for delay in delays] == [arn, arn]
    assert 0 <= delays[0].seconds <= 10
    assert 0 <= delays[1].seconds <= 20
    assert clock() == pytest.approx(START + delays[0].seconds + delays[1].seconds)


# -- EventBridge -----------------------------------------------------------------------------------------------


def test_put_events_delivers_a_matching_event_to_the_rule_target(stack: LocalStack) -> None:
    # given the rule source=fixture, detail-type=ping targeting WorkFunction
    # when such an event is put
    response = stack.put_events([{"Source": "fixture", "DetailType": "ping", "Detail": json.dumps({"n": 1})}])

    # then the function received the full event envelope, stamped with the virtual time
    assert response["FailedEntryCount"] == 0
    [delivery] = stack.deliveries
    assert delivery.rule == "talonic-watchdog-local-WorkFunctionPing"
    assert delivery.error is None
    event = delivery.result["event"]
    assert event == {
        "version": "0",
        "id": response["Entries"][0]["EventId"],
        "detail-type": "ping",
        "source": "fixture",
        "account": "123456789012",
        "time": "2026-12-04T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"n": 1},
    }


def test_put_events_delivers_nothing_when_no_pattern_matches(stack: LocalStack) -> None:
    # given events that no rule's pattern matches (another source; another detail-type)
    stack.put_events(
        [
            {"Source": "elsewhere", "DetailType": "ping", "Detail": "{}"},
            {"Source": "fixture", "DetailType": "pong", "Detail": "{}"},
        ]
    )

    # then no target was invoked
    assert stack.deliveries == []


def test_a_rule_input_path_selects_what_the_target_receives(stack: LocalStack) -> None:
    # given the rule with InputPath $.detail
    stack.put_events([{"Source": "fixture", "DetailType": "detail-only", "Detail": json.dumps({"n": 2})}])

    # then the target received only the detail
    [delivery] = stack.deliveries
    assert delivery.input == {"n": 2}
    assert delivery.result["event"] == {"n": 2}


def test_events_a_handler_puts_are_delivered_after_it_returns(stack: LocalStack) -> None:
    # given a handler that puts a ping event itself
    # when it is invoked
    assert stack.invoke("WorkFunction", {"action": "put_event", "detail": {"n": 3}}) == {"put": True}

    # then the event reached the rule's target once the handler had returned
    [delivery] = stack.deliveries
    assert delivery.result["event"]["detail"] == {"n": 3}


def test_the_template_rules_and_schedules_are_exposed(stack: LocalStack) -> None:
    # given the fixture stack, then its rules and schedules are listed with their patterns and targets
    rules = stack.rules
    ping = rules["talonic-watchdog-local-WorkFunctionPing"]
    assert ping.pattern == {"source": ["fixture"], "detail-type": ["ping"]}
    assert (ping.target_logical_id, ping.input_path) == ("WorkFunction", None)
    assert rules["talonic-watchdog-local-WorkFunctionDetailOnly"].input_path == "$.detail"
    nightly = stack.schedules["talonic-watchdog-local-WorkFunctionNightly"]
    assert (nightly.kind, nightly.expression, nightly.target_logical_id) == (
        "ScheduleV2",
        "cron(0 3 * * ? *)",
        "WorkFunction",
    )
    assert json.loads(nightly.input or "") == {"action": "echo", "scheduled": True}


# -- SNS -----------------------------------------------------------------------------------------------------


def test_published_messages_are_captured_as_published(stack: LocalStack) -> None:
    # given a handler that publishes a JSON-structured message with an attribute
    stack.invoke("WorkFunction", {"action": "publish"})

    # then the message is captured: default body, every protocol's body, subject and attributes
    [message] = stack.published_messages("Topic")
    assert message["TopicArn"] == stack.outputs["TopicArn"]
    assert message["Subject"] == "fixture subject"
    assert message["MessageStructure"] == "json"
    assert message["Message"] == "default body"
    assert message["Structured"] == {"default": "default body", "email": "email body", "https": '{"version": "1.0"}'}
    assert message["MessageAttributes"] == {"kind": {"Type": "String", "Value": "fixture"}}


def test_a_json_structured_message_without_a_default_body_is_refused(stack: LocalStack) -> None:
    # given a JSON-structured message with no "default" body, when it is published
    with pytest.raises(ClientError, match="No default entry"):
        stack.client("sns").publish(
            TopicArn=stack.outputs["TopicArn"], Message=json.dumps({"email": "x"}), MessageStructure="json"
        )

    # then nothing was captured
    assert stack.published_messages() == []


# -- function URLs -------------------------------------------------------------------------------------------


def test_a_function_url_request_reaches_the_handler_as_a_payload_2_event(stack: LocalStack) -> None:
    # given a JSON POST with a custom header and a query string
    # when it is sent to the function's URL
    response = stack.invoke_function_url(
        "WorkFunction",
        headers={"Content-Type": "application/json", "X-API-Key": "secret"},
        body='{"hello": "world"}',
        query="a=1&a=2",
    )

    # then the handler got a payload format 2.0 event, and its dict result became a 200 JSON response
    assert response["statusCode"] == 200
    assert response["headers"] == {"content-type": "application/json"}
    event = json.loads(response["body"])["event"]
    assert (event["version"], event["rawPath"], event["rawQueryString"]) == ("2.0", "/", "a=1&a=2")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainName"] in stack.outputs["WorkUrl"]
    assert event["headers"]["x-api-key"] == "secret"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"hello": "world"}', False)


def test_a_binary_function_url_body_is_base64_encoded(stack: LocalStack) -> None:
    # given a body that is not text
    response = stack.invoke_function_url(
        "WorkFunction", headers={"Content-Type": "application/octet-stream"}, body=b"\x00\x01"
    )

    # then the handler got it base64-encoded
    event = json.loads(response["body"])["event"]
    assert (event["body"], event["isBase64Encoded"]) == ("AAE=", True)


def test_a_function_url_answers_502_when_the_handler_raises(stack: LocalStack) -> None:
    # given a request the handler fails on, then the URL answers 502 as AWS does
    response = stack.invoke_function_url("WorkFunction", method="GET", path="/fail")
    assert response["statusCode"] == 502


# -- the real template -----------------------------------------------------------------------------------------


def test_the_real_template_builds_with_everything_wired() -> None:
    # given the project's template.yaml and a Talonic URL
    with LocalStack(REAL_TEMPLATE, parameters={"TalonicApiUrl": "http://127.0.0.1:9"}) as stack:
        resources, outputs = stack.resources, stack.outputs

        # then every output resolves
        assert set(outputs) >= {
            "WatchStateMachineArn",
            "AlertTopicArn",
            "ReadKeySecretArn",
            "WriteKeySecretArn",
            "RunsTableName",
            "IngressUrl",
        }
        assert outputs["ReadKeySecretArn"] == resources["ReadKeySecret"]
        assert outputs["IngressUrl"].endswith(".lambda-url.us-east-1.on.aws/")
        assert stack.skipped_resources == []

        # and the state machine definition has every substitution applied
        sfn = stack.client("stepfunctions")
        definition = sfn.describe_state_machine(stateMachineArn=outputs["WatchStateMachineArn"])["definition"]
        assert "${" not in definition
        for function in ("PrepareWatchFunction", "CreateRunFunction", "PollRunFunction", "AlertFunction"):
            assert stack.attributes[function]["Arn"] in definition

        # and each function's environment is resolved, with each key's secret where it is needed
        lambda_client = stack.client("lambda")

        def environment(logical_id: str) -> dict[str, str]:
            configuration = lambda_client.get_function_configuration(FunctionName=resources[logical_id])
            return dict(configuration["Environment"]["Variables"])

        poll = environment("PollRunFunction")
        assert poll["TALONIC_READ_KEY_SECRET"] == outputs["ReadKeySecretArn"]
        assert poll["TALONIC_API_URL"] == "http://127.0.0.1:9"
        assert poll["RUNS_TABLE"] == outputs["RunsTableName"]
        assert poll["POWERTOOLS_SERVICE_NAME"] == "talonic-watchdog"
        assert environment("CreateRunFunction")["TALONIC_WRITE_KEY_SECRET"] == outputs["WriteKeySecretArn"]
        assert environment("AlertFunction")["ALERT_TOPIC_ARN"] == outputs["AlertTopicArn"]
        assert environment("StartWatchFunction")["WATCH_STATE_MACHINE_ARN"] == outputs["WatchStateMachineArn"]
        for logical_id in stack.functions:
            assert all("${" not in value and "Fn::" not in value for value in environment(logical_id).values())

        # and the start-watch rule exists on the default bus with the template's pattern
        [rule] = stack.rules.values()
        described = stack.client("events").describe_rule(Name=rule.name, EventBusName="default")
        pattern = {"source": ["talonic"], "detail-type": ["run.dataspace.completed"]}
        assert json.loads(described["EventPattern"]) == pattern
        assert rule.target_logical_id == "StartWatchFunction"

        # and the generated ingress secret is a JSON token, with no email subscription by default
        secrets = stack.client("secretsmanager")
        ingress = json.loads(secrets.get_secret_value(SecretId=outputs["IngressSecretArn"])["SecretString"])
        assert len(ingress["token"]) == 48
        assert "AlertEmailSubscription" not in resources

        # and the policies are resolved for least-privilege checks
        assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": outputs["ReadKeySecretArn"]}} in (
            stack.function_policies["PollRunFunction"]
        )
