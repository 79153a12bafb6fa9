"""The emulator itself: keys, runs and idempotency records, the request pipeline, the test API.

See the package docstring for what it mirrors and why. Each request is answered under one lock, so
tests can change knobs and state from their own thread while the server is serving.

The pipeline, in order: injected fault -> authentication (401) -> rate limit (429) -> route (404,
405) -> scope (403) -> idempotency replay -> endpoint.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from local.talonic_emulator.behaviour import PENDING, RunBehaviour
from local.talonic_emulator.clock import iso_ms
from local.talonic_emulator.errors import JSON_CONTENT_TYPE, ErrorShape, encode_json, render_error
from local.talonic_emulator.faults import Fault, FaultQueue, build_fault
from local.talonic_emulator.listing import LIST_CAP, ApiError, newest_first, page_of_rows, page_of_runs, parse_bool
from local.talonic_emulator.messages import RecordedRequest, Reply
from local.talonic_emulator.ratelimit import RateLimiter, rate_limit_headers, retry_after_header
from local.talonic_emulator.routing import WRITE_METHODS, Route, alias_for, bearer_token, resolve
from local.talonic_emulator.runs import RunShape, StoredRun
from local.talonic_emulator.server import EmulatorHTTPServer

RetryAfterFormat = Literal["seconds", "http-date"]
ResetFormat = Literal["epoch", "iso"]

VALID_SCOPES: frozenset[str] = frozenset({"read", "write", "extract", "billing"})
IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0
_MALFORMED_JSON = b'{"id": "3f0c9a2e-6b1d-4d6e-9a55-0f1e2d3c4b5a", "status": "runn'


@dataclass
class _Trigger:
    """An action scripted to happen after a number of matching requests (see ``after_requests``)."""

    remaining: int
    method: str | None
    pattern: re.Pattern[str] | None
    action: Callable[[], object]


@dataclass
class _ApiKey:
    org: str
    scopes: frozenset[str]
    alias: str
    revoked: bool = False


@dataclass
class _Exchange:
    """One request while it is being answered."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    now: float
    request_id: str
    key: str | None
    idempotency_key: str | None
    org: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class _StoredResponse:
    """The first response to an Idempotency-Key, replayed to repeats."""

    stored_at: float
    status: int
    body: bytes
    content_type: str | None


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class TalonicEmulator:
    """A local Talonic validation API on 127.0.0.1, scriptable from tests.

    Knobs are plain attributes that can be changed while the server runs; see the package docstring
    for the list. State and knobs are read under one lock per request.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._clock = clock
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._keys: dict[str, _ApiKey] = {}
        self._runs: dict[str, StoredRun] = {}
        self._next_seq = 0
        self._requests: list[RecordedRequest] = []
        self._triggers: list[_Trigger] = []
        self._faults = FaultQueue()
        self._limiter = RateLimiter()
        self._idempotent_responses: dict[tuple[str, str], _StoredResponse] = {}

        # Run scripting.
        self.default_behaviour: RunBehaviour = RunBehaviour()
        self.behaviour_by_golden_sample: dict[str, RunBehaviour] = {}
        self.known_golden_samples: set[str] | None = None
        # Response shapes.
        self.run_shape: RunShape = "documented"
        self.error_shape: ErrorShape = "flat"
        self.validation_error_status: int = 400
        self.list_page_size: int | None = None
        self.results_page_size: int | None = None
        # Budgets.
        self.rate_limit_per_second: int | None = None
        self.daily_quota: int | None = None
        self.retry_after: RetryAfterFormat | None = "seconds"
        self.rate_limit_headers: bool = True
        self.rate_limit_reset_format: ResetFormat = "epoch"
        self.idempotency_ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS
        # Transport.
        self.latency: float = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Listen on an ephemeral port (unless one was given) and serve from a daemon thread."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the emulator is already running")
            self._stopping.clear()
            server = EmulatorHTTPServer((self._host, self._port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"talonic-emulator-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and wake any request sleeping in a slow fault."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:54321``."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{server.server_name}:{server.server_port}"

    def now(self) -> float:
        """The emulator clock."""
        return self._clock()

    def pause(self, seconds: float) -> None:
        """Sleep in real time, but wake up at once when the emulator stops."""
        self._stopping.wait(seconds)

    # ------------------------------------------------------------------ keys

    def add_key(self, key: str, scopes: Iterable[str], org: str = "org_default", *, alias: str | None = None) -> None:
        """Register (or re-register, un-revoking it) an API key for ``org`` with ``scopes``."""
        granted = frozenset(scopes)
        unknown = granted - VALID_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; valid: {sorted(VALID_SCOPES)}")
        if not key:
            raise ValueError("key must not be empty")
        with self._lock:
            self._keys[key] = _ApiKey(org=org, scopes=granted, alias=alias or alias_for(key))

    def revoke_key(self, key: str) -> None:
        """Make a registered key answer 401 from now on."""
        with self._lock:
            if key not in self._keys:
                raise KeyError("no such key")
            self._keys[key].revoked = True

    # ------------------------------------------------------------------ runs

    def add_run(
        self,
        *,
        golden_sample_id: str,
        name: str | None = None,
        dataspace_run_id: str | None = None,
        org: str = "org_default",
        status: str | None = None,
        created_at: float | None = None,
        behaviour: RunBehaviour | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a run directly (as if POSTed earlier) and return it as the API shows it now.

        ``status`` pins the status like ``set_status``. Without ``behaviour`` the run follows
        ``behaviour_by_golden_sample[golden_sample_id]`` if present, else ``default_behaviour``.
        """
        with self._lock:
            now = self._clock()
            run = self._store_run(
                org=org,
                golden_sample_id=golden_sample_id,
                name=name,
                dataspace_run_id=dataspace_run_id,
                created_at=now if created_at is None else created_at,
                behaviour=behaviour,
                run_id=run_id,
            )
            if status is not None:
                run.pin(status, now)
            return run.render(now, self.run_shape)

    def set_status(self, run_id: str, status: str | None) -> None:
        """Pin a run's status to any string (even unknown ones such as "archived"); None unpins it.

        Pinning ``completed``/``failed`` stamps ``completed_at`` with the current emulator time.
        """
        with self._lock:
            self._runs[run_id].pin(status, self._clock())

    def remove_run(self, run_id: str) -> None:
        """Delete a run behind the client's back: later requests for it get 404."""
        with self._lock:
            del self._runs[run_id]

    @property
    def runs(self) -> Mapping[str, dict[str, Any]]:
        """A read-only snapshot of every org's runs, rendered as the API shows them now.

        Looking does not count as a GET for read-count progression.
        """
        with self._lock:
            now = self._clock()
            return MappingProxyType({run_id: run.render(now, self.run_shape) for run_id, run in self._runs.items()})

    def read_count(self, run_id: str) -> int:
        """How many times ``GET /v1/validation/runs/{run_id}`` has been served for this run."""
        with self._lock:
            return self._runs[run_id].reads

    def results(self, run_id: str, *, judged_only: bool = False) -> list[dict[str, Any]]:
        """The per-field results the API would return now (all pages), for assertions."""
        with self._lock:
            rows = self._runs[run_id].results(self._clock())
        return [row for row in rows if row["judge_verdict"] is not None] if judged_only else rows

    # ------------------------------------------------------------------ requests and faults

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request served so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def after_requests(
        self, count: int, action: Callable[[], object], *, method: str | None = None, path_regex: str | None = None
    ) -> None:
        """Call ``action`` once ``count`` more matching requests have been served.

        Something that happens to Talonic *during* a watch (a run deleted, a key revoked) cannot be timed from a
        test without racing the workflow's thread; tying it to the traffic makes it deterministic.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        pattern = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            self._triggers.append(_Trigger(count, method.upper() if method else None, pattern, action))

    def requests_matching(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by method, ``re.search`` on the path, status and fault kind."""
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            record
            for record in self.requests
            if (method is None or record.method == method.upper())
            and (pattern is None or pattern.search(record.path) is not None)
            and (status is None or record.status == status)
            and (fault is None or record.fault == fault)
        ]

    def count(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> int:
        """How many recorded requests match (see ``requests_matching``)."""
        return len(self.requests_matching(method, path_regex, status, fault))

    def inject(
        self,
        kind: str,
        count: int | None = 1,
        method: str | None = None,
        path_regex: str | None = None,
        **params: Any,
    ) -> None:
        """Queue a fault for the next ``count`` matching requests (None: until ``clear_faults``).

        Kinds and parameters:

        - ``status``: ``status=`` (required), ``retry_after_seconds=``, ``message=``. Answers with
          that status and an error body in the current ``error_shape``. A 429 gets a Retry-After per
          the ``retry_after`` knob (1 s unless ``retry_after_seconds`` says otherwise); any status
          gets one when ``retry_after_seconds`` is given.
        - ``drop``: close the connection without a response. With ``after_processing=True`` the
          request takes effect first (a lost response: the run exists, the client never heard).
        - ``malformed``: 200 with a truncated JSON body.
        - ``empty``: 200 with an empty body.
        - ``slow``: ``seconds=`` (required). The request takes effect at once; the answer is sent
          after that many real seconds, so a client with a shorter read timeout gives up.
        """
        fault = build_fault(kind, count, method, path_regex, params)
        with self._lock:
            self._faults.add(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """Number of faults still queued."""
        with self._lock:
            return len(self._faults)

    def reset_rate_limits(self) -> None:
        """Forget every key's per-second and daily usage."""
        with self._lock:
            self._limiter.reset()

    # ------------------------------------------------------------------ request handling

    def handle_request(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one HTTP request (``headers`` keyed in lower case). Called by the HTTP server."""
        split = urlsplit(target)
        query = {name: values[-1] for name, values in parse_qs(split.query, keep_blank_values=True).items()}
        key = bearer_token(headers.get("authorization"))
        with self._lock:
            exchange = _Exchange(
                method=method.upper(),
                path=split.path,
                query=query,
                body=body,
                now=self._clock(),
                request_id=f"req_{secrets.token_hex(12)}",
                key=key,
                idempotency_key=headers.get("idempotency-key") or None,
            )
            fault = self._faults.take(exchange.method, exchange.path)
            fault_name = fault.kind if fault is not None else None
            try:
                reply = self._answer(exchange, fault)
            except Exception as error:  # a bug or a bad knob value: say so instead of hanging the client
                reply = self._emulator_error(exchange, error)
                fault_name = "emulator_error"
            self._requests.append(
                RecordedRequest(
                    method=exchange.method,
                    path=exchange.path,
                    query=MappingProxyType(dict(query)),
                    status=None if reply.drop else reply.status,
                    key_alias=self._alias_of(key),
                    idempotency_key=exchange.idempotency_key,
                    at=exchange.now,
                    fault=fault_name,
                    request_id=exchange.request_id,
                    idempotent_replay=exchange.replayed,
                    json_body=_json_or_none(body),
                )
            )
            latency = self.latency
            due = self._due_triggers(exchange.method, exchange.path)
        for trigger in due:  # outside the lock: an action may call back into the emulator
            trigger.action()
        return replace(reply, delay=reply.delay + latency) if latency > 0 else reply

    def _due_triggers(self, method: str, path: str) -> list[_Trigger]:
        due: list[_Trigger] = []
        for trigger in self._triggers:
            if (trigger.method is None or trigger.method == method) and (
                trigger.pattern is None or trigger.pattern.search(path)
            ):
                trigger.remaining -= 1
                if trigger.remaining == 0:
                    due.append(trigger)
        self._triggers = [trigger for trigger in self._triggers if trigger.remaining > 0]
        return due

    def _alias_of(self, key: str | None) -> str | None:
        if key is None:
            return None
        known = self._keys.get(key)
        return known.alias if known is not None else alias_for(key)

    def _answer(self, exchange: _Exchange, fault: Fault | None) -> Reply:
        if fault is not None:
            if fault.kind == "status":
                return self._fault_status(exchange, fault)
            if fault.kind == "malformed":
                return self._raw(exchange, 200, _MALFORMED_JSON, JSON_CONTENT_TYPE)
            if fault.kind == "empty":
                return self._raw(exchange, 200, b"", JSON_CONTENT_TYPE)
            if fault.kind == "drop" and not fault.params.get("after_processing", False):
                return Reply(status=0, drop=True)
        reply = self._authenticated(exchange)
        if fault is not None and fault.kind == "slow":
            return replace(reply, delay=float(fault.params["seconds"]))
        if fault is not None and fault.kind == "drop":
            return replace(reply, drop=True)
        return reply

    def _authenticated(self, exchange: _Exchange) -> Reply:
        if exchange.key is None:
            return self._error(exchange, 401, "Missing API key. Send 'Authorization: Bearer <key>'.")
        account = self._keys.get(exchange.key)
        if account is None or account.revoked:
            return self._error(exchange, 401, "Invalid or revoked API key.")
        exchange.org = account.org
        decision = self._limiter.charge(exchange.key, exchange.now, self.rate_limit_per_second, self.daily_quota)
        budget_headers = rate_limit_headers(decision, self.rate_limit_reset_format) if self.rate_limit_headers else ()
        if not decision.allowed:
            reset_at = decision.reset_at if decision.reset_at is not None else exchange.now + 1
            retry = retry_after_header(self.retry_after, exchange.now, max(1.0, reset_at - exchange.now))
            return self._error(exchange, 429, "Rate limit exceeded.", headers=budget_headers + retry)
        return self._authorized(exchange, account).with_headers(budget_headers)

    def _authorized(self, exchange: _Exchange, account: _ApiKey) -> Reply:
        route = resolve(exchange.path)
        if route is None:
            return self._error(exchange, 404, f"No route for {exchange.method} {exchange.path}.")
        required = route.scope_by_method.get(exchange.method)
        if required is None:
            allow = ", ".join(sorted(route.scope_by_method))
            return self._error(exchange, 405, f"{exchange.method} is not allowed here.", headers=(("Allow", allow),))
        if required not in account.scopes:
            message = f"This API key lacks the '{required}' scope."
            return self._error(exchange, 403, message, extra={"required_scopes": [required]})
        slot = (
            (exchange.org, exchange.idempotency_key)
            if exchange.method in WRITE_METHODS and exchange.idempotency_key
            else None
        )
        if slot is not None:
            stored = self._idempotent_responses.get(slot)
            if stored is not None and exchange.now - stored.stored_at < self.idempotency_ttl_seconds:
                exchange.replayed = True
                replay = self._raw(exchange, stored.status, stored.body, stored.content_type)
                return replay.with_headers((("Idempotent-Replayed", "true"),))
        try:
            reply = self._dispatch(exchange, route)
        except ApiError as error:
            reply = self._error(exchange, error.status, error.message, extra=error.extra)
        # Like other idempotent APIs, a transient failure (429, 5xx) is not the "first response".
        if slot is not None and reply.status < 500 and reply.status != 429:
            self._idempotent_responses[slot] = _StoredResponse(
                exchange.now, reply.status, reply.body, reply.header("Content-Type")
            )
        return reply

    def _dispatch(self, exchange: _Exchange, route: Route) -> Reply:
        if route.kind == "collection":
            return self._list_runs(exchange) if exchange.method == "GET" else self._create_run(exchange)
        if route.kind == "run":
            if exchange.method == "GET":
                return self._get_run(exchange, route.run_id)
            return self._delete_run(exchange, route.run_id)
        return self._list_results(exchange, route.run_id)

    # ------------------------------------------------------------------ endpoints

    def _get_run(self, exchange: _Exchange, run_id: str) -> Reply:
        run = self._visible_run(exchange, run_id)
        run.count_read(exchange.now)
        return self._json(exchange, 200, run.render(exchange.now, self.run_shape))

    def _delete_run(self, exchange: _Exchange, run_id: str) -> Reply:
        run = self._visible_run(exchange, run_id)
        del self._runs[run.id]  # the results are derived from the run, so they go with it
        return self._json(exchange, 200, {"deleted": True, "id": run.id})

    def _create_run(self, exchange: _Exchange) -> Reply:
        try:
            payload = json.loads(exchange.body)
        except ValueError as error:
            raise ApiError(400, "Request body must be valid JSON.") from error
        invalid = self.validation_error_status
        if not isinstance(payload, dict):
            raise ApiError(invalid, "Request body must be a JSON object.")
        golden_sample_id = payload.get("golden_sample_id")
        if not isinstance(golden_sample_id, str) or not golden_sample_id.strip():
            message = "golden_sample_id is required and must be a non-empty string."
            raise ApiError(invalid, message, {"field": "golden_sample_id"})
        for optional in ("dataspace_run_id", "name"):
            value = payload.get(optional)
            if value is not None and not isinstance(value, str):
                raise ApiError(invalid, f"{optional} must be a string or null.", {"field": optional})
        if self.known_golden_samples is not None and golden_sample_id not in self.known_golden_samples:
            raise ApiError(404, "Golden sample not found.")
        run = self._store_run(
            org=exchange.org,
            golden_sample_id=golden_sample_id,
            name=payload.get("name"),
            dataspace_run_id=payload.get("dataspace_run_id"),
            created_at=exchange.now,
            behaviour=None,
            run_id=None,
        )
        # Documented: the create response shows the run as it was created, i.e. pending.
        return self._json(exchange, 201, run.render(exchange.now, self.run_shape, state=(PENDING, None)))

    def _list_runs(self, exchange: _Exchange) -> Reply:
        runs = newest_first([run for run in self._runs.values() if run.org == exchange.org])
        if self.list_page_size is None:
            # Documented behaviour: no parameters, no pagination, the newest 100.
            shown = [run.render(exchange.now, self.run_shape) for run in runs[:LIST_CAP]]
            return self._json(exchange, 200, {"data": shown})
        page, pagination = page_of_runs(runs, exchange.query, self.list_page_size)
        shown = [run.render(exchange.now, self.run_shape) for run in page]
        return self._json(exchange, 200, {"data": shown, "pagination": pagination})

    def _list_results(self, exchange: _Exchange, run_id: str) -> Reply:
        run = self._visible_run(exchange, run_id)
        judged_only = parse_bool(exchange.query.get("judged_only"), "judged_only")
        rows = run.results(exchange.now)
        if judged_only:
            rows = [row for row in rows if row["judge_verdict"] is not None]
        if self.results_page_size is None:
            return self._json(exchange, 200, {"data": rows})
        page, pagination = page_of_rows(rows, exchange.query, self.results_page_size)
        return self._json(exchange, 200, {"data": page, "pagination": pagination})

    # ------------------------------------------------------------------ state helpers

    def _store_run(
        self,
        *,
        org: str,
        golden_sample_id: str,
        name: str | None,
        dataspace_run_id: str | None,
        created_at: float,
        behaviour: RunBehaviour | None,
        run_id: str | None,
    ) -> StoredRun:
        run_id = run_id or str(uuid.uuid4())
        if run_id in self._runs:
            raise ValueError(f"a run with id {run_id!r} already exists")
        self._next_seq += 1
        chosen = behaviour or self.behaviour_by_golden_sample.get(golden_sample_id) or self.default_behaviour
        run = StoredRun(
            id=run_id,
            org=org,
            golden_sample_id=golden_sample_id,
            name=name,
            dataspace_run_id=dataspace_run_id,
            created_at=created_at,
            behaviour=chosen,
            seq=self._next_seq,
        )
        self._runs[run_id] = run
        return run

    def _visible_run(self, exchange: _Exchange, run_id: str) -> StoredRun:
        run = self._runs.get(run_id)
        if run is None or run.org != exchange.org:
            # Documented: another organization's run is indistinguishable from a missing one.
            raise ApiError(404, "Validation run not found.")
        return run

    # ------------------------------------------------------------------ reply building

    def _raw(self, exchange: _Exchange, status: int, body: bytes, content_type: str | None) -> Reply:
        headers: tuple[tuple[str, str], ...] = (("X-Request-Id", exchange.request_id),)
        if content_type is not None:
            headers += (("Content-Type", content_type),)
        return Reply(status=status, headers=headers, body=body)

    def _json(self, exchange: _Exchange, status: int, payload: Any) -> Reply:
        return self._raw(exchange, status, encode_json(payload), JSON_CONTENT_TYPE)

    def _error(
        self,
        exchange: _Exchange,
        status: int,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Reply:
        body, content_type = render_error(
            self.error_shape,
            status,
            message,
            request_id=exchange.request_id,
            path=exchange.path,
            timestamp=iso_ms(exchange.now),
            extra=extra,
        )
        return self._raw(exchange, status, body, content_type).with_headers(headers)

    def _fault_status(self, exchange: _Exchange, fault: Fault) -> Reply:
        status: int = fault.params["status"]
        message: str = fault.params.get("message") or f"Injected {status} response."
        explicit_delay = fault.params.get("retry_after_seconds")
        headers: tuple[tuple[str, str], ...] = ()
        if explicit_delay is not None:
            # An explicit delay always produces the header (as delta-seconds if the knob says absent).
            headers = retry_after_header(self.retry_after or "seconds", exchange.now, float(explicit_delay))
        elif status == 429:
            headers = retry_after_header(self.retry_after, exchange.now, 1.0)
        # An explicit "retryable" overrides the status's usual flag (Talonic can veto a retry of a 5xx).
        extra = {"retryable": fault.params["retryable"]} if "retryable" in fault.params else None
        return self._error(exchange, status, message, headers=headers, extra=extra)

    def _emulator_error(self, exchange: _Exchange, error: Exception) -> Reply:
        text = f"talonic emulator error: {type(error).__name__}: {error}\n"
        return self._raw(exchange, 500, text.encode("utf-8"), "text/plain; charset=utf-8")
