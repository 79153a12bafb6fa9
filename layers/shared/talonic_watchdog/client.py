"""The Talonic validation-run client, on `requests`.

Why hand-written retry logic rather than urllib3's Retry: Talonic's rate limiting needs Retry-After *or*
X-RateLimit-Reset, a body flag (`"retryable": false`) that vetoes a retry, a refetch of a rotated key on
401/403, and a time budget that no sleep may overrun (a Lambda passes its remaining time). urllib3 does none
of the last three.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from talonic_watchdog.api_keys import KeySource
from talonic_watchdog.errors import (
    TalonicBadRequestError,
    TalonicBadResponseError,
    TalonicError,
    TalonicInsufficientScopeError,
    TalonicNotFoundError,
    TalonicRateLimitedError,
    TalonicServerError,
    TalonicTransportError,
    TalonicUnauthorizedError,
    WatchdogError,
)
from talonic_watchdog.models import FieldResult, ValidationRun
from talonic_watchdog.rate_limits import (
    Backoff,
    RateLimitState,
    parse_retry_after,
    read_rate_limit,
    server_wait_seconds,
)
from talonic_watchdog.redaction import redact

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.talonic.com"
RUNS_PATH = "/v1/validation/runs"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A paginated listing that never ends is a server bug; this bound keeps it from eating the time budget.
MAX_PAGES = 200


@dataclass(frozen=True, slots=True)
class RunListing:
    """The list endpoint's answer. `paginated` says whether Talonic sent a cursor: without one the list is
    capped at the newest 100 runs and older runs can only be found elsewhere (the runs table)."""

    runs: list[ValidationRun]
    unreadable: list[str] = field(default_factory=list)
    paginated: bool = False


class TalonicClient:
    """One client per container: a pooled HTTP session and a key source, shared by every invocation."""

    def __init__(
        self,
        base_url: str,
        keys: KeySource,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        retry_rate_limited: bool = True,
    ) -> None:
        """`retry_rate_limited=False` makes a 429 raise TalonicRateLimitedError at once (with
        `retry_after_seconds`), for callers that pace themselves (cleanup's rate limiter); 5xx, timeouts and
        connection errors are still retried here."""
        if not base_url.startswith(("https://", "http://")):
            raise WatchdogError(f"Talonic API URL must start with https:// (got {base_url!r})")
        self.base_url = base_url.rstrip("/")
        self._keys = keys
        self._session = session or requests.Session()
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._monotonic = monotonic
        self._now = now
        self._rng = rng
        self._retry_rate_limited = retry_rate_limited
        self._lock = threading.Lock()
        self._requests_sent = 0
        self.rate_limit: RateLimitState | None = None

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included: API requests are a budget, so callers count them."""
        return self._requests_sent

    # -- endpoints -------------------------------------------------------------------------------------

    def get_run(self, run_id: str, *, budget_seconds: float | None = None) -> ValidationRun:
        body = self._call("GET", _run_path(run_id), budget_seconds=budget_seconds)
        return ValidationRun.from_api(body)

    def list_runs(self, *, budget_seconds: float | None = None) -> RunListing:
        """Every listed run, newest first. Runs that do not parse are reported in `unreadable`, not fatal:
        one odd run must not blind cleanup or discovery to the others."""
        runs: list[ValidationRun] = []
        unreadable: list[str] = []
        paginated = False
        for item, page_had_cursor in self._paginate(RUNS_PATH, {}, budget_seconds=budget_seconds):
            paginated = paginated or page_had_cursor
            try:
                runs.append(ValidationRun.from_api(item))
            except TalonicBadResponseError as error:
                unreadable.append(str(error))
        return RunListing(runs=runs, unreadable=unreadable, paginated=paginated)

    def create_run(
        self,
        *,
        golden_sample_id: str,
        dataspace_run_id: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        budget_seconds: float | None = None,
    ) -> ValidationRun:
        payload: dict[str, Any] = {"golden_sample_id": golden_sample_id}
        if dataspace_run_id is not None:
            payload["dataspace_run_id"] = dataspace_run_id
        if name is not None:
            payload["name"] = name
        body = self._call(
            "POST",
            RUNS_PATH,
            json_body=payload,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            budget_seconds=budget_seconds,
        )
        return ValidationRun.from_api(body)

    def delete_run(
        self, run_id: str, *, idempotency_key: str | None = None, budget_seconds: float | None = None
    ) -> None:
        """Delete a run and its results. A missing run raises TalonicNotFoundError: the caller decides
        whether that means "already gone"."""
        body = self._call(
            "DELETE",
            _run_path(run_id),
            idempotency_key=idempotency_key or str(uuid.uuid4()),
            budget_seconds=budget_seconds,
        )
        if isinstance(body, dict) and body.get("deleted") is False:
            raise TalonicBadResponseError(f"Talonic answered deleted=false for run {run_id}")

    def get_results(
        self, run_id: str, *, judged_only: bool = False, budget_seconds: float | None = None
    ) -> list[FieldResult]:
        params = {"judged_only": "true"} if judged_only else {}
        return [
            FieldResult.from_api(item)
            for item, _ in self._paginate(f"{_run_path(run_id)}/results", params, budget_seconds=budget_seconds)
        ]

    # -- transport -------------------------------------------------------------------------------------

    def _paginate(
        self, path: str, params: dict[str, str], *, budget_seconds: float | None
    ) -> Iterator[tuple[object, bool]]:
        """Items of a `{"data": [...]}` listing, following `pagination.next_cursor` only when it appears
        (Talonic documents no pagination for these endpoints, but pages its other listings that way)."""
        deadline = self._deadline(budget_seconds)
        seen_cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page_params = dict(params, cursor=cursor) if cursor else params
            body = self._call("GET", path, params=page_params, deadline=deadline)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise TalonicBadResponseError(f"GET {path} did not answer a JSON object with a data list")
            cursor = _next_cursor(body)
            for item in data:
                yield item, cursor is not None
            if cursor is None:
                return
            if cursor in seen_cursors:
                raise TalonicBadResponseError(f"GET {path} repeated cursor {cursor!r}")
            seen_cursors.add(cursor)
        raise TalonicBadResponseError(f"GET {path} returned more than {MAX_PAGES} pages")

    def _deadline(self, budget_seconds: float | None) -> float | None:
        return None if budget_seconds is None else self._monotonic() + budget_seconds

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        budget_seconds: float | None = None,
        deadline: float | None = None,
    ) -> Any:
        """One API call with its retries. Returns the parsed JSON body of a 2xx answer."""
        if deadline is None:
            deadline = self._deadline(budget_seconds)
        retries = 0
        key_refreshed = False
        while True:
            key = self._keys.get()
            outcome = self._attempt(method, path, params, json_body, idempotency_key, key, deadline)
            error = outcome.error
            if error is None:
                return outcome.body
            if isinstance(error, TalonicUnauthorizedError | TalonicInsufficientScopeError) and not key_refreshed:
                # The secret may have been rotated since it was cached: fetch it once more, then give up.
                key_refreshed = True
                self._keys.refresh()
                continue
            if not error.retryable:
                raise error
            wait = outcome.server_wait
            if wait is None:
                wait = self._backoff.delay(retries, rng=self._rng)
            if isinstance(error, TalonicRateLimitedError):
                error.retry_after_seconds = wait
                if not self._retry_rate_limited:
                    raise error
            if retries >= self._backoff.max_retries:
                raise error
            if deadline is not None and self._monotonic() + wait > deadline:
                if isinstance(error, TalonicRateLimitedError):
                    error.message += f"; come back in {wait:.1f} s (beyond this call's time budget)"
                raise error
            logger.warning(
                "Talonic call will be retried",
                extra={
                    "method": method,
                    "path": path,
                    "status": error.status,
                    "retry_in_s": round(wait, 3),
                    "retry": retries + 1,
                    "request_id": error.request_id,
                },
            )
            self._sleep(wait)
            retries += 1

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        json_body: dict[str, Any] | None,
        idempotency_key: str | None,
        key: str,
        deadline: float | None,
    ) -> _Outcome:
        """Send once: the body of a 2xx answer, or the error and how long the server asked us to wait."""
        read_timeout = self._read_timeout
        if deadline is not None:
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise TalonicTransportError(f"{method} {path}: the call's time budget ran out", retryable=True)
            read_timeout = min(read_timeout, remaining)
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        started = self._monotonic()
        with self._lock:
            self._requests_sent += 1
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=(self._connect_timeout, read_timeout),
            )
        except requests.Timeout as error:
            return _Outcome(error=_transport_error(method, path, "timed out", error, key))
        except requests.RequestException as error:
            return _Outcome(error=_transport_error(method, path, "failed", error, key))

        now = self._now()
        state = read_rate_limit(response.headers, now=now)
        if state is not None:
            self.rate_limit = state
        request_id = response.headers.get("X-Request-Id")
        logger.info(
            "Talonic call",
            extra={
                "method": method,
                "path": path,
                "status": response.status_code,
                "request_id": request_id,
                "elapsed_ms": round((self._monotonic() - started) * 1000, 1),
            },
        )
        if 200 <= response.status_code < 300:
            return _Outcome(body=_json_body(response, method, path))
        return _Outcome(
            error=error_from_response(response, method=method, path=path, key=key),
            # Retry-After is honoured on 503 too; X-RateLimit-Reset only means something on a 429.
            server_wait=server_wait_seconds(response.headers, now=now)
            if response.status_code == 429
            else parse_retry_after(response.headers.get("Retry-After"), now=now),
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    body: Any = None
    error: TalonicError | None = None
    server_wait: float | None = None


def _transport_error(method: str, path: str, what: str, error: Exception, key: str) -> TalonicError:
    # Only the exception's class name: requests' messages carry the URL and could carry more.
    return TalonicTransportError(redact(f"{method} {path} {what}: {type(error).__name__}", key), retryable=True)


def _run_path(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise TalonicBadRequestError("a validation run id must be a non-empty string")
    return f"{RUNS_PATH}/{quote(run_id, safe='')}"


def _next_cursor(body: dict[str, Any]) -> str | None:
    pagination = body.get("pagination")
    if not isinstance(pagination, dict) or pagination.get("has_more") is False:
        return None
    cursor = pagination.get("next_cursor")
    return cursor if isinstance(cursor, str) and cursor else None


def _json_body(response: requests.Response, method: str, path: str) -> Any:
    if not response.content:
        raise TalonicBadResponseError(
            f"{method} {path} answered {response.status_code} with an empty body",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        )
    try:
        return response.json()
    except ValueError as error:
        raise TalonicBadResponseError(
            f"{method} {path} answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        ) from error


@dataclass(frozen=True, slots=True)
class ErrorBody:
    code: str | None = None
    message: str | None = None
    retryable: bool | None = None
    request_id: str | None = None
    required_scopes: tuple[str, ...] = ()


def parse_error_body(response: requests.Response) -> ErrorBody:
    """Read any of Talonic's three error shapes (flat, nested under "error", short); an empty or non-JSON
    body gives an empty ErrorBody, and the HTTP status decides."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ErrorBody(request_id=response.headers.get("X-Request-Id"))
    inner = body.get("error")
    source: dict[str, Any] = inner if isinstance(inner, dict) else body  # nested shape, else flat/short
    scopes: list[object] = next(
        (source[name] for name in ("required_scopes", "scopes", "required") if isinstance(source.get(name), list)),
        [],
    )
    retryable = source.get("retryable")
    return ErrorBody(
        code=_str_or_none(source.get("code")),
        message=_str_or_none(source.get("message")),
        retryable=retryable if isinstance(retryable, bool) else None,
        request_id=_str_or_none(source.get("request_id")) or response.headers.get("X-Request-Id"),
        required_scopes=tuple(str(scope) for scope in scopes),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_response(response: requests.Response, *, method: str, path: str, key: str = "") -> TalonicError:
    """The named exception for an error answer; decided by HTTP status, detailed by the body."""
    status = response.status_code
    body = parse_error_body(response)
    detail = redact(body.message or response.reason or "no message", key)
    message = f"{method} {path} answered {status}: {detail}"
    common: dict[str, Any] = {"status": status, "code": body.code, "request_id": body.request_id}
    # A body that says retryable=false vetoes a retry, whatever the status.
    retryable = status in RETRYABLE_STATUSES and body.retryable is not False
    if status == 401:
        return TalonicUnauthorizedError(message, retryable=False, **common)
    if status == 403:
        return TalonicInsufficientScopeError(message, required_scopes=body.required_scopes, retryable=False, **common)
    if status == 404:
        return TalonicNotFoundError(message, retryable=False, **common)
    if status == 429:
        return TalonicRateLimitedError(message, retryable=retryable, **common)
    if status >= 500:
        return TalonicServerError(message, retryable=retryable, **common)
    return TalonicBadRequestError(message, retryable=False, **common)
