"""Discovery: find validation runs started elsewhere (Talonic's dashboard, scripts) and watch them too.

A scheduled sweep lists runs with the read key and, for each run the runs table has not seen:
- pending or running → starts the watch workflow under the same deterministic name as every other trigger
  (`run-<id>`), so a run is never watched twice;
- completed or failed within the look-back window → records it and starts the same workflow, which polls it
  once and hands it to the alert step (alerts are idempotent per run and kind);
- finished before the window → only recorded, so a first deploy over a long history sends no alert storm.

The list endpoint shows only the newest 100 runs: when every listed run is new and no cursor came back,
runs may have been missed, and the sweep says so in its log and metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from talonic_watchdog.client import TalonicClient
from talonic_watchdog.models import RunStatus, ValidationRun
from talonic_watchdog.rate_limits import RateLimitState
from talonic_watchdog.runs_table import RunsTable
from talonic_watchdog.triggers import StartResult

logger = logging.getLogger(__name__)

LIST_HORIZON = 100


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    lookback_hours: float = 24.0
    min_budget_share: float = 0.2  # below this share of X-RateLimit-Remaining, the sweep stands down


@dataclass
class SweepReport:
    seen: int = 0
    new: int = 0
    watches_started: int = 0
    already_watching: int = 0
    recorded_only: int = 0
    skipped: int = 0
    skipped_reason: str | None = None
    may_have_missed_runs: bool = False
    requests: int = 0
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "new": self.new,
            "watches_started": self.watches_started,
            "already_watching": self.already_watching,
            "recorded_only": self.recorded_only,
            "skipped": self.skipped,
            "skipped_reason": self.skipped_reason,
            "may_have_missed_runs": self.may_have_missed_runs,
            "requests": self.requests,
        }


def budget_is_low(state: RateLimitState | None, *, now: float, min_share: float) -> bool:
    """The last rate-limit headers say the budget is low, and their window has not reset since."""
    if state is None or state.remaining_share is None:
        return False
    if state.reset_at is not None and state.reset_at <= now:
        return False
    return state.remaining_share < min_share


def _finished_at(run: ValidationRun) -> float | None:
    moment = run.completed_at or run.created_at
    return moment.timestamp() if moment else None


def sweep(
    *,
    client: TalonicClient,
    table: RunsTable,
    start_watch: Callable[[dict[str, Any]], StartResult],
    settings: DiscoverySettings,
    now: float,
    budget_seconds: float,
) -> SweepReport:
    report = SweepReport()
    if budget_is_low(client.rate_limit, now=now, min_share=settings.min_budget_share):
        report.skipped_reason = "rate-limit budget low"
        logger.warning("discovery sweep skipped: the rate-limit budget is low")
        return report
    requests_before = client.requests_sent
    listing = client.list_runs(budget_seconds=budget_seconds)
    report.requests = client.requests_sent - requests_before
    report.seen = len(listing.runs)
    report.unreadable = listing.unreadable
    report.skipped = len(listing.unreadable)
    if listing.unreadable:  # the report counts them; the log says which, so they can be looked up
        logger.warning("discovery skipped unreadable runs", extra={"unreadable": listing.unreadable[:20]})
    known = table.known_ids([run.id for run in listing.runs])
    new_runs = [run for run in listing.runs if run.id not in known]
    report.new = len(new_runs)
    if new_runs and len(new_runs) == len(listing.runs) and len(listing.runs) >= LIST_HORIZON and not listing.paginated:
        report.may_have_missed_runs = True
        logger.warning(
            "every listed run is new and the list stops at its newest-100 horizon: older runs may have been missed"
        )
    low_after_listing = budget_is_low(client.rate_limit, now=now, min_share=settings.min_budget_share)
    window_start = now - settings.lookback_hours * 3600
    for run in new_runs:
        finished_at = _finished_at(run)
        recent = run.status in (RunStatus.PENDING, RunStatus.RUNNING) or (
            finished_at is not None and finished_at >= window_start
        )
        if recent and low_after_listing:
            # Watching costs requests: with the budget low the run stays unrecorded, so a later sweep finds it.
            report.skipped += 1
            report.skipped_reason = "rate-limit budget low"
            continue
        if recent:
            # Start first, record second: a failed start leaves the run unknown, and the next sweep retries it.
            result = start_watch({"validation_run_id": run.id})
            report.watches_started += result.started
            report.already_watching += not result.started
        else:
            report.recorded_only += 1
        table.record(run, now=now, source="discovery")
    logger.info("discovery sweep", extra=report.as_dict())
    return report
