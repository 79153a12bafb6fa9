"""What a run is compared with: the median accuracy of the golden sample's last completed runs.

The runs table comes first (it sees further back than the list endpoint's newest 100); the list API fills in
runs the table has not seen (started elsewhere, or before the watchdog was deployed).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any

from talonic_watchdog.client import TalonicClient
from talonic_watchdog.errors import TalonicError
from talonic_watchdog.models import RunStatus, format_timestamp
from talonic_watchdog.runs_table import RunsTable

logger = logging.getLogger(__name__)

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class BaselineRun:
    run_id: str
    accuracy: float
    created_at: str


@dataclass(frozen=True, slots=True)
class Baseline:
    runs: tuple[BaselineRun, ...]  # newest first

    @property
    def median(self) -> float:
        return float(statistics.median(run.accuracy for run in self.runs))

    @property
    def latest(self) -> BaselineRun:
        return self.runs[0]

    def describe(self) -> str:
        listed = ", ".join(f"{run.run_id[:8]} ({run.accuracy * 100:.1f} %)" for run in self.runs)
        return f"median {self.median * 100:.1f} % of the last {len(self.runs)} completed runs: {listed}"


def _completed(record: dict[str, Any]) -> bool:
    return record.get("status") == RunStatus.COMPLETED.value and record.get("accuracy") is not None


def find_baseline(
    golden_sample_id: str,
    *,
    exclude_run_id: str,
    table: RunsTable,
    client: TalonicClient | None,
    size: int,
    budget_seconds: float = 10.0,
) -> Baseline | None:
    """The last `size` completed runs of the golden sample before this one, or None when there are none."""
    found = {
        str(record["run_id"]): BaselineRun(str(record["run_id"]), float(record["accuracy"]), str(record["created_at"]))
        for record in table.recent_runs(golden_sample_id, limit=size * 4)
        if _completed(record) and record["run_id"] != exclude_run_id and "deleted_at" not in record
    }
    if len(found) < size and client is not None:
        try:
            listing = client.list_runs(budget_seconds=budget_seconds)
        except TalonicError as error:  # a baseline is a bonus: the alert still goes out without it
            logger.warning("could not list runs for the baseline", extra={"error": type(error).__name__})
        else:
            for run in listing.runs:
                if (
                    run.golden_sample_id == golden_sample_id
                    and run.status is RunStatus.COMPLETED
                    and run.accuracy is not None
                    and run.id != exclude_run_id
                    and run.id not in found
                    and run.created_at is not None
                ):
                    found[run.id] = BaselineRun(run.id, run.accuracy, format_timestamp(run.created_at))
    newest = sorted(found.values(), key=lambda run: run.created_at, reverse=True)[:size]
    return Baseline(tuple(newest)) if newest else None


def sparkline(values: list[float]) -> str:
    """Accuracies (0..1), oldest first, as ▁▃▅▇ (scaled to their own range, so small moves show)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span < 1e-9:
        return SPARK_BLOCKS[-1] * len(values)
    return "".join(SPARK_BLOCKS[round((value - low) / span * (len(SPARK_BLOCKS) - 1))] for value in values)


def accuracy_trend(golden_sample_id: str, *, table: RunsTable, size: int = 10) -> list[float]:
    """Accuracies of the golden sample's last completed runs, oldest first."""
    records = [r for r in table.recent_runs(golden_sample_id, limit=size * 2) if _completed(r)][:size]
    return [float(record["accuracy"]) for record in reversed(records)]
