"""Scheduled cleanup of outdated validation runs. Deletion is permanent, so every step errs towards keeping.

1. **Inventory.** Candidates come from the list API (newest 100, or every page if Talonic ever paginates)
   and from the runs table (which reaches further back), merged by run id; the API's fields win, the table
   fills what the API left out (the OpenAPI shape has no `name`, which exemptions need).
2. **Policy** (`select_outdated`, a pure function). Every run gets a decision and a reason. Kept: unknown
   status, pending or running, an exempt name prefix, unknown age, one of the newest K completed runs of
   its golden sample (the baselines), or within retention. Selected: completed runs older than
   `retention_days`, failed runs older than `failed_retention_days`. Age counts from `completed_at`, else
   `created_at`.
3. **Safety belts.** Dry run is the default; a manual `{"dry_run": true}` can only make a run drier. A cap
   on deletions per run, as a count and as a share of the runs seen, blocks the whole run before anything
   is deleted, and alerts.
4. **Executor.** Bounded concurrency (threads) behind an adaptive rate limiter per key (ratelimiter.py).
   A run known only from the table is read again first (read key) and judged again on what Talonic says
   now. Deletes use the write key and an `Idempotency-Key`. 404 counts as already gone; a 401 or 403 stops
   every further deletion at once; any other failure is that run's alone. No deletion starts once the
   Lambda's remaining time is below a reserve: what is left is reported as deferred and the next run
   picks it up.
5. **Report and audit.** One structured log line per deleted run; a report returned and published to SNS.

Side effects other than the HTTP calls (the runs table, logs) happen on the calling thread, not in workers.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from talonic_watchdog import clock
from talonic_watchdog.alerts import Alert, AlertKind, Severity, render
from talonic_watchdog.client import RunListing, TalonicClient
from talonic_watchdog.config import Env
from talonic_watchdog.errors import (
    ConfigurationError,
    TalonicBadResponseError,
    TalonicError,
    TalonicInsufficientScopeError,
    TalonicNotFoundError,
    TalonicRateLimitedError,
    TalonicServerError,
    TalonicTransportError,
    TalonicUnauthorizedError,
    UnknownRunStatusError,
    WatchdogError,
)
from talonic_watchdog.models import RunStatus, ValidationRun, parse_timestamp
from talonic_watchdog.ratelimiter import AdaptiveRateLimiter, LimiterSettings
from talonic_watchdog.runs_table import RunsTable

logger = logging.getLogger(__name__)

DAY = 86_400.0
DEFAULT_WORKERS = 24
MAX_WORKERS = 32
# Seconds of the Lambda's time kept back for writing the table, publishing the report and returning.
DEFAULT_RESERVE_SECONDS = 20.0
# A deletion is started only with at least this much time for it (beyond the reserve).
MIN_CALL_SECONDS = 5.0
CALL_CAP_SECONDS = 20.0
LIST_CAP_SECONDS = 60.0
# A 429 is Talonic saying "later", not a failure: a run is retried this often (and never past the deadline).
MAX_ATTEMPTS_PER_RUN = 25
# Runs listed by id in the returned report, and in the SNS message (counts are always complete).
MAX_LISTED_RUNS = 1000
MAX_RUNS_IN_MESSAGE = 20
REQUEST_FIELDS = frozenset({"source", "dry_run"})


class CleanupUnauthorizedError(WatchdogError):
    """Talonic refused a cleanup key (401), or the key lacks the scope (403): cleanup stopped at once."""


class CleanupApiUnavailableError(WatchdogError):
    """The run list could not be read: nothing was judged, nothing was deleted."""


class InvalidCleanupInputError(WatchdogError):
    """The invocation's event is not a cleanup request; nothing was called."""


class Reason(StrEnum):
    """Why a run was kept or selected. The policy gives every run exactly one."""

    UNKNOWN_STATUS = "unknown_status"
    ACTIVE = "active"  # pending or running: never touched
    EXEMPT = "exempt"  # name starts with an exempt prefix
    UNKNOWN_AGE = "unknown_age"  # neither completed_at nor created_at
    BASELINE = "baseline"  # one of the newest K completed runs of its golden sample
    WITHIN_RETENTION = "within_retention"
    CHANGED = "changed"  # on re-reading, the run belongs to another golden sample than recorded
    COMPLETED_EXPIRED = "completed_expired"
    FAILED_EXPIRED = "failed_expired"


SELECTING_REASONS = frozenset({Reason.COMPLETED_EXPIRED, Reason.FAILED_EXPIRED})


# -- candidates --------------------------------------------------------------------------------------------


def _timestamp(value: object) -> datetime | None:
    try:
        return parse_timestamp(value, field_name="timestamp") if isinstance(value, str) else None
    except TalonicBadResponseError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _status(value: object) -> RunStatus | None:
    try:
        return RunStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A run as cleanup judges it. `status` None means unknown (or missing). `listed` says whether the list
    API showed it just now; a run known only from the runs table is read again before it is deleted."""

    run_id: str
    status: RunStatus | None
    name: str | None = None
    golden_sample_id: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    listed: bool = True
    raw_status: str | None = None

    @classmethod
    def from_run(cls, run: ValidationRun) -> Candidate:
        return cls(
            run_id=run.id,
            status=run.status,
            name=run.name,
            golden_sample_id=run.golden_sample_id,
            created_at=run.created_at,
            completed_at=run.completed_at,
            listed=True,
            raw_status=run.status.value,
        )

    @classmethod
    def from_record(cls, item: dict[str, Any]) -> Candidate | None:
        run_id = _text(item.get("run_id"))
        if run_id is None:
            return None
        return cls(
            run_id=run_id,
            status=_status(item.get("status")),
            name=_text(item.get("name")),
            golden_sample_id=_text(item.get("golden_sample_id")),
            created_at=_timestamp(item.get("created_at")),
            completed_at=_timestamp(item.get("completed_at")),
            listed=False,
            raw_status=_text(item.get("status")),
        )

    def filled_from(self, other: Candidate) -> Candidate:
        """This candidate, with the fields it lacks taken from `other` (the same run, from another source)."""
        return replace(
            self,
            name=self.name or other.name,
            golden_sample_id=self.golden_sample_id or other.golden_sample_id,
            created_at=self.created_at or other.created_at,
            completed_at=self.completed_at or other.completed_at,
        )

    @property
    def timestamp(self) -> datetime | None:
        """When the run finished, else when it was created: what its age counts from."""
        return self.completed_at or self.created_at

    def age_days(self, now: float) -> float | None:
        moment = self.timestamp
        return None if moment is None else (now - moment.timestamp()) / DAY


@dataclass(frozen=True, slots=True)
class Inventory:
    candidates: list[Candidate]
    listed: int
    recorded: int
    table_only: int
    unreadable: int
    paginated: bool


def build_inventory(listing: RunListing, records: Iterable[dict[str, Any]]) -> Inventory:
    """The list API's runs and the runs table's records, merged by run id (the API's fields first)."""
    merged: dict[str, Candidate] = {}
    for run in listing.runs:
        merged[run.id] = Candidate.from_run(run)
    recorded = table_only = 0
    for item in records:
        candidate = Candidate.from_record(item)
        if candidate is None:
            continue
        recorded += 1
        listed = merged.get(candidate.run_id)
        if listed is None:
            merged[candidate.run_id] = candidate
            table_only += 1
        else:
            merged[candidate.run_id] = listed.filled_from(candidate)
    return Inventory(
        candidates=list(merged.values()),
        listed=len(listing.runs),
        recorded=recorded,
        table_only=table_only,
        unreadable=len(listing.unreadable),
        paginated=listing.paginated,
    )


# -- the policy ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention_days: float = 90
    failed_retention_days: float = 14
    keep_newest: int = 5
    exempt_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.retention_days <= 0 or self.failed_retention_days <= 0:
            raise ValueError("retention periods must be positive")
        if self.keep_newest < 0:
            raise ValueError("keep_newest must not be negative")
        if any(not prefix for prefix in self.exempt_prefixes):
            raise ValueError("an exempt prefix must not be empty (it would exempt every run)")

    def is_exempt(self, name: str | None) -> bool:
        return name is not None and name.startswith(self.exempt_prefixes)

    def describe(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "failed_retention_days": self.failed_retention_days,
            "keep_newest_per_golden_sample": self.keep_newest,
            "exempt_name_prefixes": list(self.exempt_prefixes),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    candidate: Candidate
    delete: bool
    reason: Reason
    age_days: float | None


# How baselines are ranked: newest first by age timestamp, then creation.
_Rank = tuple[float, float]


def _rank(candidate: Candidate) -> _Rank:
    moment = candidate.timestamp
    created = candidate.created_at
    return (
        moment.timestamp() if moment is not None else float("-inf"),
        created.timestamp() if created is not None else float("-inf"),
    )


@dataclass(frozen=True, slots=True)
class Selection:
    decisions: list[Decision]
    # Per golden sample, the rank of its K-th newest completed run; None: every completed run is a baseline.
    baseline_floors: dict[str | None, _Rank | None]
    keep_newest: int

    @property
    def selected(self) -> list[Decision]:
        """The runs to delete, oldest first (what is left for a later run is then the newest)."""
        chosen = [decision for decision in self.decisions if decision.delete]
        return sorted(chosen, key=lambda decision: (-(decision.age_days or 0.0), decision.candidate.run_id))

    @property
    def kept(self) -> list[Decision]:
        return [decision for decision in self.decisions if not decision.delete]

    def is_baseline(self, candidate: Candidate) -> bool:
        """Would this completed run be among the newest K of its golden sample? (Ties are baselines.)"""
        if self.keep_newest == 0:
            return False
        floor = self.baseline_floors.get(candidate.golden_sample_id)
        return floor is None or _rank(candidate) >= floor


def judge(candidate: Candidate, policy: RetentionPolicy, now: float, *, baseline: bool) -> Decision:
    """One run's decision. The order of the rules is the order of their precedence."""
    age = candidate.age_days(now)

    def keep(reason: Reason) -> Decision:
        return Decision(candidate, delete=False, reason=reason, age_days=age)

    status = candidate.status
    if status is None:
        return keep(Reason.UNKNOWN_STATUS)
    if status in (RunStatus.PENDING, RunStatus.RUNNING):
        return keep(Reason.ACTIVE)
    if policy.is_exempt(candidate.name):
        return keep(Reason.EXEMPT)
    if age is None:
        return keep(Reason.UNKNOWN_AGE)
    if status is RunStatus.COMPLETED:
        if baseline:
            return keep(Reason.BASELINE)
        if age > policy.retention_days:
            return Decision(candidate, delete=True, reason=Reason.COMPLETED_EXPIRED, age_days=age)
    elif status is RunStatus.FAILED and age > policy.failed_retention_days:
        return Decision(candidate, delete=True, reason=Reason.FAILED_EXPIRED, age_days=age)
    return keep(Reason.WITHIN_RETENTION)


def select_outdated(candidates: Iterable[Candidate], policy: RetentionPolicy, now: float) -> Selection:
    """Decide every run: which are outdated, and why each of the others is kept. Pure: no I/O."""
    unique = list({candidate.run_id: candidate for candidate in candidates}.values())
    groups: dict[str | None, list[Candidate]] = {}
    for candidate in unique:
        if candidate.status is RunStatus.COMPLETED and candidate.timestamp is not None:
            groups.setdefault(candidate.golden_sample_id, []).append(candidate)
    baselines: set[str] = set()
    floors: dict[str | None, _Rank | None] = {}
    k = policy.keep_newest
    for golden, runs in groups.items():
        runs.sort(key=_rank, reverse=True)
        if k == 0:
            continue
        baselines.update(run.run_id for run in runs[:k])
        floors[golden] = _rank(runs[k - 1]) if len(runs) >= k else None
    decisions = [judge(candidate, policy, now, baseline=candidate.run_id in baselines) for candidate in unique]
    return Selection(decisions=decisions, baseline_floors=floors, keep_newest=k)


def recheck(
    candidate: Candidate, fresh: ValidationRun, policy: RetentionPolicy, now: float, selection: Selection
) -> Decision:
    """Judge a run again on what Talonic says now (a run the runs table knew, read again before deletion)."""
    current = Candidate.from_run(fresh).filled_from(candidate)
    if fresh.golden_sample_id is not None and fresh.golden_sample_id != candidate.golden_sample_id:
        return Decision(current, delete=False, reason=Reason.CHANGED, age_days=current.age_days(now))
    baseline = current.status is RunStatus.COMPLETED and selection.is_baseline(current)
    return judge(current, policy, now, baseline=baseline)


def blast_radius(selected: int, seen: int, *, max_deletions: int, max_share: float) -> str | None:
    """Why this many deletions must not happen in one run, or None when they may."""
    if selected > max_deletions:
        return f"would delete {selected} of the {seen} runs seen, more than CleanupMaxDeletions ({max_deletions})"
    if seen and selected / seen > max_share:
        return (
            f"would delete {selected} of the {seen} runs seen ({selected / seen:.0%}), more than "
            f"CleanupMaxDeletionShare ({max_share:.0%})"
        )
    return None


# -- settings and input --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CleanupSettings:
    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    dry_run: bool = True
    max_deletions: int = 100
    max_deletion_share: float = 0.5
    workers: int = DEFAULT_WORKERS
    reserve_seconds: float = DEFAULT_RESERVE_SECONDS

    @classmethod
    def from_env(cls, env: Env) -> CleanupSettings:
        policy = RetentionPolicy(
            retention_days=env.number("CLEANUP_RETENTION_DAYS", 90, low=1, high=36500),
            failed_retention_days=env.number("CLEANUP_FAILED_RETENTION_DAYS", 14, low=1, high=36500),
            keep_newest=env.integer("CLEANUP_KEEP_NEWEST_PER_GOLDEN_SAMPLE", 5, low=0, high=10_000),
            exempt_prefixes=env.items("CLEANUP_EXEMPT_NAME_PREFIXES"),
        )
        return cls(
            policy=policy,
            dry_run=env.boolean("CLEANUP_DRY_RUN", True),
            max_deletions=env.integer("CLEANUP_MAX_DELETIONS", 100, low=0, high=100_000),
            max_deletion_share=env.number("CLEANUP_MAX_DELETION_SHARE", 0.5, low=0.0, high=1.0),
            workers=env.integer("CLEANUP_WORKERS", DEFAULT_WORKERS, low=1, high=MAX_WORKERS),
            reserve_seconds=env.number("CLEANUP_RESERVE_SECONDS", DEFAULT_RESERVE_SECONDS, low=1, high=600),
        )


def requested_dry_run(event: object) -> bool:
    """Whether the invocation asks for a dry run. It can only make a run drier: `false` changes nothing.

    Strict on purpose: a typo in a manual request ({"dryrun": true}) must not turn into a real run."""
    if event is None:
        return False
    if not isinstance(event, dict):
        raise InvalidCleanupInputError("the cleanup input must be a JSON object")
    unknown = sorted(set(event) - REQUEST_FIELDS)
    if unknown:
        raise InvalidCleanupInputError(f"unknown input field(s) {unknown}; allowed: {sorted(REQUEST_FIELDS)}")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidCleanupInputError("dry_run must be true or false (a JSON boolean)")
    return dry_run


# -- the deadline --------------------------------------------------------------------------------------------


class Deadline:
    """The Lambda's remaining time, less a reserve: when to stop starting deletions, and each call's budget."""

    def __init__(
        self,
        remaining_seconds: Callable[[], float],
        *,
        reserve_seconds: float = DEFAULT_RESERVE_SECONDS,
        min_call_seconds: float = MIN_CALL_SECONDS,
    ) -> None:
        self._remaining = remaining_seconds
        self.reserve_seconds = reserve_seconds
        self.min_call_seconds = min_call_seconds

    @classmethod
    def from_context(cls, context: Any, *, reserve_seconds: float = DEFAULT_RESERVE_SECONDS) -> Deadline:
        return cls(lambda: float(context.get_remaining_time_in_millis()) / 1000, reserve_seconds=reserve_seconds)

    def usable(self) -> float:
        return self._remaining() - self.reserve_seconds

    def can_start(self) -> bool:
        return self.usable() >= self.min_call_seconds

    def wait_allowance(self) -> float:
        """How long a request may wait for its turn and still leave itself time to run."""
        return max(0.0, self.usable() - self.min_call_seconds)

    def call_budget(self, cap: float = CALL_CAP_SECONDS) -> float:
        return max(1.0, min(cap, self.usable()))


# -- the executor --------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    FAILED = "failed"
    DEFERRED = "deferred"
    KEPT = "kept"


@dataclass(frozen=True, slots=True)
class RunResult:
    decision: Decision
    outcome: Outcome
    detail: str = ""  # the error's class name, why it was deferred, or why it was kept on re-reading
    fresh: ValidationRun | None = None


class _OutOfTime(Exception):
    pass


class _Stopped(Exception):
    pass


class CleanupExecutor:
    """Deletes selected runs with bounded concurrency behind one adaptive rate limiter per key."""

    def __init__(
        self,
        *,
        read_client: TalonicClient,
        write_client: TalonicClient,
        read_limiter: AdaptiveRateLimiter,
        write_limiter: AdaptiveRateLimiter,
        deadline: Deadline,
        policy: RetentionPolicy,
        now: float,
        workers: int = DEFAULT_WORKERS,
        max_attempts: int = MAX_ATTEMPTS_PER_RUN,
    ) -> None:
        self._read_client = read_client
        self._write_client = write_client
        self._read_limiter = read_limiter
        self._write_limiter = write_limiter
        self._deadline = deadline
        self._policy = policy
        self._now = now
        self._workers = workers
        self._max_attempts = max_attempts
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        self.unauthorized = False

    def run(self, selection: Selection, on_result: Callable[[RunResult], None]) -> None:
        """Process every selected run; `on_result` is called on this thread as each one finishes."""
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="cleanup") as pool:
            futures = [pool.submit(self._process, decision, selection) for decision in selection.selected]
            for future in as_completed(futures):
                on_result(future.result())

    def _process(self, decision: Decision, selection: Selection) -> RunResult:
        run_id = decision.candidate.run_id
        key = "read"
        try:
            if not decision.candidate.listed:
                try:
                    fresh = self._call(
                        self._read_client,
                        self._read_limiter,
                        lambda budget: self._read_client.get_run(run_id, budget_seconds=budget),
                    )
                except TalonicNotFoundError:
                    return RunResult(decision, Outcome.ALREADY_GONE)
                except UnknownRunStatusError:
                    return RunResult(decision, Outcome.KEPT, f"rechecked:{Reason.UNKNOWN_STATUS}")
                again = recheck(decision.candidate, fresh, self._policy, self._now, selection)
                if not again.delete:
                    return RunResult(decision, Outcome.KEPT, f"rechecked:{again.reason}", fresh=fresh)
            key = "write"
            try:
                self._call(
                    self._write_client,
                    self._write_limiter,
                    lambda budget: self._write_client.delete_run(
                        run_id, idempotency_key=f"watchdog-cleanup-{run_id}", budget_seconds=budget
                    ),
                )
            except TalonicNotFoundError:
                return RunResult(decision, Outcome.ALREADY_GONE)
            except (TalonicTransportError, TalonicServerError, TalonicBadResponseError):
                # The DELETE may have taken effect with its answer lost or garbled: look before calling it
                # failed, so that neither the report nor the audit log says a deleted run was kept.
                if self._gone(run_id):
                    return RunResult(decision, Outcome.DELETED, "answer_lost")
                raise
            return RunResult(decision, Outcome.DELETED)
        except (TalonicUnauthorizedError, TalonicInsufficientScopeError) as error:
            self._stop_all(_refusal(key, error), unauthorized=True)
            return RunResult(decision, Outcome.FAILED, type(error).__name__)
        except ConfigurationError as error:  # an empty or malformed key secret: no other run can do better
            self._stop_all(f"the {key} key cannot be used: {error}; cleanup stopped", unauthorized=False)
            return RunResult(decision, Outcome.FAILED, type(error).__name__)
        except _OutOfTime:
            return RunResult(decision, Outcome.DEFERRED, "deadline")
        except _Stopped:
            return RunResult(decision, Outcome.DEFERRED, "stopped")
        except Exception as error:  # one failed deletion must not stop the others
            logger.warning(
                "cleanup of a run failed", extra={"run_id": run_id, "error": type(error).__name__}, exc_info=True
            )
            return RunResult(decision, Outcome.FAILED, type(error).__name__)

    def _gone(self, run_id: str) -> bool:
        """Whether a read (read key) now answers 404 for the run; False whenever that cannot be known."""
        try:
            self._call(
                self._read_client,
                self._read_limiter,
                lambda budget: self._read_client.get_run(run_id, budget_seconds=budget),
            )
        except TalonicNotFoundError:
            return True
        except (TalonicError, _OutOfTime, _Stopped):
            return False
        return False

    def _call[T](self, client: TalonicClient, limiter: AdaptiveRateLimiter, call: Callable[[float], T]) -> T:
        """One API call paced by the limiter; 429s are retried here (the client raises them at once)."""
        last: TalonicRateLimitedError | None = None
        for _ in range(self._max_attempts):
            if self._stop.is_set():
                raise _Stopped
            if not self._deadline.can_start() or not limiter.acquire(self._deadline.wait_allowance()):
                raise _OutOfTime
            if self._stop.is_set():
                raise _Stopped
            try:
                result = call(self._deadline.call_budget())
            except TalonicRateLimitedError as error:
                limiter.on_rate_limited(error.retry_after_seconds, client.rate_limit)
                last = error
                continue
            except TalonicError:
                limiter.on_response(client.rate_limit)
                raise
            limiter.on_success(client.rate_limit)
            return result
        if last is None:  # unreachable: only a 429 goes round the loop again
            raise _OutOfTime
        raise last

    def _stop_all(self, reason: str, *, unauthorized: bool) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
                self.unauthorized = unauthorized
        self._stop.set()


def _refusal(key: str, error: TalonicError) -> str:
    if isinstance(error, TalonicInsufficientScopeError):
        needed = ", ".join(error.required_scopes) or ("write" if key == "write" else "read")
        return f"the {key} key lacks the {needed} scope (Talonic answered 403); cleanup stopped"
    return f"Talonic refused the {key} key (401: missing, invalid or revoked); cleanup stopped"


# -- the report ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunLine:
    """One run in the report and the audit log: never more than ids, an age and reasons (no keys, no values)."""

    run_id: str
    golden_sample_id: str | None
    age_days: float | None
    reason: str
    error: str | None = None  # the class name of what made it fail
    note: str | None = None  # why it was deferred or kept after reading it again; answer_lost: see _process

    @classmethod
    def of(cls, decision: Decision, *, error: str | None = None, note: str | None = None) -> RunLine:
        candidate = decision.candidate
        age = None if decision.age_days is None else round(decision.age_days, 1)
        return cls(candidate.run_id, candidate.golden_sample_id, age, decision.reason.value, error, note)

    def to_dict(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "run_id": self.run_id,
            "golden_sample_id": self.golden_sample_id,
            "age_days": self.age_days,
            "reason": self.reason,
        }
        if self.error:
            line["error"] = self.error
        if self.note:
            line["note"] = self.note
        return line

    def text(self) -> str:
        age = "age unknown" if self.age_days is None else f"{self.age_days:.0f} days"
        extra = "".join(f", {part}" for part in (self.error, self.note) if part)
        return f"{self.run_id} (golden sample {self.golden_sample_id or 'none'}, {age}, {self.reason}{extra})"


@dataclass
class CleanupReport:
    """What one cleanup run did. `examined` = sum of `kept` + deleted + already gone + failed + deferred
    (+ eligible, when nothing was attempted: a dry run, a blocked run or a refused read key)."""

    dry_run: bool
    policy: RetentionPolicy
    max_deletions: int
    max_deletion_share: float
    examined: int = 0
    listed: int = 0
    recorded: int = 0
    table_only: int = 0
    unreadable: int = 0
    eligible: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    would_delete: list[RunLine] = field(default_factory=list)
    deleted: list[RunLine] = field(default_factory=list)
    already_gone: list[RunLine] = field(default_factory=list)
    failed: list[RunLine] = field(default_factory=list)
    deferred: list[RunLine] = field(default_factory=list)
    blocked: str | None = None
    stopped: str | None = None
    unauthorized: bool = False
    requests: int = 0
    rate_limited: int = 0
    table_errors: int = 0
    started_at: float = 0.0

    @property
    def attempted(self) -> bool:
        return bool(self.deleted or self.already_gone or self.failed or self.deferred)

    def should_publish(self) -> bool:
        """Deleted or failed, a dry run, blocked or stopped, or left work for the next run (a run that only
        defers, night after night, means a quota or a deadline too tight: worth hearing about)."""
        return bool(self.deleted or self.failed or self.deferred or self.dry_run or self.blocked or self.stopped)

    def to_dict(self) -> dict[str, Any]:
        def ids(lines: list[RunLine]) -> list[dict[str, Any]]:
            return [line.to_dict() for line in lines[:MAX_LISTED_RUNS]]

        return {
            "dry_run": self.dry_run,
            "blocked": self.blocked,
            "stopped": self.stopped,
            "examined": self.examined,
            "eligible": self.eligible,
            "deleted": len(self.deleted),
            "already_gone": len(self.already_gone),
            "failed": len(self.failed),
            "deferred": len(self.deferred),
            "kept": dict(sorted(self.kept.items())),
            "sources": {
                "listed": self.listed,
                "recorded": self.recorded,
                "table_only": self.table_only,
                "unreadable": self.unreadable,
            },
            "runs": {
                "would_delete": ids(self.would_delete),
                "deleted": ids(self.deleted),
                "already_gone": ids(self.already_gone),
                "failed": ids(self.failed),
                "deferred": ids(self.deferred),
            },
            "requests": {"sent": self.requests, "rate_limited": self.rate_limited},
            "table_errors": self.table_errors,
            "policy": {
                **self.policy.describe(),
                "max_deletions": self.max_deletions,
                "max_deletion_share": self.max_deletion_share,
            },
        }

    def alert(self) -> Alert:
        kept_total = sum(self.kept.values())
        kept_text = ", ".join(f"{reason} {count}" for reason, count in sorted(self.kept.items())) or "none"
        facts = {
            "Examined": str(self.examined),
            "Eligible": str(self.eligible),
            "Deleted": str(len(self.deleted)),
            "Already gone": str(len(self.already_gone)),
            "Failed": str(len(self.failed)),
            "Deferred": str(len(self.deferred)),
            "Kept": f"{kept_total} ({kept_text})",
            "Dry run": "yes" if self.dry_run else "no",
            "Retention": f"completed {self.policy.retention_days:g} days, failed "
            f"{self.policy.failed_retention_days:g} days, newest {self.policy.keep_newest} per golden sample kept",
        }
        steps: list[str] = []
        if self.blocked:
            kind, severity = AlertKind.CLEANUP_BLOCKED, Severity.WARNING
            title = f"Cleanup blocked: {self.eligible} of {self.examined} runs would be deleted"
            description = (
                f"Cleanup deleted nothing: it {self.blocked}. A share this large usually means a wrong "
                "parameter or a runs table out of step with Talonic."
            )
            steps = [
                "Check RetentionDays, FailedRetentionDays and KeepNewestPerGoldenSample",
                "If the deletions are intended, raise CleanupMaxDeletions or CleanupMaxDeletionShare for one run",
            ]
            lines = self.would_delete
        elif self.dry_run:
            kind, severity = AlertKind.CLEANUP_REPORT, Severity.INFO
            title = f"Cleanup dry run: would delete {self.eligible} of {self.examined} runs"
            description = f"Dry run: nothing was deleted. {self.eligible} runs are outdated and would be deleted."
            steps = ["Set CleanupDryRun to false once the runs it would delete look right"]
            lines = self.would_delete
        else:
            kind = AlertKind.CLEANUP_REPORT
            severity = Severity.WARNING if self.failed or self.stopped else Severity.INFO
            problems = [f"{len(self.failed)} failed"] if self.failed else []
            problems += [f"{len(self.deferred)} deferred"] if self.deferred else []
            title = f"Cleanup deleted {len(self.deleted)} of {self.eligible} outdated runs" + (
                f" ({', '.join(problems)})" if problems else ""
            )
            if self.stopped:
                title = f"Cleanup stopped: {self.stopped.split(';')[0]}"
            description = (
                f"Deleted {len(self.deleted)} outdated validation runs; {len(self.already_gone)} were already gone."
            )
            if self.stopped:
                description = f"{self.stopped}. {description}"
                steps.append("Put a key with the read and write scopes into the write-key secret")
            if self.failed:
                steps.append("Failed deletions are retried by the next run; see the function's log for the errors")
            if self.deferred:
                steps.append("Deferred runs were left for the next run (time ran out or cleanup stopped)")
            lines = self.failed + self.deleted
        if lines:
            shown = lines[:MAX_RUNS_IN_MESSAGE]
            more = f"\n… and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
            description += "\n\n" + "\n".join(line.text() for line in shown) + more
        return Alert(
            kind=kind,
            severity=severity,
            title=title,
            description=description,
            dedupe_key=f"cleanup:{int(self.started_at)}",
            next_steps=steps,
            facts=facts,
        )


def publish_report(sns: Any, topic_arn: str, report: CleanupReport) -> str | None:
    """Publish the report when `report.should_publish()`; returns the SNS message id."""
    if not report.should_publish():
        return None
    response = sns.publish(**render(report.alert()).publish_kwargs(topic_arn))
    return str(response.get("MessageId")) if response.get("MessageId") else None


# -- one cleanup run -----------------------------------------------------------------------------------------


def _audit(message: str, line: RunLine, level: int = logging.INFO) -> None:
    logger.log(level, message, extra=line.to_dict())


def run_cleanup(
    *,
    settings: CleanupSettings,
    dry_run: bool,
    read_client: TalonicClient,
    write_client: TalonicClient,
    table: RunsTable,
    deadline: Deadline,
    now: Callable[[], float] = clock.now,
    sleep: Callable[[float], None] = clock.sleep,
    limiter_settings: LimiterSettings | None = None,
) -> CleanupReport:
    """List, judge, check the blast radius, then delete (unless dry or blocked), and report."""
    started = now()
    report = CleanupReport(
        dry_run=dry_run,
        policy=settings.policy,
        max_deletions=settings.max_deletions,
        max_deletion_share=settings.max_deletion_share,
        started_at=started,
    )
    requests_before = read_client.requests_sent + write_client.requests_sent
    try:
        listing = read_client.list_runs(budget_seconds=deadline.call_budget(cap=LIST_CAP_SECONDS))
    except (TalonicUnauthorizedError, TalonicInsufficientScopeError) as error:
        report.stopped = _refusal("read", error)
        report.unauthorized = True
        report.requests = read_client.requests_sent + write_client.requests_sent - requests_before
        return report
    except TalonicError as error:
        raise CleanupApiUnavailableError(f"could not list validation runs, nothing was deleted: {error}") from error

    inventory = build_inventory(listing, table.undeleted_runs())
    selection = select_outdated(inventory.candidates, settings.policy, started)
    selected = selection.selected
    report.examined = len(inventory.candidates)
    report.listed, report.recorded = inventory.listed, inventory.recorded
    report.table_only, report.unreadable = inventory.table_only, inventory.unreadable
    report.eligible = len(selected)
    report.kept.update(decision.reason.value for decision in selection.kept)
    logger.info(
        "cleanup judged the runs",
        extra={"examined": report.examined, "eligible": report.eligible, "kept": dict(report.kept)},
    )

    report.blocked = blast_radius(
        len(selected),
        report.examined,
        max_deletions=settings.max_deletions,
        max_share=settings.max_deletion_share,
    )
    if report.blocked or dry_run:
        report.would_delete = [RunLine.of(decision) for decision in selected]
        if report.blocked:
            logger.warning("cleanup blocked: nothing deleted", extra={"blocked": report.blocked})
        for line in report.would_delete:
            _audit(
                "validation run would be deleted (dry run)" if dry_run else "validation run not deleted (blocked)", line
            )
        report.requests = read_client.requests_sent + write_client.requests_sent - requests_before
        return report

    read_limiter = AdaptiveRateLimiter(limiter_settings, now=now, sleep=sleep)
    write_limiter = AdaptiveRateLimiter(limiter_settings, now=now, sleep=sleep)
    executor = CleanupExecutor(
        read_client=read_client,
        write_client=write_client,
        read_limiter=read_limiter,
        write_limiter=write_limiter,
        deadline=deadline,
        policy=settings.policy,
        now=started,
        workers=settings.workers,
    )

    executor.run(selection, lambda result: _apply(result, report, table, now))
    report.stopped = executor.stop_reason
    report.unauthorized = executor.unauthorized
    report.requests = read_client.requests_sent + write_client.requests_sent - requests_before
    report.rate_limited = read_limiter.stats().rate_limited + write_limiter.stats().rate_limited
    logger.info(
        "cleanup finished",
        extra={
            "deleted": len(report.deleted),
            "already_gone": len(report.already_gone),
            "failed": len(report.failed),
            "deferred": len(report.deferred),
            "requests": report.requests,
            "rate_limited": report.rate_limited,
            "write_limiter": asdict(write_limiter.stats()),
        },
    )
    return report


def _apply(result: RunResult, report: CleanupReport, table: RunsTable, now: Callable[[], float]) -> None:
    """Book one run's outcome: the report, the audit log line, the runs table."""
    decision, candidate = result.decision, result.decision.candidate
    failed = result.outcome is Outcome.FAILED
    line = RunLine.of(decision, error=result.detail if failed else None, note=None if failed else result.detail or None)
    try:
        if result.outcome is Outcome.DELETED:
            report.deleted.append(line)
            _audit("validation run deleted", line)
            table.mark_deleted(candidate.run_id, now=now(), reason=line.reason, previous_status=candidate.raw_status)
        elif result.outcome is Outcome.ALREADY_GONE:
            report.already_gone.append(line)
            _audit("validation run already gone", line)
            table.mark_deleted(candidate.run_id, now=now(), reason="already_gone", previous_status=candidate.raw_status)
        elif result.outcome is Outcome.KEPT:
            report.kept[result.detail] += 1
            _audit("validation run kept after reading it again", line)
            if result.fresh is not None:
                table.record(result.fresh, now=now(), source="cleanup")
        elif result.outcome is Outcome.FAILED:
            report.failed.append(line)
            _audit("validation run not deleted", line, logging.WARNING)
        else:
            report.deferred.append(line)
            _audit("validation run deferred to the next cleanup", line)
    except (ClientError, BotoCoreError) as error:
        # The deletion stands; the next run finds the record, reads the run again, gets 404 and marks it.
        report.table_errors += 1
        logger.warning("runs table not updated", extra={"run_id": candidate.run_id, "error": type(error).__name__})


__all__ = [
    "CleanupApiUnavailableError",
    "CleanupExecutor",
    "CleanupReport",
    "CleanupSettings",
    "CleanupUnauthorizedError",
    "Deadline",
    "InvalidCleanupInputError",
    "RetentionPolicy",
    "publish_report",
    "requested_dry_run",
    "run_cleanup",
    "select_outdated",
]
