"""The watch workflow's steps, without Lambda: prepare the input, create the run, poll it once.

The state machine carries one small JSON state between steps: `watch` (what to watch and how), `run` (the
latest look at the validation run) and `poll` (counters and the next wait). Each step takes the whole state
and returns it, updated; the exceptions below are matched by name in the state machine's Catch clauses.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from talonic_watchdog.client import TalonicClient
from talonic_watchdog.errors import (
    ConfigurationError,
    TalonicBadRequestError,
    TalonicBadResponseError,
    TalonicInsufficientScopeError,
    TalonicNotFoundError,
    TalonicRateLimitedError,
    TalonicServerError,
    TalonicTransportError,
    TalonicUnauthorizedError,
    UnknownRunStatusError,
    WatchdogError,
)
from talonic_watchdog.models import ValidationRun, format_timestamp
from talonic_watchdog.polling import DurationHistory, PollPolicy
from talonic_watchdog.runs_table import RunsTable

logger = logging.getLogger(__name__)

__all__ = [
    "ApiUnavailableError",
    "ConfigurationError",
    "CreateRejectedError",
    "InvalidWatchInputError",
    "RunNotFoundError",
    "UnknownRunStatusError",
    "WatchSettings",
    "WatchUnauthorizedError",
]


class InvalidWatchInputError(WatchdogError):
    """The execution's input is not a watch request; nothing was called."""


class RunNotFoundError(WatchdogError):
    """The validation run is gone (deleted, or it belongs to another organization)."""


class WatchUnauthorizedError(WatchdogError):
    """Talonic refused the key (401) or its scope (403), even after fetching the secret again."""


class ApiUnavailableError(WatchdogError):
    """Talonic kept failing (5xx, timeouts, unreadable answers) for longer than the watch tolerates."""


class CreateRejectedError(WatchdogError):
    """Talonic refused to create the validation run (bad request, or golden sample or job run unknown)."""


# Fields a caller may set in the execution input; anything else is a typo worth failing on.
INPUT_FIELDS = frozenset(
    {"validation_run_id", "dataspace_run_id", "golden_sample_id", "name", "accuracy_threshold", "deadline_minutes"}
)
MAX_DEADLINE_MINUTES = 1380  # the state machine's own TimeoutSeconds is 25 h
MAX_CONSECUTIVE_FAILURES = 6


@dataclass(frozen=True, slots=True)
class WatchSettings:
    deadline_minutes: float
    default_golden_sample_id: str | None = None


def _uuid_field(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidWatchInputError(f"{name} must be a UUID string, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError as error:
        raise InvalidWatchInputError(f"{name} is not a UUID: {value[:80]!r}") from error


def _number_field(request: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidWatchInputError(f"{name} must be a number between {low} and {high}")
    if not low <= value <= high:
        raise InvalidWatchInputError(f"{name} is {value}, outside {low}..{high}")
    return float(value)


def prepare_watch(
    request: object, *, settings: WatchSettings, execution_name: str, now: float, execution_arn: str | None = None
) -> dict[str, Any]:
    """Validate the execution input and complete it into the workflow's state. Makes no API call.

    The accuracy threshold stays unset unless the input overrides it: the alert step resolves it (per golden
    sample, else the stack's default), since only then is the golden sample of an existing run known."""
    if not isinstance(request, dict):
        raise InvalidWatchInputError("the input must be a JSON object")
    unknown = sorted(set(request) - INPUT_FIELDS)
    if unknown:
        raise InvalidWatchInputError(f"unknown input field(s) {unknown}; allowed: {sorted(INPUT_FIELDS)}")
    run_id = _uuid_field(request, "validation_run_id")
    job_run_id = _uuid_field(request, "dataspace_run_id")
    golden = _uuid_field(request, "golden_sample_id")
    name = request.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        raise InvalidWatchInputError("name must be a non-empty string of at most 200 characters")
    threshold = _number_field(request, "accuracy_threshold", 0.0, 1.0)
    deadline_minutes = _number_field(request, "deadline_minutes", 1, MAX_DEADLINE_MINUTES)
    if run_id is None:
        if job_run_id is None:
            raise InvalidWatchInputError(
                "give validation_run_id to watch a run, or dataspace_run_id and golden_sample_id to create one"
            )
        golden = golden or settings.default_golden_sample_id
        if golden is None:
            raise InvalidWatchInputError(
                f"job run {job_run_id} has no golden_sample_id and the stack sets no default golden sample"
            )
    deadline = now + 60 * (deadline_minutes or settings.deadline_minutes)
    watch: dict[str, Any] = {"execution_name": execution_name, "started_at": now, "deadline_at": deadline}
    if execution_arn:
        watch["execution_arn"] = execution_arn
    if threshold is not None:
        watch["accuracy_threshold"] = threshold
    if run_id is not None:
        watch["validation_run_id"] = run_id
    if job_run_id is not None:
        watch["dataspace_run_id"] = job_run_id
    if golden is not None:
        watch["golden_sample_id"] = golden
    if name is not None:
        watch["name"] = name.strip()
    if run_id is None:
        watch["create_idempotency_key"] = create_idempotency_key(job_run_id, golden)  # type: ignore[arg-type]
    return {"watch": watch, "poll": {"polls": 0, "requests": 0, "consecutive_failures": 0}}


def create_idempotency_key(job_run_id: str, golden_sample_id: str) -> str:
    """Same job run and golden sample, same key: a retried or repeated create makes one run."""
    digest = hashlib.sha256(f"{job_run_id}:{golden_sample_id}".encode()).hexdigest()[:32]
    return f"watchdog-create-{digest}"


def run_summary(run: ValidationRun) -> dict[str, Any]:
    """The run as the state carries it: small, and free of per-field values."""
    summary: dict[str, Any] = {"id": run.id, "status": run.status.value}
    for name in ("name", "golden_sample_id", "dataspace_run_id", "accuracy", "total_comparisons"):
        value = getattr(run, name)
        if value is not None:
            summary[name] = value
    if run.created_at:
        summary["created_at"] = format_timestamp(run.created_at)
    if run.completed_at:
        summary["completed_at"] = format_timestamp(run.completed_at)
    if run.duration_seconds is not None:
        summary["duration_seconds"] = run.duration_seconds
    return summary


def create_run(
    state: dict[str, Any], *, client: TalonicClient, table: RunsTable, now: float, budget_seconds: float
) -> dict[str, Any]:
    watch = state["watch"]
    requests_before = client.requests_sent
    try:
        run = client.create_run(
            golden_sample_id=watch["golden_sample_id"],
            dataspace_run_id=watch.get("dataspace_run_id"),
            name=watch.get("name") or f"watchdog {watch.get('dataspace_run_id', '')}".strip(),
            idempotency_key=watch["create_idempotency_key"],
            budget_seconds=budget_seconds,
        )
    except (TalonicUnauthorizedError, TalonicInsufficientScopeError) as error:
        raise WatchUnauthorizedError(f"cannot create the validation run: {error}") from error
    except (TalonicBadRequestError, TalonicNotFoundError) as error:
        raise CreateRejectedError(f"Talonic rejected the validation run: {error}") from error
    except (TalonicServerError, TalonicTransportError, TalonicRateLimitedError, TalonicBadResponseError) as error:
        # Safe for the state machine to retry: the idempotency key makes a repeated create return the same run.
        raise ApiUnavailableError(f"could not create the validation run: {error}") from error
    table.record(run, now=now, source="create")
    watch["validation_run_id"] = run.id
    state["run"] = run_summary(run)
    state["poll"]["requests"] = state["poll"].get("requests", 0) + client.requests_sent - requests_before
    logger.info("validation run created", extra={"run_id": run.id, "golden_sample_id": run.golden_sample_id})
    return state


def poll_run(
    state: dict[str, Any],
    *,
    client: TalonicClient,
    table: RunsTable,
    policy: PollPolicy,
    now: float,
    budget_seconds: float,
) -> dict[str, Any]:
    """Look at the run once; set `poll.next` to wait, completed, failed, deadline or duplicate."""
    watch, poll = state["watch"], state["poll"]
    run_id = watch["validation_run_id"]
    if poll.get("polls", 0) == 0:
        other = table.claim_watch(run_id, watcher=watch["execution_name"], now=now, until=watch["deadline_at"])
        if other is not None:
            logger.info("run is already watched", extra={"run_id": run_id, "watched_by": other})
            poll["next"] = "duplicate"
            poll["watched_by"] = other
            return state
    seconds_to_deadline = watch["deadline_at"] - now
    elapsed = now - watch["started_at"]
    requests_before = client.requests_sent
    poll["polls"] = poll.get("polls", 0) + 1
    poll["elapsed_seconds"] = round(elapsed, 1)
    try:
        run = client.get_run(run_id, budget_seconds=budget_seconds)
    except TalonicNotFoundError as error:
        raise RunNotFoundError(f"validation run {run_id} is gone: {error}") from error
    except (TalonicUnauthorizedError, TalonicInsufficientScopeError) as error:
        raise WatchUnauthorizedError(f"cannot read validation run {run_id}: {error}") from error
    except TalonicRateLimitedError as error:
        poll["requests"] = poll.get("requests", 0) + client.requests_sent - requests_before
        poll["rate_limited"] = poll.get("rate_limited", 0) + 1
        if seconds_to_deadline <= 0:  # as below: the look at the deadline saw no status
            raise ApiUnavailableError(
                f"Talonic was still rate-limiting the watch of run {run_id} at its deadline "
                f"({poll['rate_limited']} polls rate-limited); last: {error}"
            ) from error
        wait = policy.wait_after_rate_limit(error.retry_after_seconds, seconds_to_deadline=seconds_to_deadline)
        return _wait_or_deadline(state, wait, seconds_to_deadline, policy.max_polls)
    except UnknownRunStatusError:
        raise
    except (TalonicServerError, TalonicTransportError, TalonicBadResponseError) as error:
        poll["requests"] = poll.get("requests", 0) + client.requests_sent - requests_before
        failures = poll.get("consecutive_failures", 0) + 1
        poll["consecutive_failures"] = failures
        poll["last_error"] = type(error).__name__
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise ApiUnavailableError(f"Talonic failed {failures} polls in a row; last: {error}") from error
        if seconds_to_deadline <= 0:
            # The look at the deadline saw no status: a "timed out" alert would guess "still unfinished".
            raise ApiUnavailableError(
                f"Talonic was still failing at the watch's deadline ({failures} failed polls in a row); last: {error}"
            ) from error
        wait = policy.wait_after_failure(failures, seconds_to_deadline=seconds_to_deadline)
        return _wait_or_deadline(state, wait, seconds_to_deadline, policy.max_polls)
    poll["requests"] = poll.get("requests", 0) + client.requests_sent - requests_before
    poll["consecutive_failures"] = 0
    poll.pop("last_error", None)
    previous_status = state.get("run", {}).get("status")
    state["run"] = run_summary(run)
    if run.golden_sample_id is None and watch.get("golden_sample_id"):
        # The OpenAPI shape omits it; the watch knows it, and baselines need it.
        run = replace(run, golden_sample_id=watch["golden_sample_id"])
        state["run"]["golden_sample_id"] = run.golden_sample_id
    if run.status.value != previous_status or run.status.is_final:
        table.record(run, now=now, source="watch")
    if run.status.is_final:
        poll["next"] = run.status.value
        poll.pop("wait_seconds", None)
        return state
    if "history" not in poll and run.golden_sample_id:
        history = DurationHistory.from_durations(table.completed_durations(run.golden_sample_id))
        poll["history"] = history.to_dict() if history else None
    wait = policy.next_wait(
        elapsed_seconds=elapsed,
        seconds_to_deadline=seconds_to_deadline,
        history=DurationHistory.from_dict(poll.get("history")),
        rate_limit=client.rate_limit,
        now=now,
    )
    return _wait_or_deadline(state, wait, seconds_to_deadline, policy.max_polls)


def _wait_or_deadline(state: dict[str, Any], wait: int, seconds_to_deadline: float, max_polls: int) -> dict[str, Any]:
    """Wait, unless the deadline has passed or the poll count reached its bound (which keeps the execution's
    history far below Step Functions' 25,000 events)."""
    poll = state["poll"]
    if seconds_to_deadline <= 0 or poll.get("polls", 0) >= max_polls:
        poll["next"] = "deadline"
        poll.pop("wait_seconds", None)
        return state
    poll["next"] = "wait"
    poll["wait_seconds"] = wait
    return state
