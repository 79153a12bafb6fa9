"""Powertools Logger, Tracer and Metrics, created once and shared by every handler.

The shared package logs through the standard library (`logging.getLogger("talonic_watchdog....")`); the
Logger's JSON formatting and correlation id are copied onto those loggers here, so a library log line looks
like a handler's.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

logger = Logger()
tracer = Tracer()
metrics = Metrics()

copy_config_to_registered_loggers(source_logger=logger, include={"talonic_watchdog"})
