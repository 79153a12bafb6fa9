"""Creating a template's resources in moto through the AWS APIs, in dependency order.

moto's CloudFormation ignores some resource types (Secrets Manager secrets among them) and knows nothing
of the SAM transform, so ``StackBuilder`` plays both parts: it applies what SAM would generate that
matters for wiring (a role per function and state machine, a function URL, a rule or schedule per
function event, the state machine definition with its DefinitionSubstitutions) and creates each resource
with boto3 calls, which moto validates as AWS would. Names are deterministic: ``<stack>-<LogicalId>``.

What ``Ref`` and ``Fn::GetAtt`` return follows CloudFormation and SAM: a function's Ref is its name, a
state machine's, secret's or topic's its ARN, a table's its name; ``<Function>Url.FunctionUrl`` is the
function URL; ``<Function>Role`` and ``<Function><EventName>`` are the generated role and rule.
"""

from __future__ import annotations

import graphlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from local.stack.bridge import BRIDGED_SERVICES, BridgedRule
from local.stack.lambda_runtime import FunctionSpec, locate_handler
from local.stack.template import (
    PseudoParameters,
    Resolver,
    TemplateError,
    UnresolvedReferenceError,
    apply_globals,
    referenced_names,
)

LOG = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "The local stack runs this function's handler in-process.\n")
    return buffer.getvalue()


_DUMMY_ZIP = _dummy_zip()


def _text(value: Any) -> str:
    """A resolved scalar as CloudFormation writes it into a string-typed API field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _trust_policy(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@dataclass(frozen=True)
class Schedule:
    """A schedule the template declares on a function or state machine (moto's schedulers never fire)."""

    name: str
    logical_id: str
    kind: Literal["Schedule", "ScheduleV2"]
    expression: str
    target_arn: str
    target_logical_id: str
    input: str | None
    enabled: bool


@dataclass
class BuiltResources:
    """Everything the builder created, keyed by logical id."""

    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    rules: dict[str, BridgedRule] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    function_policies: dict[str, list[Any]] = field(default_factory=dict)
    state_machine_policies: dict[str, list[Any]] = field(default_factory=dict)
    layer_paths: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class StackBuilder:
    """Creates a template's resources in moto; is the ``ResourceLookup`` its resolver asks for Ref/GetAtt."""

    def __init__(
        self,
        template: Mapping[str, Any],
        template_dir: Path,
        parameters: Mapping[str, Any],
        pseudo: PseudoParameters,
    ) -> None:
        self._template_dir = template_dir
        self._pseudo = pseudo
        self._resources = apply_globals(template["Resources"], template.get("Globals") or {})
        self.resolver = Resolver(
            parameters=parameters,
            pseudo=pseudo,
            conditions=template.get("Conditions") or {},
            mappings=template.get("Mappings") or {},
            lookup=self,
        )
        session = boto3.session.Session(region_name=pseudo.region)
        self._clients: dict[str, Any] = {
            service: session.client(service)
            for service in (
                "iam",
                "lambda",
                "stepfunctions",
                "secretsmanager",
                "dynamodb",
                "sns",
                "sqs",
                "logs",
                "cloudwatch",
            )
        }
        self._clients["events"] = session.client("events")
        self._clients["scheduler"] = session.client("scheduler")
        self._owners = self._generated_ids()
        self.built = BuiltResources()

    # -- ResourceLookup ----------------------------------------------------------------------------------

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.built.refs:
            return self.built.refs[logical_id]
        raise self._missing(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        attributes = self.built.attributes.get(logical_id)
        if attributes is None:
            raise self._missing(logical_id)
        if attribute not in attributes:
            raise UnresolvedReferenceError(f"{logical_id} has no attribute {attribute} (known: {sorted(attributes)})")
        return attributes[attribute]

    def _missing(self, logical_id: str) -> UnresolvedReferenceError:
        owner = self._owners.get(logical_id, logical_id)
        if owner in self._resources:
            return UnresolvedReferenceError(
                f"{logical_id} was not created (its condition is false, or its type is skipped)"
            )
        return UnresolvedReferenceError(f"{logical_id} is not a resource or parameter of the template")

    # -- building ----------------------------------------------------------------------------------------

    def build(self) -> BuiltResources:
        """Create every resource whose condition holds, each after the resources it refers to."""
        creators = {
            "AWS::Serverless::LayerVersion": self._layer,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SecretsManager::ResourcePolicy": self._secret_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SQS::Queue": self._queue,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._events_rule,
        }
        for logical_id in self._creation_order():
            resource = self._resources[logical_id]
            kind = str(resource.get("Type", ""))
            condition = resource.get("Condition")
            if condition is not None and not self.resolver.condition(str(condition)):
                LOG.debug("%s not created: condition %s is false", logical_id, condition)
                continue
            creator = creators.get(kind)
            if creator is None:
                LOG.debug("%s skipped: the local stack does not create %s", logical_id, kind)
                self.built.skipped.append(logical_id)
                continue
            try:
                creator(logical_id, resource.get("Properties") or {})
            except (UnresolvedReferenceError, ClientError) as error:
                reason = str(error).split(" in definition '", 1)[0]  # moto echoes the whole definition after it
                raise TemplateError(f"{logical_id} ({kind}): {reason}") from error
            self.built.types[logical_id] = kind
        return self.built

    def _generated_ids(self) -> dict[str, str]:
        """SAM-generated logical ids (``<Fn>Role``, ``<Fn>Url``, ``<Fn><Event>``) mapped to their resource."""
        owners: dict[str, str] = {}
        for logical_id, resource in self._resources.items():
            if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                properties = resource.get("Properties") or {}
                generated = ["Role", "Url", *(properties.get("Events") or {})]
                owners.update({f"{logical_id}{suffix}": logical_id for suffix in generated})
                owners.update({f"{logical_id}{event}Role": logical_id for event in properties.get("Events") or {}})
                owners.update({f"{logical_id}{event}Queue": logical_id for event in properties.get("Events") or {}})
        return owners

    def _creation_order(self) -> list[str]:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for logical_id, resource in self._resources.items():
            names = referenced_names(resource) | set(_depends_on(resource))
            dependencies = {self._owners.get(name, name) for name in names} & self._resources.keys()
            sorter.add(logical_id, *(dependencies - {logical_id}))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as error:
            raise TemplateError(f"circular references between resources: {error.args[1]}") from error

    def _name(self, logical_id: str, max_length: int = 64, suffix: str = "") -> str:
        return f"{self._pseudo.stack_name}-{logical_id}"[: max_length - len(suffix)] + suffix

    def _register(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        self.built.refs[logical_id] = ref
        self.built.attributes[logical_id] = attributes

    def _logical_id_of(self, arn: str) -> str:
        for logical_id, attributes in self.built.attributes.items():
            if attributes.get("Arn") == arn:
                return logical_id
        return ""

    def _role(self, logical_id: str, service: str) -> str:
        name = self._name(logical_id)
        role = self._clients["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=_trust_policy(service))["Role"]
        self._register(logical_id, name, Arn=role["Arn"], RoleId=role["RoleId"])
        return str(role["Arn"])

    # -- resource types ----------------------------------------------------------------------------------

    def _layer(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """Published with placeholder content; its folder goes on sys.path, where handlers import it from."""
        props = self.resolver.resolve(properties)
        content_uri = props.get("ContentUri")
        if not isinstance(content_uri, str):
            raise TemplateError(f"{logical_id}: only a local ContentUri folder is supported")
        self.built.layer_paths.append((self._template_dir / content_uri).resolve())
        options = {key: props[key] for key in ("CompatibleRuntimes", "CompatibleArchitectures") if key in props}
        layer = self._clients["lambda"].publish_layer_version(
            LayerName=props.get("LayerName") or self._name(logical_id, 140), Content={"ZipFile": _DUMMY_ZIP}, **options
        )
        self._register(logical_id, layer["LayerVersionArn"])

    def _secret(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        request: dict[str, Any] = {"Name": props.get("Name") or self._name(logical_id, 512)}
        if "Description" in props:
            request["Description"] = props["Description"]
        generate = props.get("GenerateSecretString")
        if "SecretString" in props:
            request["SecretString"] = props["SecretString"]
        elif generate is not None:
            request["SecretString"] = self._generated_secret(generate)
        arn = self._clients["secretsmanager"].create_secret(**request)["ARN"]
        self._register(logical_id, arn, Id=arn)

    def _secret_policy(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """PutResourcePolicy: the policy's principals (a function's generated role...) must resolve."""
        props = self.resolver.resolve(properties)
        request: dict[str, Any] = {"SecretId": props["SecretId"], "ResourcePolicy": json.dumps(props["ResourcePolicy"])}
        if "BlockPublicPolicy" in props:
            request["BlockPublicPolicy"] = _text(props["BlockPublicPolicy"]) == "true"
        arn = self._clients["secretsmanager"].put_resource_policy(**request)["ARN"]
        self._register(logical_id, arn, Id=arn)

    def _generated_secret(self, generate: Mapping[str, Any]) -> str:
        options = (
            "PasswordLength",
            "ExcludeCharacters",
            "ExcludeLowercase",
            "ExcludeNumbers",
            "ExcludePunctuation",
            "ExcludeUppercase",
            "IncludeSpace",
            "RequireEachIncludedType",
        )
        request = {key: generate[key] for key in options if key in generate}
        password = str(self._clients["secretsmanager"].get_random_password(**request)["RandomPassword"])
        if "SecretStringTemplate" not in generate:
            return password
        document = json.loads(generate["SecretStringTemplate"])
        document[generate["GenerateStringKey"]] = password
        return json.dumps(document)

    def _table(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        name = props.get("TableName") or self._name(logical_id, 255)
        passed_as_is = (
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "ProvisionedThroughput",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "TableClass",
            "DeletionProtectionEnabled",
        )
        request: dict[str, Any] = {"TableName": name, **{key: props[key] for key in passed_as_is if key in props}}
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if "SSESpecification" in props:
            sse = dict(props["SSESpecification"])
            request["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", False), **sse}
        dynamodb = self._clients["dynamodb"]
        table = dynamodb.create_table(**request)["TableDescription"]
        if "TimeToLiveSpecification" in props:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in props:
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"]
            )
        self._register(logical_id, name, Arn=table["TableArn"], StreamArn=table.get("LatestStreamArn"))

    def _topic(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        fifo = _text(props.get("FifoTopic", False)) == "true"
        name = props.get("TopicName") or self._name(logical_id, 256, ".fifo" if fifo else "")
        attribute_names = ("DisplayName", "FifoTopic", "ContentBasedDeduplication", "KmsMasterKeyId")
        attributes = {key: _text(props[key]) for key in attribute_names if key in props}
        sns = self._clients["sns"]
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in props.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        self._register(logical_id, arn, TopicArn=arn, TopicName=name)

    def _subscription(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        attribute_names = ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy")
        subscription = self._clients["sns"].subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes={key: _text(props[key]) for key in attribute_names if key in props},
            ReturnSubscriptionArn=True,
        )
        self._register(logical_id, subscription["SubscriptionArn"])

    def _queue(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        fifo = _text(props.get("FifoQueue", False)) == "true"
        name = props.get("QueueName") or self._name(logical_id, 80, ".fifo" if fifo else "")
        attributes = {key: _text(value) for key, value in props.items() if key not in ("QueueName", "Tags")}
        sqs = self._clients["sqs"]
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._register(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def _log_group(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        name = props.get("LogGroupName") or self._name(logical_id, 512)
        logs = self._clients["logs"]
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        region, account = self._pseudo.region, self._pseudo.account_id
        self._register(logical_id, name, Arn=f"arn:{self._pseudo.partition}:logs:{region}:{account}:log-group:{name}:*")

    def _alarm(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """Created through PutMetricAlarm, so a malformed alarm (a bad metric query, a missing field) fails here."""
        props = dict(self.resolver.resolve(properties))
        name = props.pop("AlarmName", None) or self._name(logical_id, 255)
        for key in ("Threshold", "Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in props:
                props[key] = float(props[key]) if key == "Threshold" else int(props[key])
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        self._clients["cloudwatch"].put_metric_alarm(AlarmName=name, **props)
        region, account = self._pseudo.region, self._pseudo.account_id
        self._register(logical_id, name, Arn=f"arn:{self._pseudo.partition}:cloudwatch:{region}:{account}:alarm:{name}")

    def _dashboard(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """Created through PutDashboard, whose body must be valid JSON once the template's !Sub is applied."""
        props = self.resolver.resolve(properties)
        name = props.get("DashboardName") or self._name(logical_id, 255)
        try:
            json.loads(props["DashboardBody"])
        except ValueError as error:
            raise TemplateError(f"{logical_id}: DashboardBody is not JSON: {error}") from error
        self._clients["cloudwatch"].put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        self._register(logical_id, name)

    def _function(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        code_uri, handler = props.get("CodeUri"), props.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise TemplateError(f"{logical_id}: a local CodeUri folder and a Handler are required")
        name = props.get("FunctionName") or self._name(logical_id)
        role_arn = props.get("Role") or self._role(f"{logical_id}Role", "lambda.amazonaws.com")
        variables = {
            key: _text(value) for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items()
        }
        timeout, memory_size = int(props.get("Timeout", 3)), int(props.get("MemorySize", 128))
        function = self._clients["lambda"].create_function(
            FunctionName=name,
            Runtime=props["Runtime"],
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _DUMMY_ZIP},
            Description=props.get("Description", ""),
            Timeout=timeout,
            MemorySize=memory_size,
            Environment={"Variables": variables},
            Architectures=props.get("Architectures", ["x86_64"]),
            TracingConfig={"Mode": "Active" if props.get("Tracing") == "Active" else "PassThrough"},
            Layers=props.get("Layers", []),
        )
        arn = function["FunctionArn"]
        self._register(logical_id, name, Arn=arn)
        url = self._function_url(logical_id, name, arn, props.get("FunctionUrlConfig"))
        try:
            import_root, module, attribute = locate_handler((self._template_dir / code_uri).resolve(), handler)
        except ValueError as error:
            raise TemplateError(f"{logical_id}: {error}") from error
        self.built.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=arn,
            runtime=props["Runtime"],
            handler=handler,
            code_uri=code_uri,
            import_root=import_root,
            module=module,
            attribute=attribute,
            timeout=timeout,
            memory_size=memory_size,
            environment=variables,
            url=url,
        )
        self.built.function_policies[logical_id] = _as_list(props.get("Policies"))
        self._event_sources(logical_id, arn, props.get("Events") or {}, target_kind="Lambda")

    def _function_url(self, logical_id: str, name: str, arn: str, config: Mapping[str, Any] | None) -> str | None:
        if config is None:
            return None
        request = {key: config[key] for key in ("AuthType", "Cors", "InvokeMode") if key in config}
        created = self._clients["lambda"].create_function_url_config(FunctionName=name, **request)
        url = str(created["FunctionUrl"]).rstrip("/") + "/"  # AWS's URLs end with a slash; moto's do not
        self._register(f"{logical_id}Url", arn, FunctionUrl=url, FunctionArn=arn)
        return url

    def _state_machine(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        name = props.get("Name") or self._name(logical_id, 80)
        role_arn = props.get("Role") or self._role(f"{logical_id}Role", "states.amazonaws.com")
        request: dict[str, Any] = {
            "name": name,
            "definition": self._definition(logical_id, props),
            "roleArn": role_arn,
            "type": props.get("Type", "STANDARD"),
        }
        if "Logging" in props:
            request["loggingConfiguration"] = _logging_configuration(props["Logging"])
        if "Tracing" in props:
            request["tracingConfiguration"] = {"enabled": bool(props["Tracing"].get("Enabled", False))}
        arn = self._clients["stepfunctions"].create_state_machine(**request)["stateMachineArn"]
        self._register(logical_id, arn, Arn=arn, Name=name)
        self.built.state_machines[logical_id] = arn
        self.built.state_machine_policies[logical_id] = _as_list(props.get("Policies"))
        self._event_sources(logical_id, arn, props.get("Events") or {}, target_kind="StepFunctions")

    def _definition(self, logical_id: str, props: Mapping[str, Any]) -> str:
        """The definition text with DefinitionSubstitutions applied, as SAM applies them; a placeholder
        left without a substitution is an error (a wiring mistake), not a silent ``${...}`` in the ASL."""
        if "Definition" in props:
            text = json.dumps(props["Definition"])
        elif isinstance(props.get("DefinitionUri"), str):
            text = (self._template_dir / props["DefinitionUri"]).read_text(encoding="utf-8")
        else:
            raise TemplateError(f"{logical_id}: an inline Definition or a local DefinitionUri file is required")
        substitutions = {key: _text(value) for key, value in (props.get("DefinitionSubstitutions") or {}).items()}
        unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in substitutions})
        if unknown:
            placeholders = ", ".join("${" + name + "}" for name in unknown)
            raise TemplateError(f"{logical_id}: the definition uses {placeholders} with no DefinitionSubstitution")
        text = _PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text)
        try:
            json.loads(text)
        except ValueError as error:
            raise TemplateError(
                f"{logical_id}: the definition is not valid JSON after substitution: {error}"
            ) from error
        return text

    def _event_sources(
        self, owner: str, target_arn: str, events: Mapping[str, Any], target_kind: Literal["Lambda", "StepFunctions"]
    ) -> None:
        for event_name, event in events.items():
            logical_id, kind, props = f"{owner}{event_name}", event.get("Type"), event.get("Properties") or {}
            target = {"Id": f"{logical_id}{target_kind}Target", "Arn": target_arn}
            target.update({key: props[key] for key in ("Input", "InputPath", "InputTransformer") if key in props})
            target.update({key: props[key] for key in ("RetryPolicy", "DeadLetterConfig") if key in props})
            if isinstance(props.get("Target"), dict) and "Id" in props["Target"]:
                target["Id"] = props["Target"]["Id"]
            enabled = _enabled(props)
            if kind == "EventBridgeRule":
                self._put_rule(
                    logical_id,
                    name=props.get("RuleName") or self._name(logical_id),
                    bus=props.get("EventBusName", "default"),
                    enabled=enabled,
                    targets=[target],
                    EventPattern=props["Pattern"],
                )
            elif kind == "Schedule":
                name = props.get("Name") or self._name(logical_id)
                self._put_rule(
                    logical_id,
                    name=name,
                    bus="default",
                    enabled=enabled,
                    targets=[target],
                    ScheduleExpression=props["Schedule"],
                )
                self._record_schedule(name, logical_id, "Schedule", props["Schedule"], target, enabled)
            elif kind == "ScheduleV2":
                self._schedule_v2(logical_id, props, target, enabled)
            elif kind == "SNS" and target_kind == "Lambda":
                self._clients["sns"].subscribe(TopicArn=props["Topic"], Protocol="lambda", Endpoint=target_arn)
            else:
                LOG.debug("%s skipped: the local stack does not create %s event sources", logical_id, kind)
                self.built.skipped.append(logical_id)

    def _put_rule(
        self, logical_id: str, *, name: str, bus: str, enabled: bool, targets: list[dict[str, Any]], **definition: Any
    ) -> None:
        events = self._clients["events"]
        request: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": "ENABLED" if enabled else "DISABLED"}
        if "EventPattern" in definition:
            request["EventPattern"] = json.dumps(definition["EventPattern"])
        if "ScheduleExpression" in definition:
            request["ScheduleExpression"] = definition["ScheduleExpression"]
        rule_arn = events.put_rule(**request)["RuleArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self._register(logical_id, name, Arn=rule_arn)
        if "EventPattern" not in definition:
            return
        for target in targets:
            if target["Arn"].split(":")[2] in BRIDGED_SERVICES:
                self.built.rules[name] = BridgedRule(
                    name=name,
                    logical_id=logical_id,
                    event_bus_name=bus,
                    pattern=definition["EventPattern"],
                    target_arn=target["Arn"],
                    target_logical_id=self._logical_id_of(target["Arn"]),
                    input=target.get("Input"),
                    input_path=target.get("InputPath"),
                    input_transformer=target.get("InputTransformer"),
                    enabled=enabled,
                )

    def _schedule_v2(self, logical_id: str, props: Mapping[str, Any], target: Mapping[str, Any], enabled: bool) -> None:
        name = props.get("Name") or self._name(logical_id)
        role_arn = props.get("RoleArn") or self._role(f"{logical_id}Role", "scheduler.amazonaws.com")
        schedule_target: dict[str, Any] = {"Arn": target["Arn"], "RoleArn": role_arn}
        schedule_target.update(
            {key: props[key] for key in ("Input", "RetryPolicy", "DeadLetterConfig") if key in props}
        )
        dead_letter = props.get("DeadLetterConfig") or {}
        if "Arn" not in dead_letter and dead_letter.get("Type") == "SQS":
            # SAM creates the queue (<Function><Event>Queue unless QueueLogicalId names it) and passes its ARN.
            queue_id = dead_letter.get("QueueLogicalId") or f"{logical_id}Queue"
            self._queue(queue_id, {})
            schedule_target["DeadLetterConfig"] = {"Arn": self.built.attributes[queue_id]["Arn"]}
        request: dict[str, Any] = {
            "Name": name,
            "ScheduleExpression": props["ScheduleExpression"],
            "FlexibleTimeWindow": props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
            "Target": schedule_target,
            "State": "ENABLED" if enabled else "DISABLED",
        }
        if "ScheduleExpressionTimezone" in props:
            request["ScheduleExpressionTimezone"] = props["ScheduleExpressionTimezone"]
        arn = self._clients["scheduler"].create_schedule(**request)["ScheduleArn"]
        self._register(logical_id, name, Arn=arn)
        self._record_schedule(name, logical_id, "ScheduleV2", props["ScheduleExpression"], schedule_target, enabled)

    def _record_schedule(
        self,
        name: str,
        logical_id: str,
        kind: Literal["Schedule", "ScheduleV2"],
        expression: str,
        target: Mapping[str, Any],
        enabled: bool,
    ) -> None:
        self.built.schedules[name] = Schedule(
            name=name,
            logical_id=logical_id,
            kind=kind,
            expression=expression,
            target_arn=target["Arn"],
            target_logical_id=self._logical_id_of(target["Arn"]),
            input=target.get("Input"),
            enabled=enabled,
        )

    def _events_rule(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        props = self.resolver.resolve(properties)
        definition = {key: props[key] for key in ("EventPattern", "ScheduleExpression") if key in props}
        self._put_rule(
            logical_id,
            name=props.get("Name") or self._name(logical_id),
            bus=props.get("EventBusName", "default"),
            enabled=props.get("State", "ENABLED") == "ENABLED",
            targets=list(props.get("Targets") or []),
            **definition,
        )


def _depends_on(resource: Mapping[str, Any]) -> list[str]:
    depends_on = resource.get("DependsOn") or []
    return [depends_on] if isinstance(depends_on, str) else list(depends_on)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _enabled(props: Mapping[str, Any]) -> bool:
    if "State" in props:
        return bool(props["State"] == "ENABLED")
    return _text(props.get("Enabled", True)) == "true"


def _logging_configuration(logging_config: Mapping[str, Any]) -> dict[str, Any]:
    destinations = [
        {"cloudWatchLogsLogGroup": {"logGroupArn": destination["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
        for destination in logging_config.get("Destinations") or []
    ]
    return {
        "level": logging_config.get("Level", "OFF"),
        "includeExecutionData": bool(logging_config.get("IncludeExecutionData", False)),
        "destinations": destinations,
    }
