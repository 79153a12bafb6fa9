"""Per-field accuracy, worst fields, and business values kept out unless allowed."""

from __future__ import annotations

from talonic_watchdog.field_accuracy import field_accuracy, row_score, worst_fields
from talonic_watchdog.models import FieldResult


def row(
    field: str, verdict: str | None = None, match: str | None = None, expected: str = "INV-1", actual: str = "INV-7"
):  # type: ignore[no-untyped-def]
    return FieldResult(
        field_name=field,
        judge_verdict=verdict,
        match_type=match,
        document_id="doc_1",
        expected_value=expected,
        actual_value=actual,
    )


def test_the_judge_wins_over_the_match_type_and_unscored_rows_do_not_count():
    assert row_score(row("a", "correct", "no_match")) == 1.0
    assert row_score(row("a", "partial")) == 0.5
    assert row_score(row("a", "incorrect", "exact")) == 0.0
    assert row_score(row("a", None, "fuzzy")) == 1.0
    assert row_score(row("a", None, "no_match")) == 0.0
    assert row_score(row("a")) is None


def test_worst_fields_come_first_with_their_change_against_the_baseline():
    current = field_accuracy(
        [
            row("invoice", "incorrect"),
            row("invoice", "correct"),
            row("total", match="exact"),
            row("date", None, None),
            row("iban", "correct"),
            row("iban", "correct"),
        ]
    )
    baseline = field_accuracy([row("invoice", "correct"), row("total", "correct"), row("iban", "correct")])
    changes = worst_fields(current, baseline)
    # iban and total are fully correct and did not get worse: left out; date was never scored
    assert [change.field_name for change in changes] == ["invoice"]
    assert changes[0].describe() == "invoice: 1/2 correct (50 %), ▼ 50 pts vs baseline (100 %)"
    assert changes[0].examples == ()


def test_values_appear_only_when_allowed_and_are_clipped():
    current = field_accuracy([row("invoice", "incorrect", expected="INV-2026-0042", actual="X" * 80)])
    hidden = worst_fields(current, None)
    shown = worst_fields(current, None, include_examples=True)
    assert "INV-2026-0042" not in repr(hidden)
    assert shown[0].examples[0].startswith("doc_1: expected 'INV-2026-0042', got 'XXXX")
    assert len(shown[0].examples[0]) < 100
