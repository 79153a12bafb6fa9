"""``LocalStack``: the SAM application of a template, running in-process on moto, with no AWS and no Docker.

Entering the stack starts moto's ``mock_aws`` (Step Functions really executes ASL; Lambda without Docker),
installs the workarounds for what moto does not do (each module names the limitation it works around),
creates every resource of the template through the AWS APIs, and resolves the template's Outputs. All of
it comes from ``template.yaml`` itself, so a wiring mistake in the template fails a test here:

- ``waits``: Wait states and Retry intervals advance the virtual clock instead of sleeping;
- ``lambda_runtime``: Lambda invokes run the project's handlers in-process;
- ``bridge``: EventBridge rules deliver to Lambda and Step Functions targets;
- ``notifications``: SNS publishes are recorded as published;
- ``executions``: an execution started without a name gets a UUID, as in AWS.

Only one stack can be entered at a time: the patches are process-wide, like moto's own.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import boto3
from moto import mock_aws
from moto.core.config import DefaultConfig

from local.stack import function_url
from local.stack.bridge import BridgedRule, Delivery, EventBridge
from local.stack.clock import VirtualClock
from local.stack.executions import executions_named_like_aws
from local.stack.lambda_runtime import FunctionSpec, InProcessLambda, InvokeOutcome, patched_moto_invoke
from local.stack.notifications import PublishedMessage, SnsCapture, sns_to_lambda
from local.stack.resources import BuiltResources, Schedule, StackBuilder
from local.stack.template import (
    DEFAULT_STACK_NAME,
    PseudoParameters,
    Resolver,
    TemplateError,
    load_template,
    resolve_parameters,
)
from local.stack.waits import CompressedWaits, WaitRecord

LOG = logging.getLogger(__name__)

#: moto executes state machines (instead of only recording them) and runs Lambda without Docker.
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

_POLL_INTERVAL_SECONDS = 0.01


@contextmanager
def _on_sys_path(paths: Sequence[Path]) -> Iterator[None]:
    """Put handler import roots and layer folders on sys.path (as Lambda does) for as long as the stack runs."""
    added = [str(path) for path in dict.fromkeys(paths) if str(path) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for path in added:
            if path in sys.path:
                sys.path.remove(path)


@contextmanager
def _shared_clock(clock: VirtualClock) -> Iterator[None]:
    """Make the shared package's notion of "now" the virtual clock (imported late: the layer is on sys.path now),
    and its sleeps (cleanup's pacing) moves of that clock: a paced run takes virtual time, not real time."""
    from talonic_watchdog import clock as watchdog_clock

    def sleep(seconds: float) -> None:
        clock.advance(max(seconds, 0.0))

    watchdog_clock.use(clock)
    watchdog_clock.use_sleep(sleep)
    try:
        yield
    finally:
        watchdog_clock.reset()


class LocalStack:
    """A template's resources in moto, its functions run in-process, its waits compressed.

    Usage::

        with LocalStack("template.yaml", parameters={"TalonicApiUrl": emulator.url}) as stack:
            stack.put_secret("ReadKeySecret", "tlnc_...")
            arn = stack.start_execution({"validation_run_id": run_id})
            result = stack.wait_for_execution(arn)

    Everything but the constructor needs the stack to be entered.
    """

    _active: ClassVar[LocalStack | None] = None

    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        parameters: Mapping[str, Any] | None = None,
        clock: VirtualClock | None = None,
        wait_scale: float = 0.001,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        """Read and check the template now (parameters are validated as CloudFormation validates them);
        create nothing until the stack is entered.

        ``parameters`` override the template's defaults; ``clock`` is the virtual clock handlers, waits and
        the shared package read (default: one starting at the current time); ``wait_scale`` is how many real
        seconds a Wait or Retry interval sleeps per virtual second (each capped at 0.05 s).
        """
        self.template_path = Path(template_path).resolve()
        self._template = load_template(self.template_path)
        self.parameters: dict[str, Any] = resolve_parameters(self._template.get("Parameters") or {}, parameters or {})
        self.clock = clock if clock is not None else VirtualClock()
        self._pseudo = PseudoParameters(stack_name=stack_name)
        self._waits = CompressedWaits(self.clock, wait_scale)
        self._runtime = InProcessLambda(self.clock, self._pseudo.region)
        self._sns = SnsCapture()
        self._bridge = EventBridge(self.clock, self._deliver_to_target)
        self._built = BuiltResources()
        self._functions_by_name: dict[str, FunctionSpec] = {}
        self._clients: dict[str, Any] = {}
        self._exit_stack: ExitStack | None = None
        self.outputs: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if LocalStack._active is not None:
            raise RuntimeError("another LocalStack is entered: exit it first (moto's patches are process-wide)")
        with ExitStack() as exit_stack:
            exit_stack.enter_context(mock_aws(config=MOTO_CONFIG))
            exit_stack.enter_context(self._waits.installed())
            exit_stack.enter_context(patched_moto_invoke(self._function_named, self._invoke_from_moto))
            exit_stack.enter_context(self._sns.hooked_into_moto())
            exit_stack.enter_context(self._bridge.hooked_into_moto())
            exit_stack.enter_context(
                sns_to_lambda(self._bridge.enqueue, self._function_arn_named, self._after_invocation)
            )
            exit_stack.enter_context(executions_named_like_aws())
            builder = StackBuilder(self._template, self.template_path.parent, self.parameters, self._pseudo)
            self._built = builder.build()
            self._functions_by_name = {spec.name: spec for spec in self._built.functions.values()}
            import_roots = [spec.import_root for spec in self._built.functions.values()]
            exit_stack.enter_context(_on_sys_path([*self._built.layer_paths, *import_roots]))
            exit_stack.enter_context(_shared_clock(self.clock))
            self.outputs = self._resolve_outputs(builder.resolver)
            self._exit_stack = exit_stack.pop_all()
        LocalStack._active = self
        LOG.info("local stack %s up: %d resources", self._pseudo.stack_name, len(self._built.refs))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if self._exit_stack is not None:
                self._exit_stack.close()
        finally:
            self._exit_stack = None
            self._clients.clear()
            LocalStack._active = None

    def _resolve_outputs(self, resolver: Resolver) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for name, output in (self._template.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition is not None and not resolver.condition(str(condition)):
                continue
            try:
                outputs[name] = resolver.resolve(output["Value"])
            except TemplateError as error:
                LOG.debug("output %s not resolved: %s", name, error)
        return outputs

    # -- what was built ----------------------------------------------------------------------------------------

    @property
    def resources(self) -> dict[str, Any]:
        """Logical id -> what ``Ref`` gives (a function's or table's name; a topic's, secret's or state
        machine's ARN...), SAM-generated resources (``<Fn>Role``, ``<Fn>Url``, ``<Fn><Event>``) included."""
        return dict(self._built.refs)

    @property
    def attributes(self) -> dict[str, dict[str, Any]]:
        """Logical id -> the attributes ``Fn::GetAtt`` can read (``Arn``, ``Name``, ``FunctionUrl``...)."""
        return copy.deepcopy(self._built.attributes)

    @property
    def functions(self) -> dict[str, FunctionSpec]:
        """Logical id -> the function as resolved: name, ARN, handler module, environment, timeout, URL."""
        return dict(self._built.functions)

    @property
    def state_machines(self) -> dict[str, str]:
        """Logical id -> state machine ARN."""
        return dict(self._built.state_machines)

    @property
    def rules(self) -> dict[str, BridgedRule]:
        """Rule name -> the rule the template declares for a Lambda or Step Functions target."""
        return dict(self._built.rules)

    @property
    def schedules(self) -> dict[str, Schedule]:
        """Schedule name -> the schedule the template declares (moto never fires it: invoke the target)."""
        return dict(self._built.schedules)

    @property
    def function_policies(self) -> dict[str, list[Any]]:
        """Function logical id -> its ``Policies`` (SAM policy templates, inline statements), resolved."""
        return copy.deepcopy(self._built.function_policies)

    @property
    def state_machine_policies(self) -> dict[str, list[Any]]:
        """State machine logical id -> its ``Policies``, resolved."""
        return copy.deepcopy(self._built.state_machine_policies)

    @property
    def skipped_resources(self) -> list[str]:
        """Logical ids of resources (and function event sources) of types the local stack does not create."""
        return list(self._built.skipped)

    @property
    def waits(self) -> list[WaitRecord]:
        """Every Wait state entered: (execution ARN, seconds), in order."""
        return list(self._waits.waits)

    @property
    def retry_delays(self) -> list[WaitRecord]:
        """Every Retry interval slept: (execution ARN, seconds, jitter and MaxDelaySeconds applied), in order."""
        return list(self._waits.retry_delays)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every event the bridge delivered to a Lambda or Step Functions target, with its outcome."""
        return list(self._bridge.deliveries)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in the stack's region (moto answers it while the stack is entered)."""
        self._require_entered()
        if service not in self._clients:
            self._clients[service] = boto3.session.Session(region_name=self._pseudo.region).client(service)  # type: ignore[call-overload]
        return self._clients[service]

    # -- secrets -----------------------------------------------------------------------------------------------

    def put_secret(self, logical_id: str, value: str) -> None:
        """Set the value of the secret the template declares as ``logical_id``."""
        self._require_type(logical_id, "AWS::SecretsManager::Secret")
        self.client("secretsmanager").put_secret_value(SecretId=self._built.refs[logical_id], SecretString=value)

    # -- Step Functions ----------------------------------------------------------------------------------------

    def start_execution(self, input: Any, name: str | None = None, *, state_machine: str | None = None) -> str:
        """Start an execution of the state machine (``state_machine``: its logical id, needed only when the
        template has several) and return its ARN."""
        request = {"stateMachineArn": self._state_machine_arn(state_machine), "input": json.dumps(input)}
        if name is not None:
            request["name"] = name
        return str(self.client("stepfunctions").start_execution(**request)["executionArn"])

    def wait_for_execution(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        """``describe_execution`` once the execution has left RUNNING (``timeout`` real seconds is a safety net)."""
        deadline = time.monotonic() + timeout
        while True:
            description = dict(self.client("stepfunctions").describe_execution(executionArn=execution_arn))
            if description["status"] != "RUNNING":
                description.pop("ResponseMetadata", None)
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(_POLL_INTERVAL_SECONDS)

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of the execution, oldest first."""
        paginator = self.client("stepfunctions").get_paginator("get_execution_history")
        return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]

    def _state_machine_arn(self, logical_id: str | None) -> str:
        self._require_entered()
        machines = self._built.state_machines
        if logical_id is not None:
            self._require_type(logical_id, "AWS::Serverless::StateMachine")
            return machines[logical_id]
        if len(machines) != 1:
            raise ValueError(f"the template has {len(machines)} state machines: name one with state_machine=")
        return next(iter(machines.values()))

    # -- SNS ---------------------------------------------------------------------------------------------------

    def published_messages(self, topic: str | None = None) -> list[PublishedMessage]:
        """Messages published to the stack's topics (only to ``topic``, a logical id, if given), in order."""
        self._require_entered()
        if topic is not None:
            self._require_type(topic, "AWS::SNS::Topic")
        wanted = None if topic is None else self._built.refs[topic]
        return [copy.deepcopy(message) for message in self._sns.messages if wanted in (None, message["TopicArn"])]

    # -- Lambda ------------------------------------------------------------------------------------------------

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Run the function's handler in-process with ``event`` and return its result (JSON round-tripped, as
        through the Lambda API); an exception the handler raises propagates."""
        spec = self._function(logical_id)
        try:
            return json.loads(json.dumps(self._runtime.call(spec, json.loads(json.dumps(event)))))
        finally:
            self._after_invocation()

    def invoke_function_url(
        self,
        logical_id: str,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        *,
        path: str = "/",
        query: str = "",
    ) -> dict[str, Any]:
        """Send one HTTP request to the function's URL: the handler gets a function URL event (payload format
        2.0) and this returns the response (statusCode, headers, body, isBase64Encoded) as the URL answers
        it; a handler exception is a 502, as in AWS."""
        spec = self._function(logical_id)
        if spec.url is None:
            raise ValueError(f"{logical_id} has no FunctionUrlConfig")
        event = function_url.request_event(
            spec.url, method=method, path=path, headers=headers or {}, body=body, query=query, epoch=self.clock()
        )
        try:
            result = json.loads(json.dumps(self._runtime.call(spec, event)))
        except Exception:
            LOG.exception("%s raised: its function URL answers 502", logical_id)
            return copy.deepcopy(function_url.INTERNAL_SERVER_ERROR)
        finally:
            self._after_invocation()
        return function_url.response(result)

    def _function(self, logical_id: str) -> FunctionSpec:
        self._require_type(logical_id, "AWS::Serverless::Function")
        return self._built.functions[logical_id]

    def _function_named(self, name: str) -> FunctionSpec | None:
        return self._functions_by_name.get(name)

    def _function_arn_named(self, name: str) -> str | None:
        spec = self._functions_by_name.get(name)
        return spec.arn if spec else None

    def _invoke_from_moto(self, spec: FunctionSpec, body: bytes | str | None) -> InvokeOutcome:
        try:
            return self._runtime.invoke(spec, body)
        finally:
            self._after_invocation()

    def _after_invocation(self) -> None:
        """Deliver the events handlers put, once this thread is out of every handler (no re-entrancy)."""
        if not self._runtime.busy_in_this_thread():
            self._bridge.deliver_pending()

    # -- EventBridge -------------------------------------------------------------------------------------------

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``events.put_events`` (the API validates the entries), then deliver matched events to the rules'
        Lambda and Step Functions targets; returns the API's response."""
        response = dict(self.client("events").put_events(Entries=[dict(entry) for entry in entries]))
        response.pop("ResponseMetadata", None)
        self._bridge.deliver_pending()
        return response

    def _deliver_to_target(self, target_arn: str, payload: Any) -> Any:
        for spec in self._built.functions.values():
            if spec.arn == target_arn:
                return self._runtime.call(spec, json.loads(json.dumps(payload)))
        if target_arn in self._built.state_machines.values():
            sfn = self.client("stepfunctions")
            return sfn.start_execution(stateMachineArn=target_arn, input=json.dumps(payload))["executionArn"]
        raise ValueError(f"{target_arn} is neither a function nor a state machine of the stack")

    # -- helpers -----------------------------------------------------------------------------------------------

    def _require_entered(self) -> None:
        if self._exit_stack is None:
            raise RuntimeError("the LocalStack is not entered: use it as `with LocalStack(...) as stack:`")

    def _require_type(self, logical_id: str, resource_type: str) -> None:
        self._require_entered()
        actual = self._built.types.get(logical_id)
        if actual != resource_type:
            found = f"a {actual}" if actual else "not a resource the stack created"
            raise KeyError(f"{logical_id} is {found}, not a {resource_type}")
