"""Running the project's Lambda handlers in-process, as the Lambda service would run them.

moto's Lambda without Docker (``LambdaSimpleBackend.invoke``) only echoes the request body back: it never
runs a handler. While the local stack is entered, ``patched_moto_invoke`` routes every invoke of a
function the stack created (from Step Functions, from a handler, from a test) to ``InProcessLambda``: it
imports the handler named by the function's CodeUri and Handler, sets the function's environment for the
duration of the call, passes a Lambda context, and turns a raised exception into a function error exactly
as AWS reports it (an ``{"errorType", "errorMessage", "stackTrace"}`` payload and the
``X-Amz-Function-Error: Unhandled`` header), so Step Functions' Retry/Catch match on the class name.

``os.environ`` is process-wide, so handler calls are serialized by one re-entrant lock (a handler may
invoke another function synchronously); a handler must therefore not wait for another handler to run in
a different thread.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FunctionSpec:
    """A function as the template declares it, resolved: what the in-process runtime needs to run it."""

    logical_id: str
    name: str
    arn: str
    runtime: str
    handler: str
    code_uri: str
    import_root: Path
    module: str
    attribute: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None


def locate_handler(code_dir: Path, handler: str) -> tuple[Path, str, str]:
    """Where a handler lives: (import root, dotted module, attribute).

    ``code_dir`` must be a package (``__init__.py``), as ``functions/<name>/`` is, so that every function's
    ``app`` module gets a distinct name; the import root is the first folder above it that is no package.
    """
    module_path, _, attribute = handler.rpartition(".")
    if not module_path or not attribute:
        raise ValueError(f"Handler {handler!r} is not of the form module.function")
    if not (code_dir / "__init__.py").is_file():
        raise ValueError(f"CodeUri {code_dir} has no __init__.py: the local stack imports handlers as packages")
    root = code_dir
    while (root / "__init__.py").is_file():
        root = root.parent
    package = ".".join(code_dir.relative_to(root).parts)
    return root, f"{package}.{module_path.replace('/', '.')}", attribute


class LambdaContext:
    """The context object the Python runtime passes to a handler; remaining time follows ``clock``."""

    def __init__(self, spec: FunctionSpec, clock: Callable[[], float], request_id: str) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_size
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._clock = clock
        self._deadline = clock() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


class InvokeOutcome(NamedTuple):
    """What the Lambda service answers to an invoke: the payload, and ``Unhandled`` if the handler raised."""

    payload: bytes
    function_error: str | None


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    """The payload the Python runtime returns for an unhandled exception (the stack trace starts at the
    handler, as in AWS: this module's own frames are left out)."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != __file__]
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class InProcessLambda:
    """Runs handlers in this process, one at a time, each with its function's environment and context."""

    def __init__(self, clock: Callable[[], float], region: str) -> None:
        self._clock = clock
        self._region = region
        self._lock = threading.RLock()
        self._active = threading.local()

    def busy_in_this_thread(self) -> bool:
        """True while this thread is inside a handler (a handler's own nested invokes included)."""
        return bool(getattr(self._active, "depth", 0))

    def call(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Any:
        """Run the handler and return what it returns; what it raises propagates unchanged."""
        request_id = request_id or str(uuid.uuid4())
        with self._lock, _environment(self._runtime_environment(spec)):
            self._active.depth = getattr(self._active, "depth", 0) + 1
            started = time.perf_counter()
            outcome = "error"
            try:
                handler = getattr(importlib.import_module(spec.module), spec.attribute)
                result = handler(event, LambdaContext(spec, self._clock, request_id))
                outcome = "ok"
                return result
            finally:
                self._active.depth -= 1
                LOG.info(
                    "invoked %s (%s) request %s: %s in %.1f ms",
                    spec.logical_id,
                    spec.name,
                    request_id,
                    outcome,
                    (time.perf_counter() - started) * 1000,
                )

    def invoke(self, spec: FunctionSpec, body: bytes | str | None) -> InvokeOutcome:
        """Answer an invoke as the Lambda service does: JSON in, JSON out, exceptions as function errors."""
        event = json.loads(body) if body else {}
        request_id = str(uuid.uuid4())
        try:
            result = self.call(spec, event, request_id)
        except Exception as error:  # every handler exception becomes a function error, as in AWS
            LOG.info("%s raised %s: reported as a function error", spec.logical_id, type(error).__name__)
            return InvokeOutcome(json.dumps(error_payload(error, request_id)).encode(), "Unhandled")
        try:
            return InvokeOutcome(json.dumps(result).encode(), None)
        except (TypeError, ValueError) as error:
            marshal_error = {
                "errorMessage": f"Unable to marshal response: {error}",
                "errorType": "Runtime.MarshalError",
            }
            return InvokeOutcome(json.dumps(marshal_error).encode(), "Unhandled")

    def _runtime_environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's variables plus those the Lambda runtime (and ``sam local``) always set."""
        return {
            **spec.environment,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_SAM_LOCAL": "true",
            "_HANDLER": spec.handler,
        }


@contextmanager
def patched_moto_invoke(
    find_function: Callable[[str], FunctionSpec | None],
    invoke: Callable[[FunctionSpec, bytes | str | None], InvokeOutcome],
) -> Iterator[None]:
    """Route moto's Lambda invokes of the stack's functions to ``invoke``; other functions keep moto's echo."""
    original = LambdaSimpleBackend.invoke

    def routed_invoke(
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> str | bytes | None:
        spec = find_function(backend.get_function(function_name, qualifier).function_name)
        if spec is None:
            return original(backend, function_name, qualifier, body, headers, response_headers)
        invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        outcome = invoke(spec, body)
        if invocation_type == "Event":  # asynchronous: the caller sees neither the result nor the error
            payload = b""
        else:
            payload = outcome.payload
            if outcome.function_error:
                response_headers["x-amz-function-error"] = outcome.function_error
        response_headers["Content-Length"] = str(len(payload))
        return payload

    with mock.patch.object(LambdaSimpleBackend, "invoke", routed_invoke):
        yield
