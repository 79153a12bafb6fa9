"""The retention policy: a realistic mix decided run by run, the merge of the two sources, the safety belts'
arithmetic, and properties (hypothesis) that hold for every input: active runs and baselines are never
selected, and every run gets exactly one reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talonic_watchdog.cleanup import (
    SELECTING_REASONS,
    Candidate,
    CleanupSettings,
    InvalidCleanupInputError,
    Reason,
    RetentionPolicy,
    blast_radius,
    build_inventory,
    recheck,
    requested_dry_run,
    select_outdated,
)
from talonic_watchdog.client import RunListing
from talonic_watchdog.config import Env
from talonic_watchdog.errors import ConfigurationError
from talonic_watchdog.models import RunStatus, ValidationRun

NOW = 1_796_385_600.0  # 2026-12-04T12:00:00Z
DAY = 86_400.0
POLICY = RetentionPolicy(retention_days=90, failed_retention_days=14, keep_newest=5, exempt_prefixes=("keep-",))


def at(age_days: float) -> datetime:
    return datetime.fromtimestamp(NOW - age_days * DAY, tz=UTC)


def run(
    run_id: str,
    status: RunStatus | None,
    age_days: float | None,
    golden: str | None = "gs-a",
    name: str | None = None,
    *,
    listed: bool = True,
) -> Candidate:
    """A run that finished `age_days` ago (created ten minutes earlier); pending and running runs were
    created `age_days` ago and have not finished."""
    finished = status in (RunStatus.COMPLETED, RunStatus.FAILED)
    created = completed = None
    if age_days is not None:
        created = at(age_days + 600 / DAY) if finished else at(age_days)
        completed = at(age_days) if finished else None
    return Candidate(
        run_id=run_id,
        status=status,
        name=name,
        golden_sample_id=golden,
        created_at=created,
        completed_at=completed,
        listed=listed,
    )


C, F, P, R = RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.PENDING, RunStatus.RUNNING


def test_a_realistic_mix_is_decided_run_by_run_with_a_reason_for_each() -> None:
    # given eight completed runs of golden sample A, failed and active runs, golden sample B with only two
    # completed runs (both baselines however old), runs without a golden sample, exemptions, odd records
    candidates = [
        *(run(f"a-done-{age}", C, age) for age in (1, 10, 30, 91, 95, 100, 120, 200)),
        run("c-done-90", C, 90, golden="gs-c"),
        run("a-failed-3", F, 3),
        run("a-failed-14", F, 14),
        run("a-failed-20", F, 20),
        run("a-pending-300", P, 300),
        run("a-running-100", R, 100),
        run("a-keep-365", C, 365, name="keep-quarterly-audit"),
        run("a-keep-failed-50", F, 50, name="keep-incident-4711"),
        run("a-almost-exempt", C, 365, name="Keep-not-the-prefix"),
        run("b-done-400", C, 400, golden="gs-b"),
        run("b-done-500", C, 500, golden="gs-b"),
        run("b-failed-15", F, 15, golden="gs-b"),
        *(run(f"none-done-{age}", C, age, golden=None) for age in (100, 200, 300, 400, 500, 600)),
        run("unknown-status", None, 500),
        run("unknown-age", C, None),
    ]
    # when the policy decides
    selection = select_outdated(candidates, POLICY, NOW)
    # then every run has exactly the expected decision
    decided = {d.candidate.run_id: (d.delete, d.reason) for d in selection.decisions}
    keep, delete = False, True
    assert decided == {
        # the newest five completed runs of gs-a are its baselines, however old (91 and 95 days)
        "a-done-1": (keep, Reason.BASELINE),
        "a-done-10": (keep, Reason.BASELINE),
        "a-done-30": (keep, Reason.BASELINE),
        "a-done-91": (keep, Reason.BASELINE),
        "a-done-95": (keep, Reason.BASELINE),
        "a-done-100": (delete, Reason.COMPLETED_EXPIRED),
        "a-done-120": (delete, Reason.COMPLETED_EXPIRED),
        "a-done-200": (delete, Reason.COMPLETED_EXPIRED),
        "c-done-90": (keep, Reason.BASELINE),  # a golden sample with one run: its baseline
        "a-failed-3": (keep, Reason.WITHIN_RETENTION),
        "a-failed-14": (keep, Reason.WITHIN_RETENTION),  # older than 14 days means strictly older
        "a-failed-20": (delete, Reason.FAILED_EXPIRED),
        "a-pending-300": (keep, Reason.ACTIVE),
        "a-running-100": (keep, Reason.ACTIVE),
        "a-keep-365": (keep, Reason.EXEMPT),
        "a-keep-failed-50": (keep, Reason.EXEMPT),
        "a-almost-exempt": (delete, Reason.COMPLETED_EXPIRED),  # prefixes are case-sensitive
        "b-done-400": (keep, Reason.BASELINE),
        "b-done-500": (keep, Reason.BASELINE),
        "b-failed-15": (delete, Reason.FAILED_EXPIRED),
        # runs without a golden sample are a group of their own: its newest five are kept
        "none-done-100": (keep, Reason.BASELINE),
        "none-done-200": (keep, Reason.BASELINE),
        "none-done-300": (keep, Reason.BASELINE),
        "none-done-400": (keep, Reason.BASELINE),
        "none-done-500": (keep, Reason.BASELINE),
        "none-done-600": (delete, Reason.COMPLETED_EXPIRED),
        "unknown-status": (keep, Reason.UNKNOWN_STATUS),
        "unknown-age": (keep, Reason.UNKNOWN_AGE),
    }
    # and the selection comes oldest first
    assert [d.candidate.run_id for d in selection.selected][:2] == ["none-done-600", "a-almost-exempt"]


def test_within_retention_when_the_golden_sample_has_more_than_k_recent_runs() -> None:
    candidates = [run(f"r{age}", C, age) for age in (1, 2, 3, 4, 5, 6, 7, 89, 90)]
    decided = {d.candidate.run_id: d.reason for d in select_outdated(candidates, POLICY, NOW).decisions}
    # older than 90 days means strictly older: a run of exactly 90 days stays
    assert [decided[f"r{age}"] for age in (6, 7, 89, 90)] == [Reason.WITHIN_RETENTION] * 4


def test_age_counts_from_created_at_when_a_run_has_no_completed_at() -> None:
    old_failed = Candidate(run_id="x", status=F, golden_sample_id="g", created_at=at(30))
    [decision] = select_outdated([old_failed], POLICY, NOW).decisions
    assert decision.delete
    assert decision.age_days == pytest.approx(30)


def test_the_inventory_merges_both_sources_by_id_and_the_table_fills_what_the_api_left_out() -> None:
    # given a listed run in the OpenAPI shape (no name) that the table knows by an exempt name, a listed run
    # the table also knows, and a run only the table knows
    listed = [
        ValidationRun(id="both-exempt", status=C, golden_sample_id="g", completed_at=at(200)),
        ValidationRun(id="both", status=F, golden_sample_id="g", completed_at=at(200)),
    ]
    records = [
        {"run_id": "both-exempt", "status": "completed", "name": "keep-me", "golden_sample_id": "g"},
        {"run_id": "both", "status": "running", "name": "nightly"},  # stale: the API's status wins
        {"run_id": "old", "status": "completed", "golden_sample_id": "g", "completed_at": "2025-01-01T00:00:00.000Z"},
        {"run_id": "odd", "status": "archived", "completed_at": "not a date"},
        {"status": "completed"},  # no run id: ignored
    ]
    inventory = build_inventory(RunListing(runs=listed, unreadable=["bad run"]), records)
    by_id = {c.run_id: c for c in inventory.candidates}
    assert (inventory.listed, inventory.recorded, inventory.table_only, inventory.unreadable) == (2, 4, 2, 1)
    assert by_id["both-exempt"].name == "keep-me"
    assert by_id["both-exempt"].listed
    assert by_id["both"].status is F
    assert not by_id["old"].listed
    assert by_id["odd"].status is None
    assert by_id["odd"].completed_at is None
    decided = {d.candidate.run_id: d.reason for d in select_outdated(inventory.candidates, POLICY, NOW).decisions}
    assert decided["both-exempt"] is Reason.EXEMPT
    assert decided["odd"] is Reason.UNKNOWN_STATUS


def test_a_run_read_again_is_judged_on_what_talonic_says_now() -> None:
    # given golden sample g with five recent completed runs and one outdated run known from the table
    recent = [run(f"r{age}", C, age, golden="g") for age in (1, 2, 3, 4, 5)]
    stale = run("stale", C, 200, golden="g", listed=False)
    selection = select_outdated([*recent, stale], POLICY, NOW)
    assert [d.candidate.run_id for d in selection.selected] == ["stale"]

    def fresh(**fields: object) -> ValidationRun:
        base: dict[str, object] = {"id": "stale", "status": C, "golden_sample_id": "g", "completed_at": at(200)}
        return ValidationRun(**(base | fields))  # type: ignore[arg-type]

    # then unchanged, it is still outdated
    assert recheck(stale, fresh(), POLICY, NOW, selection).reason is Reason.COMPLETED_EXPIRED
    # and running again, or renamed into an exemption, or moved to another golden sample, it is kept
    assert recheck(stale, fresh(status=R), POLICY, NOW, selection).reason is Reason.ACTIVE
    assert recheck(stale, fresh(name="keep-x"), POLICY, NOW, selection).reason is Reason.EXEMPT
    assert recheck(stale, fresh(golden_sample_id="other"), POLICY, NOW, selection).reason is Reason.CHANGED
    # and if it finished more recently than the fifth-newest baseline, it is a baseline now
    assert recheck(stale, fresh(completed_at=at(2.5)), POLICY, NOW, selection).reason is Reason.BASELINE


def test_blast_radius_by_count_and_by_share() -> None:
    assert blast_radius(100, 1000, max_deletions=100, max_share=0.5) is None
    assert blast_radius(101, 1000, max_deletions=100, max_share=0.5) == (
        "would delete 101 of the 1000 runs seen, more than CleanupMaxDeletions (100)"
    )
    assert blast_radius(50, 100, max_deletions=100, max_share=0.5) is None
    assert blast_radius(51, 100, max_deletions=100, max_share=0.5) == (
        "would delete 51 of the 100 runs seen (51%), more than CleanupMaxDeletionShare (50%)"
    )
    assert blast_radius(0, 0, max_deletions=0, max_share=0.0) is None
    assert blast_radius(1, 10, max_deletions=0, max_share=1.0) is not None


@pytest.mark.parametrize(
    ("event", "dry_run"),
    [
        (None, False),
        ({}, False),
        ({"source": "schedule"}, False),
        ({"dry_run": True}, True),
        ({"dry_run": False}, False),
    ],
)
def test_a_request_can_ask_for_a_dry_run(event: object, dry_run: bool) -> None:
    assert requested_dry_run(event) is dry_run


@pytest.mark.parametrize("event", [{"dryrun": True}, {"dry_run": "true"}, {"dry_run": 1}, ["dry_run"], "dry_run"])
def test_a_malformed_request_is_refused_rather_than_guessed(event: object) -> None:
    with pytest.raises(InvalidCleanupInputError):
        requested_dry_run(event)


def test_settings_default_to_a_dry_run_with_the_safe_defaults() -> None:
    settings = CleanupSettings.from_env(Env({}))
    assert settings.dry_run is True
    assert settings.policy == RetentionPolicy(90, 14, 5, ())
    assert (settings.max_deletions, settings.max_deletion_share, settings.workers) == (100, 0.5, 24)


def test_settings_read_the_template_variables() -> None:
    settings = CleanupSettings.from_env(
        Env(
            {
                "CLEANUP_RETENTION_DAYS": "30",
                "CLEANUP_FAILED_RETENTION_DAYS": "7",
                "CLEANUP_KEEP_NEWEST_PER_GOLDEN_SAMPLE": "3",
                "CLEANUP_EXEMPT_NAME_PREFIXES": " keep-, audit- ,,",
                "CLEANUP_DRY_RUN": "False",
                "CLEANUP_MAX_DELETIONS": "10",
                "CLEANUP_MAX_DELETION_SHARE": "0.25",
            }
        )
    )
    assert settings.policy == RetentionPolicy(30, 7, 3, ("keep-", "audit-"))
    assert settings.dry_run is False
    assert (settings.max_deletions, settings.max_deletion_share) == (10, 0.25)


@pytest.mark.parametrize("value", ["yes", "flase", "0"])
def test_a_dry_run_setting_that_is_not_true_or_false_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="CLEANUP_DRY_RUN"):
        CleanupSettings.from_env(Env({"CLEANUP_DRY_RUN": value}))


def test_an_empty_exempt_prefix_is_refused_because_it_would_exempt_everything() -> None:
    with pytest.raises(ValueError, match="empty"):
        RetentionPolicy(exempt_prefixes=("",))


# -- properties ------------------------------------------------------------------------------------------

statuses = st.sampled_from([C, F, P, R, None])
ages = st.one_of(st.none(), st.floats(min_value=-5, max_value=1000, allow_nan=False))
names = st.sampled_from([None, "nightly", "keep-me", "pin-this", "Keep-not"])
goldens = st.sampled_from([None, "g1", "g2", "g3"])


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(min_value=0, max_value=40))
    candidates = []
    for index in range(count):
        created, completed = draw(ages), draw(ages)
        candidates.append(
            Candidate(
                run_id=f"run-{index}",
                status=draw(statuses),
                name=draw(names),
                golden_sample_id=draw(goldens),
                created_at=None if created is None else at(created),
                completed_at=None if completed is None else at(completed),
                listed=draw(st.booleans()),
            )
        )
    return candidates


policies = st.builds(
    RetentionPolicy,
    retention_days=st.integers(min_value=1, max_value=400),
    failed_retention_days=st.integers(min_value=1, max_value=400),
    keep_newest=st.integers(min_value=0, max_value=6),
    exempt_prefixes=st.sampled_from([(), ("keep-",), ("keep-", "pin-")]),
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(candidates=candidate_lists(), policy=policies)
def test_no_pending_running_or_unknown_run_is_ever_selected(
    candidates: list[Candidate], policy: RetentionPolicy
) -> None:
    for decision in select_outdated(candidates, policy, NOW).selected:
        assert decision.candidate.status in (C, F)


@PROPERTY
@given(candidates=candidate_lists(), policy=policies)
def test_none_of_the_newest_k_completed_runs_of_a_golden_sample_is_ever_selected(
    candidates: list[Candidate], policy: RetentionPolicy
) -> None:
    for decision in select_outdated(candidates, policy, NOW).selected:
        mine = decision.candidate
        if mine.status is not C:
            continue
        assert mine.timestamp is not None
        # at least K other completed runs of the same golden sample are at least as new as this one
        as_new = [
            other
            for other in candidates
            if other.run_id != mine.run_id
            and other.status is C
            and other.golden_sample_id == mine.golden_sample_id
            and other.timestamp is not None
            and other.timestamp >= mine.timestamp
        ]
        assert len(as_new) >= policy.keep_newest


@PROPERTY
@given(candidates=candidate_lists(), policy=policies)
def test_every_run_gets_one_decision_and_a_selected_run_is_older_than_its_retention_and_not_exempt(
    candidates: list[Candidate], policy: RetentionPolicy
) -> None:
    selection = select_outdated(candidates, policy, NOW)
    assert sorted(d.candidate.run_id for d in selection.decisions) == sorted(c.run_id for c in candidates)
    for decision in selection.decisions:
        assert decision.delete == (decision.reason in SELECTING_REASONS)
        if decision.delete:
            limit = policy.retention_days if decision.candidate.status is C else policy.failed_retention_days
            assert decision.age_days is not None
            assert decision.age_days > limit
            assert not policy.is_exempt(decision.candidate.name)


@PROPERTY
@given(candidates=candidate_lists(), policy=policies, fresh_status=statuses, fresh_age=ages)
def test_reading_a_run_again_never_selects_an_active_run_or_a_new_baseline(
    candidates: list[Candidate], policy: RetentionPolicy, fresh_status: RunStatus | None, fresh_age: float | None
) -> None:
    selection = select_outdated(candidates, policy, NOW)
    for decision in selection.selected:
        if fresh_status is None:
            continue  # an unknown status never parses into a ValidationRun: the executor keeps it
        fresh = ValidationRun(
            id=decision.candidate.run_id,
            status=fresh_status,
            golden_sample_id=decision.candidate.golden_sample_id,
            completed_at=None if fresh_age is None else at(fresh_age),
        )
        again = recheck(decision.candidate, fresh, policy, NOW, selection)
        if again.delete:
            assert fresh_status in (C, F)
            if fresh_status is C:
                # it ranks below every baseline of its golden sample
                assert not selection.is_baseline(Candidate.from_run(fresh).filled_from(decision.candidate))
