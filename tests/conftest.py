"""Fixtures shared by every test: no test reaches the internet or a real AWS account."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parameters.base import clear_caches

# Set before any boto3 client exists: fake credentials and a region, so nothing can reach real AWS.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TalonicWatchdogTests",
        "POWERTOOLS_SERVICE_NAME": "talonic-watchdog-tests",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(autouse=True)
def _reset_powertools_caches() -> Iterator[None]:
    """Powertools keeps parameter providers (and their caches) per process: start every test clean."""
    clear_caches()
    yield
    clear_caches()
