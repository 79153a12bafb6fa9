"""Powertools Logger, Tracer and Metrics, created once and shared by every handler.

The shared package logs through the standard library (`logging.getLogger("talonic_watchdog....")`); the
Logger's JSON formatting and correlation id are copied onto those loggers here, so a library log line looks
like a handler's.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

copy_config_to_registered_loggers(source_logger=logger, include={"talonic_watchdog"})

# Libraries that log whole requests and answers at DEBUG would put secrets into the logs whenever the root
# logger is at DEBUG (Lambda's ApplicationLogLevel): botocore logs GetSecretValue's answer, which holds a key,
# and urllib3 logs the Slack webhook URL's path, which is its secret. They never log below INFO here.
for _library in ("botocore", "urllib3"):
    logging.getLogger(_library).setLevel(max(logging.INFO, logging.getLogger(_library).level))


def emit_metric(name: str, unit: MetricUnit, value: float, **dimensions: str) -> None:
    """One metric with its own dimensions (a golden sample, an alert kind), flushed at once.

    Not Powertools' `single_metric`: it prints even when POWERTOOLS_METRICS_DISABLED is set; an
    EphemeralMetrics flush honours it and keeps these dimensions off the handler's shared metric set.
    """
    metric = EphemeralMetrics()
    for dimension, dimension_value in dimensions.items():
        metric.add_dimension(name=dimension, value=dimension_value)
    metric.add_metric(name=name, unit=unit, value=value)
    metric.flush_metrics()
