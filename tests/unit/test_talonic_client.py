"""The Talonic client against the emulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from local.talonic_emulator import RunBehaviour
from talonic_watchdog.errors import (
    TalonicBadResponseError,
    TalonicInsufficientScopeError,
    TalonicNotFoundError,
    TalonicRateLimitedError,
    TalonicServerError,
    TalonicTransportError,
    TalonicUnauthorizedError,
    UnknownRunStatusError,
)
from talonic_watchdog.models import RunStatus
from tests.unit.conftest import GOLDEN, OTHER_ORG_KEY, READ_KEY, WRITE_KEY

RUN_PATH = r"^/v1/validation/runs/[^/]+$"


class RotatingKeys:
    """A key source whose secret is rotated behind the client's back; counts refreshes."""

    def __init__(self, cached: str, fresh: str) -> None:
        self.cached, self.fresh, self.refreshes = cached, fresh, 0

    def get(self) -> str:
        return self.cached

    def refresh(self) -> str:
        self.refreshes += 1
        self.cached = self.fresh
        return self.cached


# -- reading runs ------------------------------------------------------------------------------------


def test_get_run_follows_a_run_from_pending_to_completed(emulator, make_client):
    # given a run that shows pending once, running once, then completes at 0.93
    run = emulator.add_run(
        golden_sample_id=GOLDEN,
        behaviour=RunBehaviour(pending_reads=1, running_reads=1, final_status="completed", accuracy=0.93),
    )
    client = make_client(READ_KEY)
    # when it is read three times
    statuses = [client.get_run(run["id"]) for _ in range(3)]
    # then the statuses move on and the final one carries accuracy and timestamps
    assert [r.status for r in statuses] == [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.COMPLETED]
    final = statuses[-1]
    assert final.accuracy == pytest.approx(0.93)
    assert final.golden_sample_id == GOLDEN
    assert final.completed_at is not None and final.created_at is not None
    assert final.duration_seconds is not None and final.duration_seconds >= 0
    assert client.requests_sent == 3


def test_get_run_accepts_the_openapi_shape(emulator, make_client):
    # given the emulator answering in the OpenAPI models' shape (accuracy_overall, no name)
    emulator.run_shape = "openapi"
    run = emulator.add_run(
        golden_sample_id=GOLDEN, behaviour=RunBehaviour(pending_reads=0, running_reads=0, accuracy=0.71)
    )
    # when the run is read
    parsed = make_client(READ_KEY).get_run(run["id"])
    # then accuracy falls back to accuracy_overall
    assert parsed.status is RunStatus.COMPLETED
    assert parsed.accuracy == pytest.approx(0.71)
    assert parsed.name is None


def test_an_unknown_status_is_an_error_not_still_running(emulator, make_client):
    # given a run whose status Talonic does not document
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.set_status(run["id"], "archived")
    # when it is read, then the client says so by name
    with pytest.raises(UnknownRunStatusError, match="archived"):
        make_client(READ_KEY).get_run(run["id"])


def test_another_organizations_run_is_not_found(emulator, make_client):
    # given a run that belongs to another organization
    run = emulator.add_run(golden_sample_id=GOLDEN, org="org_other")
    # when our key reads it, then it is "not found", with the request id kept
    with pytest.raises(TalonicNotFoundError) as caught:
        make_client(READ_KEY).get_run(run["id"])
    assert caught.value.status == 404
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    assert not caught.value.retryable


def test_list_without_pagination_is_capped_at_the_newest_100(emulator, make_client, clock):
    # given 120 runs created a minute apart
    for minute in range(120):
        emulator.add_run(golden_sample_id=GOLDEN, name=f"run-{minute}", created_at=clock() - 60 * (120 - minute))
    # when they are listed
    listing = make_client(READ_KEY).list_runs()
    # then only the newest 100 come back, newest first, and the listing says it was not paginated
    assert len(listing.runs) == 100
    assert listing.runs[0].name == "run-119"
    assert not listing.paginated
    assert emulator.count(method="GET", path_regex=r"^/v1/validation/runs$") == 1


def test_list_follows_the_cursor_when_one_appears(emulator, make_client, clock):
    # given 130 runs and an API that pages by 50
    emulator.list_page_size = 50
    for minute in range(130):
        emulator.add_run(golden_sample_id=GOLDEN, created_at=clock() - 60 * minute)
    # when they are listed
    listing = make_client(READ_KEY).list_runs()
    # then every run is found over three pages
    assert len(listing.runs) == 130
    assert len({run.id for run in listing.runs}) == 130
    assert listing.paginated
    assert emulator.count(method="GET", path_regex=r"^/v1/validation/runs$") == 3


def test_list_reports_unreadable_runs_without_losing_the_others(emulator, make_client):
    # given two runs, one with an undocumented status
    good = emulator.add_run(golden_sample_id=GOLDEN)
    odd = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.set_status(odd["id"], "archived")
    # when listed
    listing = make_client(READ_KEY).list_runs()
    # then the good one is there and the odd one is reported
    assert [run.id for run in listing.runs] == [good["id"]]
    assert len(listing.unreadable) == 1 and "archived" in listing.unreadable[0]


def test_results_follow_the_cursor_and_filter_judged_rows(emulator, make_client):
    # given a completed run with 30 compared fields, paged by 7
    emulator.results_page_size = 7
    run = emulator.add_run(
        golden_sample_id=GOLDEN,
        behaviour=RunBehaviour(
            pending_reads=0, running_reads=0, fields={"invoice_number": (8, 10), "total_amount": (15, 20)}
        ),
    )
    client = make_client(READ_KEY)
    assert client.get_run(run["id"]).status is RunStatus.COMPLETED
    # when every result and then only the judged ones are fetched
    everything = client.get_results(run["id"])
    judged = client.get_results(run["id"], judged_only=True)
    # then all 30 rows arrive across pages, and judged_only keeps only rows with a verdict
    assert len(everything) == 30
    assert {row.field_name for row in everything} == {"invoice_number", "total_amount"}
    assert 0 < len(judged) < 30
    assert all(row.judge_verdict is not None for row in judged)
    # and business values never show in a result's repr
    assert all(repr(row.expected_value) not in repr(row) for row in everything if row.expected_value)


# -- writing ---------------------------------------------------------------------------------------------


def test_create_sends_an_idempotency_key_and_a_retried_create_makes_one_run(emulator, make_client):
    # given a connection that drops on the first create
    emulator.inject("drop", count=1, method="POST")
    client = make_client(WRITE_KEY)
    # when a run is created
    run = client.create_run(golden_sample_id=GOLDEN, dataspace_run_id="job-1", name="nightly", idempotency_key="k-1")
    # then the retry reused the idempotency key and exactly one run exists
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert len(posts) == 2
    assert {r.idempotency_key for r in posts} == {"k-1"}
    assert run.status is RunStatus.PENDING
    assert len(client.list_runs().runs) == 1
    # and creating again with the same key answers the same run
    again = client.create_run(golden_sample_id=GOLDEN, idempotency_key="k-1")
    assert again.id == run.id


def test_delete_removes_the_run_and_a_second_delete_is_not_found(emulator, make_client):
    # given a completed run
    run = emulator.add_run(golden_sample_id=GOLDEN)
    client = make_client(WRITE_KEY)
    # when it is deleted
    client.delete_run(run["id"], idempotency_key="del-1")
    # then it is gone, and deleting it anew (another key) is "not found"
    with pytest.raises(TalonicNotFoundError):
        client.get_run(run["id"])
    with pytest.raises(TalonicNotFoundError):
        client.delete_run(run["id"])
    deletes = [r for r in emulator.requests if r.method == "DELETE"]
    assert deletes[0].idempotency_key == "del-1"
    assert deletes[1].idempotency_key and deletes[1].idempotency_key != "del-1"


# -- auth ------------------------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once_more_on_401(emulator, make_client):
    # given a cached key that was revoked and a secret that now holds a fresh one
    emulator.revoke_key(READ_KEY)
    keys = RotatingKeys(cached=READ_KEY, fresh=WRITE_KEY)
    run = emulator.add_run(golden_sample_id=GOLDEN)
    # when the run is read
    parsed = make_client(keys=keys).get_run(run["id"])
    # then one 401, one refresh, one success
    assert parsed.id == run["id"]
    assert keys.refreshes == 1
    assert [r.status for r in emulator.requests] == [401, 200]


def test_a_revoked_key_gives_up_after_one_refresh(emulator, make_client):
    # given a revoked key that the secret still holds
    emulator.revoke_key(READ_KEY)
    keys = RotatingKeys(cached=READ_KEY, fresh=READ_KEY)
    # when a run is read, then Unauthorized after exactly two requests
    with pytest.raises(TalonicUnauthorizedError) as caught:
        make_client(keys=keys).get_run("7d3c5a1e-1111-4222-8333-944455556666")
    assert caught.value.status == 401
    assert keys.refreshes == 1
    assert len(emulator.requests) == 2


def test_a_read_key_cannot_delete(emulator, make_client):
    # given a run and a read-only key
    run = emulator.add_run(golden_sample_id=GOLDEN)
    # when it tries to delete
    with pytest.raises(TalonicInsufficientScopeError) as caught:
        make_client(READ_KEY).delete_run(run["id"])
    # then a named scope error that lists what was missing, and the run is still there
    assert caught.value.status == 403
    assert "write" in caught.value.required_scopes
    assert make_client(READ_KEY).get_run(run["id"]).id == run["id"]


# -- error shapes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["flat", "nested", "short", "empty", "text"])
def test_every_error_shape_becomes_the_same_named_error(emulator, make_client, shape):
    # given the emulator answering errors in one of Talonic's shapes
    emulator.error_shape = shape
    # when an unknown run is read
    with pytest.raises(TalonicNotFoundError) as caught:
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000")
    # then the status decides the error, and the request id survives (from body or header)
    assert caught.value.status == 404
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    if shape in ("flat", "nested", "short"):
        assert caught.value.code and caught.value.code.lower() in ("not_found", "resource_not_found")


# -- retries -------------------------------------------------------------------------------------------------


def test_server_errors_are_retried_with_capped_backoff(emulator, make_client, sleeper):
    # given two 503s before a good answer
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.inject("status", count=2, status=503)
    # when the run is read
    parsed = make_client(READ_KEY).get_run(run["id"])
    # then it succeeded on the third request after backoff waits of 0.75 s and 1.5 s (jitter fixed at 0.5)
    assert parsed.id == run["id"]
    assert sleeper.waits == [pytest.approx(0.75), pytest.approx(1.5)]
    assert len(emulator.requests) == 3


def test_server_errors_give_up_after_three_retries(emulator, make_client, sleeper):
    # given a server that keeps failing
    emulator.inject("status", count=10, status=500)
    # when a run is read, then a named server error after 1 + 3 requests
    with pytest.raises(TalonicServerError) as caught:
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000")
    assert caught.value.status == 500
    assert len(emulator.requests) == 4
    assert len(sleeper.waits) == 3
    assert max(sleeper.waits) <= 16


def test_a_body_that_says_not_retryable_is_not_retried(emulator, make_client, sleeper):
    # given a 503 whose body says retryable=false
    emulator.inject("status", count=1, status=503, retryable=False)
    # when a run is read, then one request and no wait
    with pytest.raises(TalonicServerError):
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000")
    assert len(emulator.requests) == 1
    assert sleeper.waits == []


def test_timeouts_and_dropped_connections_are_retried(emulator, make_client):
    # given one dropped connection and one answer slower than the read timeout
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.inject("drop", count=1)
    emulator.inject("slow", count=1, seconds=1.0)
    # when the run is read with a 0.2 s read timeout
    parsed = make_client(READ_KEY, read_timeout=0.2).get_run(run["id"])
    # then it arrives on the third try
    assert parsed.id == run["id"]


def test_transport_errors_end_in_a_named_error(emulator, make_client):
    # given a server that drops every connection
    emulator.inject("drop", count=10)
    # when a run is read, then a transport error (not a requests exception)
    with pytest.raises(TalonicTransportError):
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000")


@pytest.mark.parametrize("body_fault", ["malformed", "empty"])
def test_a_2xx_that_is_not_json_is_a_bad_response(emulator, make_client, body_fault):
    # given a 200 whose body is not JSON
    emulator.inject(body_fault, count=1)
    # when a run is read, then a named bad-response error
    with pytest.raises(TalonicBadResponseError):
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000")


# -- rate limits ------------------------------------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(emulator, make_client, sleeper):
    # given a 429 asking for 7 seconds
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.inject("status", count=1, status=429, retry_after_seconds=7)
    # when the run is read
    make_client(READ_KEY).get_run(run["id"])
    # then the client waited exactly 7 s, once
    assert sleeper.waits == [pytest.approx(7)]


def test_429_retry_after_as_an_http_date(emulator, make_client, sleeper, clock):
    # given Retry-After sent as an HTTP-date 12 s ahead of the server's clock
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.retry_after = "http-date"
    emulator.inject("status", count=1, status=429, retry_after_seconds=12)
    # when the run is read, then the wait is the date's distance from now
    make_client(READ_KEY).get_run(run["id"])
    assert sleeper.waits == [pytest.approx(12, abs=1)]


@pytest.mark.parametrize("reset_format", ["epoch", "iso"])
def test_without_retry_after_the_reset_header_decides(emulator, make_client, sleeper, reset_format):
    # given a per-second rate limit of 2, no Retry-After, and the reset header in one of its formats
    emulator.rate_limit_per_second = 2
    emulator.retry_after = None
    emulator.rate_limit_reset_format = reset_format
    run = emulator.add_run(golden_sample_id=GOLDEN)
    client = make_client(READ_KEY)
    # when three reads happen within one second
    for _ in range(3):
        client.get_run(run["id"])
    # then the third waited until the window reset (at most a second), and no read failed
    assert len(sleeper.waits) == 1
    assert 0 < sleeper.waits[0] <= 1.0
    assert [r.status for r in emulator.requests] == [200, 200, 429, 200]


def test_429_without_any_hint_backs_off(emulator, make_client, sleeper):
    # given a 429 with neither Retry-After nor rate-limit headers
    run = emulator.add_run(golden_sample_id=GOLDEN)
    emulator.retry_after = None
    emulator.rate_limit_headers = False
    emulator.inject("status", count=1, status=429)
    # when the run is read, then the client used its own backoff
    make_client(READ_KEY).get_run(run["id"])
    assert sleeper.waits == [pytest.approx(0.75)]


def test_a_wait_beyond_the_time_budget_raises_with_when_to_come_back(emulator, make_client, sleeper):
    # given a 429 asking for 30 s and a call that may take 5 s
    emulator.inject("status", count=1, status=429, retry_after_seconds=30)
    # when the run is read
    with pytest.raises(TalonicRateLimitedError) as caught:
        make_client(READ_KEY).get_run("0b9f7a3e-0000-4000-8000-000000000000", budget_seconds=5)
    # then the client did not sleep and said when to come back
    assert sleeper.waits == []
    assert caught.value.retry_after_seconds == pytest.approx(30)
    assert "come back in 30.0 s" in str(caught.value)


def test_rate_limit_headers_are_exposed_to_callers(emulator, make_client):
    # given a daily quota of 10 requests
    emulator.daily_quota = 10
    run = emulator.add_run(golden_sample_id=GOLDEN)
    client = make_client(READ_KEY)
    # when two reads are made
    client.get_run(run["id"])
    client.get_run(run["id"])
    # then the client knows how much is left and when it resets (next UTC midnight)
    assert client.rate_limit is not None
    assert client.rate_limit.limit == 10
    assert client.rate_limit.remaining == 8
    assert client.rate_limit.remaining_share == pytest.approx(0.8)
    midnight = datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert client.rate_limit.reset_at == pytest.approx(midnight)


# -- secrecy ------------------------------------------------------------------------------------------------


def test_the_key_appears_in_no_log_line_and_no_error(emulator, make_client, caplog):
    # given every logger at DEBUG (urllib3 included) and a mix of answers: retries, 401, 403, 404, 429
    caplog.set_level(logging.DEBUG)
    emulator.error_shape = "flat"
    run = emulator.add_run(golden_sample_id=GOLDEN)
    errors: list[str] = []
    write = make_client(WRITE_KEY)
    read = make_client(READ_KEY)
    other = make_client(OTHER_ORG_KEY)
    emulator.inject("status", count=2, status=503)
    emulator.inject("status", count=1, status=429, retry_after_seconds=1)
    write.get_run(run["id"])
    for call in (
        lambda: read.delete_run(run["id"]),
        lambda: other.get_run(run["id"]),
        lambda: make_client("tlnc_test_unknown_key_000").list_runs(),
    ):
        try:
            call()
        except Exception as error:
            errors.append(f"{error!s} {error!r}")
    # then neither log records nor error texts contain any key
    text = caplog.text + "\n".join(errors) + "".join(repr(r.__dict__) for r in caplog.records)
    assert len(errors) == 3
    for key in (READ_KEY, WRITE_KEY, OTHER_ORG_KEY, "tlnc_test_unknown_key_000"):
        assert key not in text
    assert "Talonic call" in caplog.text  # the client did log its calls
