"""Execution names: moto's Step Functions interpreter names an unnamed execution ``None``.

AWS gives an execution started without a ``name`` a generated UUID. moto's parser backend
(``StepFunctionsParserBackend.start_execution``, used when ``execute_state_machine`` is on) formats the
missing name into the ARN as ``...:None``, so a second unnamed execution fails with
``ExecutionAlreadyExists``. While the local stack is entered, an unnamed start gets a UUID, as in AWS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.models import StepFunctionsParserBackend


@contextmanager
def executions_named_like_aws() -> Iterator[None]:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        backend: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        # moto annotates its optional input and trace header as plain str
        name = name or str(uuid.uuid4())
        return original(backend, state_machine_arn, name, execution_input, trace_header)  # type: ignore[arg-type]

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield
