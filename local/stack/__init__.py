"""The local stack: the SAM application of ``template.yaml`` running in-process on moto (no AWS, no Docker).

See ``local.stack.stack`` for what entering a ``LocalStack`` does, and each module for the moto limitation
it works around.
"""

from local.stack.bridge import BridgedRule, Delivery
from local.stack.clock import VirtualClock
from local.stack.lambda_runtime import FunctionSpec, LambdaContext
from local.stack.notifications import PublishedMessage
from local.stack.resources import Schedule
from local.stack.stack import MOTO_CONFIG, LocalStack
from local.stack.template import TemplateError, UnresolvedReferenceError
from local.stack.waits import WaitRecord

__all__ = [
    "MOTO_CONFIG",
    "BridgedRule",
    "Delivery",
    "FunctionSpec",
    "LambdaContext",
    "LocalStack",
    "PublishedMessage",
    "Schedule",
    "TemplateError",
    "UnresolvedReferenceError",
    "VirtualClock",
    "WaitRecord",
]
