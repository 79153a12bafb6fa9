"""A stored validation run: its lifecycle state at any instant and how the API renders it.

talonic-api.md documents the run object (accuracy and total_comparisons null until completed,
instants as ISO 8601 UTC with milliseconds) and a second shape from the OpenAPI models; both are
rendered here so the client can be tested against either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from local.talonic_emulator.behaviour import COMPLETED, FINAL_STATUSES, RunBehaviour, generate_results
from local.talonic_emulator.clock import iso_ms

RunShape = Literal["documented", "openapi"]
RUN_SHAPES: frozenset[str] = frozenset({"documented", "openapi"})

#: (status, completed_at) of a run at some instant.
RunState = tuple[str, float | None]


@dataclass
class StoredRun:
    """A run as the emulator keeps it. ``seq`` orders runs created at the same instant."""

    id: str
    org: str
    golden_sample_id: str
    name: str | None
    dataspace_run_id: str | None
    created_at: float
    behaviour: RunBehaviour
    seq: int
    pinned_status: str | None = None
    pinned_completed_at: float | None = None
    reads: int = 0
    final_seen_at: float | None = None

    def pin(self, status: str | None, now: float) -> None:
        """Force a status (None releases it); a final one is stamped as finished now."""
        self.pinned_status = status
        self.pinned_completed_at = max(now, self.created_at) if status in FINAL_STATUSES else None

    def count_read(self, now: float) -> None:
        """Register one ``GET /v1/validation/runs/{id}``: it drives read-count progression."""
        self.reads += 1
        behaviour = self.behaviour
        if (
            behaviour.counts_reads
            and self.final_seen_at is None
            and behaviour.status_after_reads(self.reads) in FINAL_STATUSES
        ):
            self.final_seen_at = now

    def state(self, now: float) -> RunState:
        """Status and completion instant at ``now``, without counting a read."""
        if self.pinned_status is not None:
            return self.pinned_status, self.pinned_completed_at
        behaviour = self.behaviour
        if behaviour.counts_reads:
            status = behaviour.status_after_reads(self.reads)
            return status, self.final_seen_at if status in FINAL_STATUSES else None
        status = behaviour.status_after_seconds(now - self.created_at)
        if status in FINAL_STATUSES:
            return status, self.created_at + behaviour.seconds_to_final
        return status, None

    def results(self, now: float) -> list[dict[str, Any]]:
        """Per-field result rows: none until the run is completed (what the API does then is unknown)."""
        status, completed_at = self.state(now)
        if status != COMPLETED:
            return []
        return generate_results(self.id, self.behaviour, iso_ms(completed_at or self.created_at))

    def render(self, now: float, shape: str, state: RunState | None = None) -> dict[str, Any]:
        """The run as the API shows it at ``now`` (or in an explicit ``state``) in ``shape``."""
        status, completed_at = state if state is not None else self.state(now)
        completed = status == COMPLETED
        behaviour = self.behaviour
        accuracy = behaviour.effective_accuracy if completed else None
        tail = {
            "created_at": iso_ms(self.created_at),
            "completed_at": iso_ms(completed_at) if completed_at is not None else None,
            "links": {
                "self": f"/v1/validation/runs/{self.id}",
                "results": f"/v1/validation/runs/{self.id}/results",
            },
        }
        if shape == "documented":
            return {
                "id": self.id,
                "name": self.name,
                "status": status,
                "dataspace_run_id": self.dataspace_run_id,
                "golden_sample_id": self.golden_sample_id,
                "accuracy": accuracy,
                "total_comparisons": behaviour.total_comparisons if completed else None,
                **tail,
            }
        if shape == "openapi":
            digest = hashlib.sha256(self.golden_sample_id.encode("utf-8")).hexdigest()[:12]
            return {
                "id": self.id,
                "status": status,
                "golden_sample_id": self.golden_sample_id,
                "schema_id": f"sch_{digest}",
                "accuracy_overall": accuracy,
                "documents_processed": behaviour.documents if completed else None,
                **tail,
            }
        raise ValueError(f"unknown run_shape {shape!r}; expected one of {sorted(RUN_SHAPES)}")
