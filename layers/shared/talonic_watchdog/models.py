"""The Talonic objects this project reads, parsed defensively.

Talonic's docs and its OpenAPI models disagree on the run's shape (`accuracy` vs `accuracy_overall`, fields
present in one and not the other), so only `id` and `status` are required here and everything else is
optional. An unknown status is an error: treating it as "still running" would poll forever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from talonic_watchdog.errors import TalonicBadResponseError, UnknownRunStatusError


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED)


def parse_timestamp(value: object, *, field_name: str) -> datetime | None:
    """ISO 8601 (Talonic sends `2024-09-14T10:32:00.000Z`) to an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TalonicBadResponseError(f"{field_name} is not an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise TalonicBadResponseError(f"{field_name} is not an ISO 8601 timestamp: {value!r}") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """The inverse of parse_timestamp, in Talonic's own format (milliseconds, `Z`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _optional_str(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or isinstance(value, str):
        return value
    raise TalonicBadResponseError(f"{name} is not a string")


def _optional_fraction(payload: dict[str, Any], *names: str) -> float | None:
    """The first of `names` present, as a number in [0, 1]; bools and NaN are not numbers here."""
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise TalonicBadResponseError(f"{name} is not a number")
        if not 0.0 <= float(value) <= 1.0:
            raise TalonicBadResponseError(f"{name} is {value}, outside 0..1")
        return float(value)
    return None


def _optional_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TalonicBadResponseError(f"{name} is not an integer")
    return value


@dataclass(frozen=True, slots=True)
class ValidationRun:
    id: str
    status: RunStatus
    name: str | None = None
    golden_sample_id: str | None = None
    dataspace_run_id: str | None = None
    accuracy: float | None = None
    total_comparisons: int | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    results_path: str | None = None

    @classmethod
    def from_api(cls, payload: object) -> ValidationRun:
        """Parse a run in the documented shape or the OpenAPI shape; raise on anything else."""
        if not isinstance(payload, dict):
            raise TalonicBadResponseError("a validation run is not a JSON object")
        run_id = payload.get("id")
        if not isinstance(run_id, str) or not run_id:
            raise TalonicBadResponseError("a validation run has no id")
        raw_status = payload.get("status")
        try:
            status = RunStatus(str(raw_status))
        except ValueError as error:
            raise UnknownRunStatusError(f"validation run {run_id} has unknown status {raw_status!r}") from error
        links = payload.get("links")
        results_path = links.get("results") if isinstance(links, dict) else None
        return cls(
            id=run_id,
            status=status,
            name=_optional_str(payload, "name"),
            golden_sample_id=_optional_str(payload, "golden_sample_id"),
            dataspace_run_id=_optional_str(payload, "dataspace_run_id"),
            accuracy=_optional_fraction(payload, "accuracy", "accuracy_overall"),
            total_comparisons=_optional_int(payload, "total_comparisons"),
            created_at=parse_timestamp(payload.get("created_at"), field_name="created_at"),
            completed_at=parse_timestamp(payload.get("completed_at"), field_name="completed_at"),
            results_path=results_path if isinstance(results_path, str) else None,
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.created_at is None or self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.created_at).total_seconds())


@dataclass(frozen=True, slots=True)
class FieldResult:
    """One compared field of one document. Expected and actual values can be business data: they are
    kept out of repr so they never reach a log line by accident."""

    field_name: str
    document_id: str | None = None
    match_type: str | None = None
    judge_verdict: str | None = None
    similarity_score: float | None = None
    confidence: float | None = None
    id: str | None = None
    expected_value: str | None = field(default=None, repr=False)
    actual_value: str | None = field(default=None, repr=False)

    @classmethod
    def from_api(cls, payload: object) -> FieldResult:
        if not isinstance(payload, dict):
            raise TalonicBadResponseError("a field result is not a JSON object")
        field_name = payload.get("field_name")
        if not isinstance(field_name, str) or not field_name:
            raise TalonicBadResponseError("a field result has no field_name")
        return cls(
            field_name=field_name,
            document_id=_optional_str(payload, "document_id"),
            match_type=_optional_str(payload, "match_type"),
            judge_verdict=_optional_str(payload, "judge_verdict"),
            similarity_score=_optional_fraction(payload, "similarity_score"),
            confidence=_optional_fraction(payload, "confidence"),
            id=_optional_str(payload, "id"),
            expected_value=_loose_str(payload.get("expected_value")),
            actual_value=_loose_str(payload.get("actual_value")),
        )


def _loose_str(value: object) -> str | None:
    """Values are documented as strings, but a number in a JSON body should not fail a whole alert."""
    return None if value is None else str(value)
