"""How an emulated validation run moves through its lifecycle, and the per-field results it yields.

Talonic documents the lifecycle ``pending -> running -> completed | failed`` and says polling
``GET /v1/validation/runs/{id}`` is the only way to learn that a run finished. ``RunBehaviour``
scripts that lifecycle either against the emulator clock (for a local demo that feels real) or
against the number of GETs the client has made (for integration tests, which must not depend on
timing).

Talonic returns no per-field aggregate, so the client has to compute per-field accuracy from the
result rows. ``generate_results`` therefore produces rows whose correctness is unambiguous under
the rule in ``row_is_correct``, so a test can state "invoice_number is 9/10 correct" and check the
client's arithmetic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Literal

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
FINAL_STATUSES = frozenset({COMPLETED, FAILED})

FinalStatus = Literal["completed", "failed"]


def _demo_fields() -> Mapping[str, tuple[int, int]]:
    return {
        "invoice_number": (9, 10),
        "invoice_date": (10, 10),
        "total_amount": (8, 10),
        "vendor_name": (7, 10),
    }


@dataclass(frozen=True)
class RunBehaviour:
    """The script one emulated run follows.

    Progression is clock-based by default: the run is ``pending`` for ``pending_seconds`` after its
    ``created_at``, then ``running`` for ``running_seconds``, then ``final_status``. If either
    ``pending_reads`` or ``running_reads`` is set, progression is read-count based instead and the
    clock is ignored: the k-th ``GET /v1/validation/runs/{id}`` shows ``pending`` while
    k <= pending_reads, ``running`` while k <= pending_reads + running_reads, and the final status
    after that (a missing count means 0). So ``pending_reads=1, running_reads=2`` gives pending,
    running, running, completed.

    ``fields`` maps a field name to ``(correct, total)``; one result row is generated per field and
    document (documents ``doc_1`` .. ``doc_N``, N being the largest total). ``accuracy`` is what the
    run reports when completed; when None it is the overall correct/total of ``fields``.
    """

    pending_seconds: float = 2.0
    running_seconds: float = 8.0
    pending_reads: int | None = None
    running_reads: int | None = None
    final_status: FinalStatus = "completed"
    accuracy: float | None = None
    fields: Mapping[str, tuple[int, int]] = field(default_factory=_demo_fields)

    def __post_init__(self) -> None:
        if self.final_status not in FINAL_STATUSES:
            raise ValueError(f"final_status must be 'completed' or 'failed', not {self.final_status!r}")
        if self.pending_seconds < 0 or self.running_seconds < 0:
            raise ValueError("pending_seconds and running_seconds must not be negative")
        for name, reads in (("pending_reads", self.pending_reads), ("running_reads", self.running_reads)):
            if reads is not None and reads < 0:
                raise ValueError(f"{name} must not be negative")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError("accuracy must be between 0 and 1")
        for name, (correct, total) in self.fields.items():
            if total < 0 or not 0 <= correct <= total:
                raise ValueError(f"field {name!r}: need 0 <= correct <= total, got ({correct}, {total})")
        # Behaviours are shared between runs: freeze the mapping so no run can alter another's script.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    @property
    def counts_reads(self) -> bool:
        """True when progression follows GET counts rather than the clock."""
        return self.pending_reads is not None or self.running_reads is not None

    def status_after_reads(self, reads: int) -> str:
        """Status shown by the ``reads``-th GET of the run (0 = not read yet, which shows pending)."""
        pending = self.pending_reads or 0
        running = self.running_reads or 0
        if reads <= pending:
            return PENDING
        if reads <= pending + running:
            return RUNNING
        return self.final_status

    def status_after_seconds(self, elapsed: float) -> str:
        """Status shown ``elapsed`` seconds after the run was created."""
        if elapsed < self.pending_seconds:
            return PENDING
        if elapsed < self.pending_seconds + self.running_seconds:
            return RUNNING
        return self.final_status

    @property
    def seconds_to_final(self) -> float:
        """Seconds from creation to the final status under clock-based progression."""
        return self.pending_seconds + self.running_seconds

    @property
    def total_comparisons(self) -> int:
        """Number of result rows a completed run has."""
        return sum(total for _, total in self.fields.values())

    @property
    def documents(self) -> int:
        """Number of distinct documents the result rows cover."""
        return max((total for _, total in self.fields.values()), default=0)

    @property
    def effective_accuracy(self) -> float | None:
        """Accuracy a completed run reports: the explicit value, else overall correct/total."""
        if self.accuracy is not None:
            return self.accuracy
        total = self.total_comparisons
        if total == 0:
            return None
        return round(sum(correct for correct, _ in self.fields.values()) / total, 4)


def row_is_correct(row: Mapping[str, Any]) -> bool:
    """The scoring rule the generated rows follow.

    A row the LLM judge looked at is correct iff ``judge_verdict == "correct"``; a row it did not
    look at (verdict null) is correct iff the matcher found an ``exact`` or ``fuzzy`` match.
    """
    verdict = row.get("judge_verdict")
    if verdict is not None:
        return bool(verdict == "correct")
    return row.get("match_type") in {"exact", "fuzzy"}


_COMPANIES = (
    "Acme Logistics GmbH",
    "Nordwind Handels AG",
    "Blue Harbor Foods Ltd",
    "Kestrel Office Supply Inc",
    "Meridian Parts BV",
    "Oakline Consulting SARL",
)
_AMOUNT_WORDS = ("amount", "total", "price", "tax", "sum", "net", "gross")
_NAME_WORDS = ("name", "vendor", "supplier", "customer", "company", "payee")


def _is_amount(field_name: str) -> bool:
    return any(word in field_name.lower() for word in _AMOUNT_WORDS)


def business_value(field_name: str, index: int) -> str:
    """A plausible, deterministic value for ``field_name`` in document number ``index`` (0-based)."""
    lowered = field_name.lower()
    if "date" in lowered:
        return (date(2024, 9, 1) + timedelta(days=index)).isoformat()
    if _is_amount(lowered):
        cents = 123_450 + index * 7_919
        return f"{cents // 100:,}.{cents % 100:02d}"
    if any(word in lowered for word in _NAME_WORDS):
        return _COMPANIES[index % len(_COMPANIES)]
    if any(word in lowered for word in ("number", "_id", "ref", "code")):
        return f"INV-2024-{1001 + index:05d}"
    return f"{field_name.replace('_', ' ').title()} {index + 1}"


def _near_miss(field_name: str, value: str) -> str:
    """How an extractor might write a correct value differently (what a fuzzy match is for)."""
    if _is_amount(field_name):
        return value.replace(",", "") if "," in value else f"EUR {value}"
    if "-" in value:
        return value.replace("-", " ")
    return value.upper()


def _is_correct_position(index: int, correct: int, total: int) -> bool:
    """Spread ``correct`` hits evenly over ``total`` rows so failures are not all at the end."""
    return (index + 1) * correct // total - index * correct // total == 1


def generate_results(run_id: str, behaviour: RunBehaviour, created_at: str) -> list[dict[str, Any]]:
    """The per-field result rows of a completed run, ordered by document then field.

    Deterministic for a given run id and behaviour, so paging through them is stable. Roughly every
    third row carries a judge verdict; the others have a null verdict and a match_type of exact,
    fuzzy or no_match. Some incorrect rows have a null actual value (nothing was extracted).
    """
    rows: list[dict[str, Any]] = []
    field_list = list(behaviour.fields.items())
    for index in range(behaviour.documents):
        document_id = f"doc_{index + 1}"
        for position, (field_name, (correct, total)) in enumerate(field_list):
            if index >= total:
                continue
            rows.append(
                _result_row(
                    run_id=run_id,
                    document_id=document_id,
                    field_name=field_name,
                    index=index,
                    judged=(index + position) % 3 == 1,
                    correct=_is_correct_position(index, correct, total),
                    created_at=created_at,
                )
            )
    return rows


def _result_row(
    *,
    run_id: str,
    document_id: str,
    field_name: str,
    index: int,
    judged: bool,
    correct: bool,
    created_at: str,
) -> dict[str, Any]:
    expected = business_value(field_name, index)
    wrong = business_value(field_name, index + 7)
    actual: str | None
    similarity: float | None
    confidence: float | None
    verdict: str | None = None
    if judged:
        match_type = "fuzzy"
        if correct:
            actual, similarity, confidence, verdict = _near_miss(field_name, expected), 0.84, 0.91, "correct"
        else:
            actual, similarity, confidence, verdict = wrong, 0.58, 0.64, "incorrect"
    elif correct:
        if index % 2 == 0:
            match_type, actual, similarity, confidence = "exact", expected, 1.0, 0.98
        else:
            match_type, actual, similarity, confidence = "fuzzy", _near_miss(field_name, expected), 0.96, 0.93
    else:
        match_type = "no_match"
        if index % 2 == 0:
            actual, similarity, confidence = wrong, 0.12, 0.41
        else:
            actual, similarity, confidence = None, None, None
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"talonic-emulator:{run_id}:{document_id}:{field_name}")),
        "validation_run_id": run_id,
        "document_id": document_id,
        "field_name": field_name,
        "expected_value": expected,
        "actual_value": actual,
        "match_type": match_type,
        "similarity_score": similarity,
        "confidence": confidence,
        "judge_verdict": verdict,
        "created_at": created_at,
    }
