"""Per-field accuracy, computed on our side: Talonic returns per-field results but no per-field aggregate.

A row counts by the LLM judge's verdict where the judge ran (correct 1, partial ½, incorrect 0), else by
its match type (exact and fuzzy are correct, no_match is not). A row with neither is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from talonic_watchdog.models import FieldResult

VERDICT_SCORES = {"correct": 1.0, "partial": 0.5, "incorrect": 0.0}
MATCH_SCORES = {"exact": 1.0, "fuzzy": 1.0, "no_match": 0.0}
EXAMPLE_LENGTH = 40


def row_score(row: FieldResult) -> float | None:
    if row.judge_verdict in VERDICT_SCORES:
        return VERDICT_SCORES[row.judge_verdict]
    if row.match_type in MATCH_SCORES:
        return MATCH_SCORES[row.match_type]
    return None


@dataclass
class FieldStats:
    field_name: str
    score: float = 0.0
    counted: int = 0
    wrong: list[FieldResult] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.score / self.counted if self.counted else 0.0


def field_accuracy(results: Iterable[FieldResult]) -> dict[str, FieldStats]:
    stats: dict[str, FieldStats] = {}
    for row in results:
        score = row_score(row)
        if score is None:
            continue
        entry = stats.setdefault(row.field_name, FieldStats(row.field_name))
        entry.score += score
        entry.counted += 1
        if score < 1.0:
            entry.wrong.append(row)
    return stats


@dataclass(frozen=True, slots=True)
class FieldChange:
    field_name: str
    correct: float
    counted: int
    accuracy: float
    baseline_accuracy: float | None = None
    examples: tuple[str, ...] = ()

    @property
    def change_points(self) -> float | None:
        """Percentage points gained (positive) or lost (negative) against the baseline run."""
        if self.baseline_accuracy is None:
            return None
        return (self.accuracy - self.baseline_accuracy) * 100

    def describe(self) -> str:
        text = f"{self.field_name}: {self.correct:g}/{self.counted} correct ({self.accuracy * 100:.0f} %)"
        change = self.change_points
        if change is not None:
            arrow = "▼" if change < 0 else "▲" if change > 0 else "="
            text += f", {arrow} {abs(change):.0f} pts vs baseline ({self.baseline_accuracy * 100:.0f} %)"  # type: ignore[operator]
        return text


def _clip(value: str | None) -> str:
    if value is None:
        return "∅"
    return value if len(value) <= EXAMPLE_LENGTH else value[: EXAMPLE_LENGTH - 1] + "…"


def worst_fields(
    current: dict[str, FieldStats],
    baseline: dict[str, FieldStats] | None,
    *,
    limit: int = 5,
    include_examples: bool = False,
    examples_per_field: int = 2,
) -> list[FieldChange]:
    """The fields that need attention: lowest accuracy first, then the largest drop. Fields that are fully
    correct and did not get worse are left out. Values appear only when `include_examples` allows it."""
    changes: list[FieldChange] = []
    for name, stats in current.items():
        before = baseline.get(name) if baseline else None
        change = FieldChange(
            field_name=name,
            correct=stats.score,
            counted=stats.counted,
            accuracy=stats.accuracy,
            baseline_accuracy=before.accuracy if before and before.counted else None,
            examples=tuple(
                f"{row.document_id or '?'}: expected {_clip(row.expected_value)!r}, got {_clip(row.actual_value)!r}"
                for row in stats.wrong[:examples_per_field]
            )
            if include_examples
            else (),
        )
        if change.accuracy < 1.0 or (change.change_points or 0) < 0:
            changes.append(change)
    changes.sort(key=lambda c: (c.accuracy, c.change_points or 0.0, c.field_name))
    return changes[:limit]
