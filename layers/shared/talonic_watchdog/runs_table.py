"""The runs table: every validation run the watchdog has seen.

The list endpoint shows only the newest 100 runs, so this table is what lets baselines and cleanup see further
back. One item per run, keyed by run id; a sparse index by golden sample (newest first) serves "earlier runs
of the same golden sample". The item also carries the watch claim, so one run is watched once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from talonic_watchdog.models import RunStatus, ValidationRun, format_timestamp

logger = logging.getLogger(__name__)

GOLDEN_SAMPLE_INDEX = "by_golden_sample"
DAY = 86_400


def _iso(epoch: float) -> str:
    return format_timestamp(datetime.fromtimestamp(epoch, tz=UTC))


class RunsTable:
    """Wraps a boto3 DynamoDB Table resource (built once per container, passed in)."""

    def __init__(self, table: Any, *, ttl_days: int = 400) -> None:
        self._table = table
        self._ttl_seconds = ttl_days * DAY

    def record(self, run: ValidationRun, *, now: float, source: str) -> None:
        """Insert or refresh a run's record; fields the API did not send are left as they were."""
        values: dict[str, Any] = {
            "status": run.status.value,
            "updated_at": _iso(now),
            "expires_at": int(now + self._ttl_seconds),
            "last_source": source,
        }
        optional = {
            "name": run.name,
            "golden_sample_id": run.golden_sample_id,
            "dataspace_run_id": run.dataspace_run_id,
            "accuracy": None if run.accuracy is None else Decimal(str(run.accuracy)),
            "total_comparisons": run.total_comparisons,
            "created_at": format_timestamp(run.created_at) if run.created_at else None,
            "completed_at": format_timestamp(run.completed_at) if run.completed_at else None,
            "duration_seconds": None if run.duration_seconds is None else Decimal(str(run.duration_seconds)),
        }
        values.update({name: value for name, value in optional.items() if value is not None})
        names = {f"#{name}": name for name in values}
        assignments = [f"#{name} = :{name}" for name in values]
        assignments.append("#first_seen_at = if_not_exists(#first_seen_at, :now)")
        names["#first_seen_at"] = "first_seen_at"
        self._table.update_item(
            Key={"run_id": run.id},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{name}": value for name, value in values.items()} | {":now": _iso(now)},
        )

    def get(self, run_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def recent_runs(self, golden_sample_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest records of one golden sample, newest first (completed or not)."""
        response = self._table.query(
            IndexName=GOLDEN_SAMPLE_INDEX,
            KeyConditionExpression="golden_sample_id = :gs",
            ExpressionAttributeValues={":gs": golden_sample_id},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [dict(item) for item in response.get("Items", [])]

    def completed_durations(self, golden_sample_id: str, *, limit: int = 20) -> list[float]:
        return [
            float(item["duration_seconds"])
            for item in self.recent_runs(golden_sample_id, limit=limit)
            if item.get("status") == RunStatus.COMPLETED.value and item.get("duration_seconds") is not None
        ]

    def claim_watch(self, run_id: str, *, watcher: str, now: float, until: float) -> str | None:
        """Claim the run for one watch. Returns None when claimed (or already ours), else the other watcher.

        A claim is never released: a finished watch keeps the run until the watch's deadline, so a duplicate
        start after it ended does not watch again. It expires then, so an aborted watch cannot block the run
        forever.
        """
        try:
            self._table.update_item(
                Key={"run_id": run_id},
                UpdateExpression="SET watched_by = :me, watch_until = :until",
                ConditionExpression="attribute_not_exists(watched_by) OR watched_by = :me OR watch_until < :now",
                ExpressionAttributeValues={":me": watcher, ":until": Decimal(str(until)), ":now": Decimal(str(now))},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = self.get(run_id) or {}
            return str(item.get("watched_by", "another watch"))
        return None
