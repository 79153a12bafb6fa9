"""Parsing of runs and results in both documented shapes, and rejection of everything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from talonic_watchdog.errors import TalonicBadResponseError, UnknownRunStatusError
from talonic_watchdog.models import FieldResult, RunStatus, ValidationRun, format_timestamp

DOCUMENTED = {
    "id": "run-1",
    "name": "nightly",
    "status": "completed",
    "dataspace_run_id": "job-1",
    "golden_sample_id": "gs-1",
    "accuracy": 0.875,
    "total_comparisons": 40,
    "created_at": "2024-09-14T10:30:00.000Z",
    "completed_at": "2024-09-14T10:32:00.000Z",
    "links": {"self": "/v1/validation/runs/run-1", "results": "/v1/validation/runs/run-1/results"},
}


def test_the_documented_shape():
    run = ValidationRun.from_api(DOCUMENTED)
    assert run.status is RunStatus.COMPLETED and run.status.is_final
    assert run.accuracy == 0.875
    assert run.duration_seconds == 120
    assert run.results_path == "/v1/validation/runs/run-1/results"
    assert format_timestamp(run.completed_at) == "2024-09-14T10:32:00.000Z"  # type: ignore[arg-type]


def test_the_openapi_shape_and_only_id_and_status_required():
    run = ValidationRun.from_api({"id": "run-2", "status": "running", "accuracy_overall": None, "schema_id": "s"})
    assert run.status is RunStatus.RUNNING and not run.status.is_final
    assert run.accuracy is None and run.golden_sample_id is None
    assert ValidationRun.from_api({"id": "r", "status": "completed", "accuracy_overall": 1}).accuracy == 1.0


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ([], TalonicBadResponseError),
        ({"status": "completed"}, TalonicBadResponseError),
        ({"id": "r", "status": "archived"}, UnknownRunStatusError),
        ({"id": "r"}, UnknownRunStatusError),
        ({"id": "r", "status": "completed", "accuracy": 93}, TalonicBadResponseError),
        ({"id": "r", "status": "completed", "accuracy": "0.9"}, TalonicBadResponseError),
        ({"id": "r", "status": "completed", "accuracy": True}, TalonicBadResponseError),
        ({"id": "r", "status": "completed", "created_at": "yesterday"}, TalonicBadResponseError),
        ({"id": "r", "status": "completed", "total_comparisons": 1.5}, TalonicBadResponseError),
    ],
)
def test_anything_else_is_a_named_error(payload, error):
    with pytest.raises(error):
        ValidationRun.from_api(payload)


def test_a_timestamp_without_zone_is_taken_as_utc():
    run = ValidationRun.from_api({"id": "r", "status": "pending", "created_at": "2024-09-14T10:30:00"})
    assert run.created_at == datetime(2024, 9, 14, 10, 30, tzinfo=UTC)


def test_field_results_hide_values_from_repr():
    row = FieldResult.from_api(
        {
            "field_name": "iban",
            "expected_value": "DE89370400440532013000",
            "actual_value": 12,
            "match_type": "exact",
        }
    )
    assert row.actual_value == "12"
    assert "DE89" not in repr(row)
    with pytest.raises(TalonicBadResponseError):
        FieldResult.from_api({"expected_value": "x"})
