"""A faithful local emulator of Talonic's validation-run API, for tests and the local demo.

Why it exists: the watchdog's whole job is talking to Talonic (create a run, poll it until it
finishes, read its per-field results) and Talonic is neither free to call nor scriptable. The
emulator is a real HTTP server on 127.0.0.1 (ephemeral port, daemon thread, standard library only)
that answers like Talonic does and lets a test script everything the real API can do to a client:
slow runs, failed runs, runs deleted under the poller, rate limits, odd error bodies, dropped
connections. Integration tests drive time with ``FakeClock`` or with read counts, never with sleeps.

Facts of ``talonic-api.md`` it mirrors:

- Transport: every path under ``/v1``, JSON in and out, ``Authorization: Bearer <key>``. Keys are
  opaque (no prefix check). Scopes ``read``/``write``/``extract``/``billing``; GETs need ``read``,
  POST and DELETE need ``write``. Missing, unknown or revoked key: 401. Missing scope: 403 with code
  ``insufficient_scope`` and a ``required_scopes`` list (the real field name is unknown).
- Endpoints: ``GET/DELETE /v1/validation/runs/{id}``, ``GET/POST /v1/validation/runs``,
  ``GET /v1/validation/runs/{id}/results[?judged_only=true]``. 404 also for another org's run.
  DELETE answers ``{"deleted": true, "id": ...}`` (the spec's variant, a superset of the doc's) and
  takes the run's results with it. The list is newest first and capped at the newest 100, without
  pagination; cursor pagination (``?limit=&cursor=``, ``"pagination": {total, limit, has_more,
  next_cursor}``) appears only when a test switches it on, because the docs say to follow
  ``next_cursor`` only if it ever appears. POST answers 201 with a ``pending`` run.
- Run object: ``id, name, status, dataspace_run_id, golden_sample_id, accuracy, total_comparisons,
  created_at, completed_at, links{self, results}``; accuracy and total_comparisons null until
  completed (and for failed runs), instants in ISO 8601 UTC with milliseconds and ``Z``. The
  ``openapi`` run shape has ``accuracy_overall, documents_processed, schema_id`` instead and lacks
  ``name, dataspace_run_id, total_comparisons``. Any status string can be forced for tests of
  unknown statuses.
- Per-field result rows with every documented column; values look like business data.
- ``Idempotency-Key`` on writes (POST, DELETE) for 24 h of emulator time: a repeat from the same
  org returns the first response unchanged and has no side effect.
- Request ids: ``X-Request-Id: req_<hex>`` on every response; ``request_id`` in the flat and
  nested error bodies (not in the short one).
- Error bodies: flat (upper-case codes), nested and short (lower-case codes), empty, or non-JSON;
  ``retryable`` true exactly for 429 and 5xx.
- Rate limits per key: fixed one-second windows and/or a daily quota resetting at UTC midnight,
  ``X-RateLimit-Limit/Remaining/Reset`` (Reset as Unix seconds or ISO 8601, or absent), and
  ``Retry-After`` as delta-seconds, as an HTTP-date, or absent.
- Faults the official SDKs retry: 429/5xx, timeouts (``slow``), connection errors (``drop``), plus
  bodies a parser must survive (``malformed``, ``empty``).

Test-facing API in brief (details in ``TalonicEmulator``'s docstrings)::

    with TalonicEmulator(clock=FakeClock()) as emu:
        emu.add_key("tlnc_test_abc123", {"read", "write"})
        emu.default_behaviour = RunBehaviour(pending_reads=1, running_reads=2)
        run = emu.add_run(golden_sample_id="gs_1")
        emu.inject("status", status=503)
        ...  # talk HTTP to emu.url
        assert emu.count(method="GET", path_regex=r"/runs/[^/]+$") == 4

Knobs (plain attributes, changeable while serving): ``latency``, ``error_shape``, ``run_shape``,
``list_page_size``, ``results_page_size``, ``rate_limit_per_second``, ``daily_quota``,
``retry_after``, ``rate_limit_headers``, ``rate_limit_reset_format``, ``validation_error_status``,
``known_golden_samples``, ``idempotency_ttl_seconds``, ``default_behaviour``,
``behaviour_by_golden_sample``.
"""

from local.talonic_emulator.behaviour import RunBehaviour, business_value, generate_results, row_is_correct
from local.talonic_emulator.clock import FakeClock, iso_ms
from local.talonic_emulator.emulator import VALID_SCOPES, TalonicEmulator
from local.talonic_emulator.errors import ERROR_SHAPES
from local.talonic_emulator.faults import FAULT_KINDS
from local.talonic_emulator.listing import LIST_CAP
from local.talonic_emulator.messages import RecordedRequest

__all__ = [
    "ERROR_SHAPES",
    "FAULT_KINDS",
    "LIST_CAP",
    "VALID_SCOPES",
    "FakeClock",
    "RecordedRequest",
    "RunBehaviour",
    "TalonicEmulator",
    "business_value",
    "generate_results",
    "iso_ms",
    "row_is_correct",
]
