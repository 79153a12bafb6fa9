"""One cleanup, in a process of its own (so its peak memory is its own): started by cleanup_throughput.

It imports the cleanup handler's module first, as a Lambda cold start does (boto3, Powertools, the shared
package), then runs either the real `run_cleanup` (its executor, threads and adaptive rate limiters) or a
plain sequential loop, against the Talonic emulator over HTTP, in real time. The runs table is an in-memory
stand-in with the interface cleanup uses (`undeleted_runs`, `mark_deleted`, `record`): DynamoDB is remote
in Lambda, so an in-process moto would only add its own memory and CPU to what is measured.

Writes a JSON result to the path given in the config; logs (Powertools JSON, one line per deletion, as in
Lambda) go to this process's stdout, which the parent sends to a file.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from talonic_watchdog.models import ValidationRun, format_timestamp


class MemoryRunsTable:
    """The runs table's cleanup interface, kept in a dict (the same fields DynamoDB would return)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.items = {record["run_id"]: dict(record) for record in records}
        self._lock = threading.Lock()
        self.marked_deleted = 0

    def undeleted_runs(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        del page_size
        fields = ("run_id", "status", "name", "golden_sample_id", "created_at", "completed_at")
        with self._lock:
            snapshot = [item for item in self.items.values() if "deleted_at" not in item]
        for item in snapshot:
            yield {name: item[name] for name in fields if name in item}

    def mark_deleted(self, run_id: str, *, now: float, reason: str, previous_status: str | None = None) -> None:
        with self._lock:
            item = self.items.setdefault(run_id, {"run_id": run_id})
            if previous_status and previous_status != "deleted":
                item["status_before_delete"] = previous_status
            item.update(status="deleted", deleted_at=now, deleted_reason=reason)
            self.marked_deleted += 1

    def record(self, run: ValidationRun, *, now: float, source: str) -> None:
        with self._lock:
            item = self.items.setdefault(run.id, {"run_id": run.id})
            item.update(status=run.status.value, updated_at=now, last_source=source)
            if run.completed_at:
                item["completed_at"] = format_timestamp(run.completed_at)


class _Capture(logging.Handler):
    """Counts urllib3's "Connection pool is full" warnings and keeps cleanup's final log line."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.pool_full = 0
        self.finished: dict[str, Any] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Connection pool is full" in message:
            self.pool_full += 1
        elif message == "cleanup finished":
            self.finished = {
                name: getattr(record, name, None) for name in ("deleted", "requests", "rate_limited", "write_limiter")
            }


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def sequential(config: dict[str, Any], table: MemoryRunsTable, settings: Any) -> dict[str, Any]:
    """The plain loop: list, judge, then for each selected run (oldest first) re-read it if only the table
    knew it, delete it, mark it; one request at a time, 429s left to the client's own Retry-After retries."""
    from talonic_watchdog.api_keys import StaticKeySource
    from talonic_watchdog.cleanup import build_inventory, recheck, select_outdated
    from talonic_watchdog.client import TalonicClient
    from talonic_watchdog.errors import TalonicError, TalonicNotFoundError

    read = TalonicClient(config["url"], StaticKeySource(config["read_key"]))
    write = TalonicClient(config["url"], StaticKeySource(config["write_key"]))
    now = time.time()
    listing = read.list_runs(budget_seconds=60)
    inventory = build_inventory(listing, table.undeleted_runs())
    selection = select_outdated(inventory.candidates, settings.policy, now)
    selected = selection.selected
    counts = {"deleted": 0, "already_gone": 0, "failed": 0, "kept": 0}
    deleted_ids: list[str] = []
    for decision in selected[: config["limit"]]:
        candidate = decision.candidate
        try:
            if not candidate.listed:
                fresh = read.get_run(candidate.run_id, budget_seconds=20)
                if not recheck(candidate, fresh, settings.policy, now, selection).delete:
                    counts["kept"] += 1
                    continue
            write.delete_run(
                candidate.run_id, idempotency_key=f"watchdog-cleanup-{candidate.run_id}", budget_seconds=20
            )
        except TalonicNotFoundError:
            counts["already_gone"] += 1
            continue
        except TalonicError:
            counts["failed"] += 1
            continue
        table.mark_deleted(candidate.run_id, now=time.time(), reason=decision.reason.value)
        counts["deleted"] += 1
        deleted_ids.append(candidate.run_id)
    return {
        **counts,
        "eligible": len(selected),
        "attempted": min(len(selected), config["limit"]),
        "deferred": 0,
        "requests": read.requests_sent + write.requests_sent,
        "deleted_ids": deleted_ids,
    }


def ours(config: dict[str, Any], table: MemoryRunsTable, settings: Any) -> dict[str, Any]:
    """The real thing: `run_cleanup` with paced clients, as `runtime.paced_talonic_client` builds them."""
    from talonic_watchdog import clock
    from talonic_watchdog.api_keys import StaticKeySource
    from talonic_watchdog.cleanup import Deadline, run_cleanup
    from talonic_watchdog.client import TalonicClient
    from talonic_watchdog.ratelimiter import LimiterSettings

    def paced(key: str) -> TalonicClient:
        return TalonicClient(
            config["url"], StaticKeySource(key), sleep=clock.sleep, now=clock.now, retry_rate_limited=False
        )

    started = time.monotonic()
    timeout = float(config["lambda_timeout"])
    report = run_cleanup(
        settings=settings,
        dry_run=False,
        read_client=paced(config["read_key"]),
        write_client=paced(config["write_key"]),
        table=table,  # type: ignore[arg-type]  # the same interface, in memory
        deadline=Deadline(lambda: timeout - (time.monotonic() - started), reserve_seconds=settings.reserve_seconds),
        limiter_settings=LimiterSettings(**config["limiter"]) if config.get("limiter") else None,
    )
    data = report.to_dict()
    return {
        "deleted": data["deleted"],
        "already_gone": data["already_gone"],
        "failed": data["failed"],
        "deferred": data["deferred"],
        "kept": sum(count for reason, count in data["kept"].items() if reason.startswith("rechecked")),
        "eligible": data["eligible"],
        "attempted": data["eligible"],
        "requests": data["requests"]["sent"],
        "rate_limited_seen": data["requests"]["rate_limited"],
        "blocked": data["blocked"],
        "stopped": data["stopped"],
        "deleted_ids": [line.run_id for line in report.deleted],
    }


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    import functions.cleanup.app  # noqa: F401  # what a cold start of the cleanup function imports
    from talonic_watchdog.cleanup import CleanupSettings, RetentionPolicy

    capture = _Capture()
    logging.getLogger("urllib3.connectionpool").addHandler(capture)
    logging.getLogger("talonic_watchdog.cleanup").addHandler(capture)
    rss_imports = _rss_kb()
    table = MemoryRunsTable(json.loads(Path(config["records"]).read_text()))
    settings = CleanupSettings(
        policy=RetentionPolicy(
            retention_days=90, failed_retention_days=14, keep_newest=5, exempt_prefixes=("pinned-",)
        ),
        dry_run=False,
        max_deletions=100_000,
        max_deletion_share=1.0,
        workers=int(config["workers"]),
    )
    started = time.monotonic()
    outcome = (ours if config["mode"] == "ours" else sequential)(config, table, settings)
    elapsed = time.monotonic() - started
    outcome.update(
        elapsed=elapsed,
        rss_imports_kb=rss_imports,
        peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        pool_full_warnings=capture.pool_full,
        finished_log=capture.finished,
        table_marked_deleted=table.marked_deleted,
    )
    Path(config["out"]).write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
