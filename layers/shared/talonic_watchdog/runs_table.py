"""The runs table: every validation run the watchdog has seen.

The list endpoint shows only the newest 100 runs, so this table is what lets baselines and cleanup see further
back. One item per run, keyed by run id; a sparse index by golden sample (newest first) serves "earlier runs
of the same golden sample". The item also carries the watch claim, so one run is watched once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from talonic_watchdog.models import RunStatus, ValidationRun, format_timestamp

logger = logging.getLogger(__name__)

GOLDEN_SAMPLE_INDEX = "by_golden_sample"
DAY = 86_400
DELETED = "deleted"
# A scan of the whole table is bounded: 1,000 pages of up to 1 MB is far beyond any realistic history.
MAX_SCAN_PAGES = 1000
_CANDIDATE_FIELDS = ("run_id", "status", "name", "golden_sample_id", "created_at", "completed_at")


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

    def mark_alerted(self, run_id: str, kind: str) -> None:
        """Remember which alert a run raised: the next run of its golden sample decides on recovery by it."""
        self._table.update_item(
            Key={"run_id": run_id},
            UpdateExpression="SET alert_kind = :kind",
            ExpressionAttributeValues={":kind": kind},
        )

    def previous_finished(self, golden_sample_id: str, *, before_run_id: str) -> dict[str, Any] | None:
        """The golden sample's newest completed or failed run other than `before_run_id`."""
        finished = (RunStatus.COMPLETED.value, RunStatus.FAILED.value)
        return next(
            (
                record
                for record in self.recent_runs(golden_sample_id, limit=20)
                if record["run_id"] != before_run_id and record.get("status") in finished
            ),
            None,
        )

    def undeleted_runs(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every record not marked deleted, with the fields cleanup judges by (a paginated, bounded scan)."""
        names = {f"#{name}": name for name in (*_CANDIDATE_FIELDS, "deleted_at")}
        request: dict[str, Any] = {
            "FilterExpression": "attribute_not_exists(#deleted_at)",
            "ProjectionExpression": ", ".join(f"#{name}" for name in _CANDIDATE_FIELDS),
            "ExpressionAttributeNames": names,
            "Limit": page_size,
        }
        for _ in range(MAX_SCAN_PAGES):
            response = self._table.scan(**request)
            for item in response.get("Items", []):
                yield dict(item)
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key
        logger.warning("runs table scan stopped after %d pages", MAX_SCAN_PAGES)

    def mark_deleted(self, run_id: str, *, now: float, reason: str, previous_status: str | None = None) -> None:
        """Keep the record as history, marked deleted (status "deleted", `deleted_at`, why). The status it had
        is kept in `status_before_delete`."""
        values: dict[str, Any] = {
            ":deleted": DELETED,
            ":at": _iso(now),
            ":reason": reason,
            ":expires": int(now + self._ttl_seconds),
        }
        assignments = [
            "#status = :deleted",
            "deleted_at = :at",
            "deleted_reason = :reason",
            "updated_at = :at",
            "expires_at = if_not_exists(expires_at, :expires)",
        ]
        if previous_status and previous_status != DELETED:
            values[":previous"] = previous_status
            assignments.append("status_before_delete = :previous")
        self._table.update_item(
            Key={"run_id": run_id},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def known_ids(self, run_ids: list[str]) -> set[str]:
        """Which of these runs the table has a record of (BatchGetItem, 100 keys a request)."""
        known: set[str] = set()
        client, name = self._table.meta.client, self._table.name
        unique = list(dict.fromkeys(run_ids))
        for start in range(0, len(unique), 100):
            request = {
                name: {
                    "Keys": [{"run_id": run_id} for run_id in unique[start : start + 100]],
                    "ProjectionExpression": "run_id",
                    "ConsistentRead": True,
                }
            }
            for _ in range(10):  # unprocessed keys come back under throttling: retry them a bounded number of times
                response = client.batch_get_item(RequestItems=request)
                known.update(str(item["run_id"]) for item in response.get("Responses", {}).get(name, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
        return known
