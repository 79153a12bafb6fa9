"""Tests of the Talonic emulator, over real HTTP on 127.0.0.1.

The emulator is the ground the watchdog's integration tests stand on, so each fact of
talonic-api.md it claims to mirror is pinned here. Time is a FakeClock throughout: no test waits for
wall-clock time to pass (the "slow" fault test only needs the client to give up first).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from local.talonic_emulator import (
    FakeClock,
    RecordedRequest,
    RunBehaviour,
    TalonicEmulator,
    generate_results,
    iso_ms,
    row_is_correct,
)

RW_KEY = "tlnc_test_readwrite_key_0001"
READ_KEY = "tlnc_test_readonly_key_0002"
OTHER_ORG_KEY = "tlnc_live_other_org_key_0003"
ALL_KEYS = (RW_KEY, READ_KEY, OTHER_ORG_KEY)
RUNS = "/v1/validation/runs"
START = FakeClock()()  # 2024-09-14T10:32:00.000Z
QUICK = RunBehaviour(pending_reads=0, running_reads=0)  # completed on the first GET
FIELDS = {"invoice_number": (3, 4), "total_amount": (2, 4), "vendor_name": (1, 2)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[TalonicEmulator]:
    with TalonicEmulator(clock=clock) as emulator:
        emulator.add_key(RW_KEY, {"read", "write"}, alias="rw")
        emulator.add_key(READ_KEY, {"read"}, alias="ro")
        emulator.add_key(OTHER_ORG_KEY, {"read", "write"}, org="org_other")
        yield emulator


def call(
    emu: TalonicEmulator,
    method: str,
    path: str,
    *,
    key: str | None = RW_KEY,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    **kwargs: Any,
) -> requests.Response:
    """One request with its own connection, authenticated with ``key`` unless it is None."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return requests.request(method, emu.url + path, headers=sent, timeout=timeout, **kwargs)


def run_path(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def results_path(run_id: str) -> str:
    return f"{RUNS}/{run_id}/results"


def follow_pages(emu: TalonicEmulator, path: str, **params: str) -> list[list[dict[str, Any]]]:
    """Every page of a cursor-paginated listing, following next_cursor until has_more is false."""
    pages: list[list[dict[str, Any]]] = []
    query = dict(params)
    while True:
        body = call(emu, "GET", path, params=query).json()
        pages.append(body["data"])
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            return pages
        query["cursor"] = body["pagination"]["next_cursor"]


# --------------------------------------------------------------------------- lifecycle


def test_serves_on_an_ephemeral_loopback_port_until_stopped() -> None:
    # given a started emulator
    emulator = TalonicEmulator(clock=FakeClock()).start()
    url = emulator.url
    # when it is asked something, then it answers (401: no key)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert requests.get(url + RUNS, timeout=5).status_code == 401
    # when it stops, then nothing listens there any more
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + RUNS, timeout=5)
    with pytest.raises(RuntimeError):
        _ = emulator.url


def test_every_response_carries_a_request_id_that_error_bodies_repeat(emu: TalonicEmulator) -> None:
    # given one successful and one failing request
    ok = call(emu, "GET", RUNS)
    missing = call(emu, "GET", run_path("nope"))
    # then both have X-Request-Id req_<hex>, and the flat error body carries the same id
    for response in (ok, missing):
        assert re.fullmatch(r"req_[0-9a-f]+", response.headers["X-Request-Id"])
    assert missing.json()["request_id"] == missing.headers["X-Request-Id"]
    assert ok.headers["X-Request-Id"] != missing.headers["X-Request-Id"]


# --------------------------------------------------------------------------- endpoints


def test_post_creates_a_pending_run(emu: TalonicEmulator) -> None:
    # given a key with the write scope
    body = {"golden_sample_id": "gs_invoices", "dataspace_run_id": "dsr_42", "name": "nightly"}
    # when it creates a run
    response = call(emu, "POST", RUNS, json=body)
    # then the API answers 201 with a documented, pending run
    assert response.status_code == 201
    run = response.json()
    assert uuid.UUID(run["id"]).version == 4
    assert run == {
        "id": run["id"],
        "name": "nightly",
        "status": "pending",
        "dataspace_run_id": "dsr_42",
        "golden_sample_id": "gs_invoices",
        "accuracy": None,
        "total_comparisons": None,
        "created_at": "2024-09-14T10:32:00.000Z",
        "completed_at": None,
        "links": {"self": run_path(run["id"]), "results": results_path(run["id"])},
    }
    assert emu.runs[run["id"]]["status"] == "pending"


def test_post_response_is_pending_even_if_the_run_would_already_be_done(emu: TalonicEmulator) -> None:
    # given runs that finish instantly
    emu.default_behaviour = RunBehaviour(pending_seconds=0, running_seconds=0)
    # when one is created, then the create response still shows it as created: pending
    assert call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}).json()["status"] == "pending"


def test_get_returns_the_run(emu: TalonicEmulator) -> None:
    # given a run
    run = emu.add_run(golden_sample_id="gs_1", name="first", dataspace_run_id="dsr_1")
    # when it is read
    response = call(emu, "GET", run_path(run["id"]))
    # then it comes back as stored
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == run


def test_get_unknown_run_is_404(emu: TalonicEmulator) -> None:
    # when an unknown id is read, then 404 with the documented flat code
    response = call(emu, "GET", run_path(str(uuid.uuid4())))
    assert response.status_code == 404
    assert response.json()["code"] == "RESOURCE_NOT_FOUND"


def test_delete_removes_the_run_and_its_results(emu: TalonicEmulator) -> None:
    # given a completed run with results
    run = emu.add_run(golden_sample_id="gs_1", behaviour=QUICK, status="completed")
    assert call(emu, "GET", results_path(run["id"])).json()["data"]
    # when it is deleted
    response = call(emu, "DELETE", run_path(run["id"]))
    # then the API confirms, and the run and its results are gone
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "id": run["id"]}
    assert call(emu, "GET", run_path(run["id"])).status_code == 404
    assert call(emu, "GET", results_path(run["id"])).status_code == 404
    # and a second delete is a 404
    assert call(emu, "DELETE", run_path(run["id"])).status_code == 404


def test_list_is_newest_first_and_capped_at_the_newest_100(emu: TalonicEmulator) -> None:
    # given 105 runs created one second apart, inserted out of order, plus another org's run
    for offset in [*range(50, 105), *range(50)]:
        emu.add_run(golden_sample_id=f"gs_{offset}", created_at=START + offset, run_id=f"run_{offset:03d}")
    emu.add_run(golden_sample_id="gs_other", org="org_other", created_at=START + 1000)
    # when the list is read
    response = call(emu, "GET", RUNS)
    # then it holds only this org's newest 100, newest first, and no pagination block
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"data"}
    assert [run["id"] for run in body["data"]] == [f"run_{offset:03d}" for offset in range(104, 4, -1)]


def test_list_ignores_query_parameters_when_not_paginating(emu: TalonicEmulator) -> None:
    # given three runs and the documented (unpaginated) list
    for offset in range(3):
        emu.add_run(golden_sample_id="gs", created_at=START + offset)
    # when a client sends limit anyway, then it is ignored, as the docs document no parameters
    assert len(call(emu, "GET", RUNS, params={"limit": "1"}).json()["data"]) == 3


def test_list_pagination_follows_cursors_past_the_cap(emu: TalonicEmulator) -> None:
    # given 130 runs and cursor pagination switched on with pages of 40
    for offset in range(130):
        emu.add_run(golden_sample_id="gs", created_at=START + offset, run_id=f"run_{offset:03d}")
    emu.list_page_size = 40
    # when every page is followed
    pages = follow_pages(emu, RUNS)
    # then all 130 runs come back once, newest first, 40 per page
    assert [len(page) for page in pages] == [40, 40, 40, 10]
    ids = [run["id"] for page in pages for run in page]
    assert ids == [f"run_{offset:03d}" for offset in range(129, -1, -1)]
    first = call(emu, "GET", RUNS).json()["pagination"]
    assert first["total"] == 130
    assert first["limit"] == 40
    assert first["has_more"] is True


def test_list_cursor_is_stable_when_runs_are_added_between_pages(emu: TalonicEmulator) -> None:
    # given four runs, pages of two, and the first page read
    for offset in range(4):
        emu.add_run(golden_sample_id="gs", created_at=START + offset, run_id=f"run_{offset}")
    emu.list_page_size = 2
    first = call(emu, "GET", RUNS).json()
    # when a newer run appears before the second page is read
    emu.add_run(golden_sample_id="gs", created_at=START + 10, run_id="run_new")
    second = call(emu, "GET", RUNS, params={"cursor": first["pagination"]["next_cursor"]}).json()
    # then the second page continues where the first stopped
    assert [run["id"] for run in first["data"]] == ["run_3", "run_2"]
    assert [run["id"] for run in second["data"]] == ["run_1", "run_0"]


def test_limit_parameter_and_bad_cursor_in_pagination_mode(emu: TalonicEmulator) -> None:
    # given pagination mode and three runs
    emu.list_page_size = 50
    for offset in range(3):
        emu.add_run(golden_sample_id="gs", created_at=START + offset)
    # when ?limit= is given, then it sets the page size
    body = call(emu, "GET", RUNS, params={"limit": "2"}).json()
    assert len(body["data"]) == 2
    assert body["pagination"]["limit"] == 2
    # when the cursor or limit is garbage, then 400
    assert call(emu, "GET", RUNS, params={"cursor": "not-a-cursor"}).status_code == 400
    assert call(emu, "GET", RUNS, params={"limit": "zero"}).status_code == 400


def test_unknown_route_is_404_and_wrong_method_is_405(emu: TalonicEmulator) -> None:
    # when a path or method outside the API is used
    unknown = call(emu, "GET", "/v1/validation/nothing")
    wrong_method = call(emu, "PUT", run_path("abc"))
    # then 404 and 405 with an Allow header
    assert unknown.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "DELETE, GET"


# --------------------------------------------------------------------------- creating runs: bad bodies


@pytest.mark.parametrize(
    ("body", "expected_status"),
    [
        (b"not json", 400),
        (b"", 400),
        (b"[1, 2]", 400),
        (b"{}", 400),
        (b'{"golden_sample_id": ""}', 400),
        (b'{"golden_sample_id": 7}', 400),
        (b'{"golden_sample_id": "gs", "name": 5}', 400),
    ],
)
def test_post_rejects_bad_bodies_with_a_validation_error(
    emu: TalonicEmulator, body: bytes, expected_status: int
) -> None:
    # when a bad body is posted
    response = call(emu, "POST", RUNS, data=body, headers={"Content-Type": "application/json"})
    # then a non-retryable validation error, and no run
    assert response.status_code == expected_status
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["retryable"] is False
    assert emu.runs == {}


def test_field_errors_can_be_422(emu: TalonicEmulator) -> None:
    # given an API that answers field errors with 422
    emu.validation_error_status = 422
    # when golden_sample_id is missing, then 422; a non-JSON body stays 400
    assert call(emu, "POST", RUNS, json={"name": "x"}).status_code == 422
    assert call(emu, "POST", RUNS, data=b"{").status_code == 400


def test_post_with_an_unknown_golden_sample_is_404_when_samples_are_known(emu: TalonicEmulator) -> None:
    # given the emulator knows which golden samples exist
    emu.known_golden_samples = {"gs_real"}
    # when runs are created, then only known samples are accepted
    assert call(emu, "POST", RUNS, json={"golden_sample_id": "gs_ghost"}).status_code == 404
    assert call(emu, "POST", RUNS, json={"golden_sample_id": "gs_real"}).status_code == 201


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer tlnc_test_not_registered_9999", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["missing", "unknown", "wrong-scheme", "empty"],
)
def test_requests_without_a_valid_key_are_401(emu: TalonicEmulator, authorization: str | None) -> None:
    # given a request with no usable key
    headers = {} if authorization is None else {"Authorization": authorization}
    # when it asks for the list
    response = call(emu, "GET", RUNS, key=None, headers=headers)
    # then 401 with the documented code, not retryable
    assert response.status_code == 401
    assert response.json()["code"] == "AUTH_REQUIRED"
    assert response.json()["retryable"] is False


def test_revoked_key_is_401(emu: TalonicEmulator) -> None:
    # given a key that worked
    assert call(emu, "GET", RUNS).status_code == 200
    # when it is revoked, then it gets 401
    emu.revoke_key(RW_KEY)
    assert call(emu, "GET", RUNS).status_code == 401


def test_missing_scope_is_403_listing_the_required_scopes(emu: TalonicEmulator) -> None:
    # given a read-only key and a run
    run = emu.add_run(golden_sample_id="gs")
    # when it tries to write
    created = call(emu, "POST", RUNS, key=READ_KEY, json={"golden_sample_id": "gs"})
    deleted = call(emu, "DELETE", run_path(run["id"]), key=READ_KEY)
    # then 403 with the scope it lacks, and nothing changed
    for response in (created, deleted):
        assert response.status_code == 403
        assert response.json()["required_scopes"] == ["write"]
        assert response.json()["code"] == "INSUFFICIENT_PERMISSIONS"
    assert list(emu.runs) == [run["id"]]
    # and in the nested shape the documented lower-case code appears
    emu.error_shape = "nested"
    error = call(emu, "POST", RUNS, key=READ_KEY, json={"golden_sample_id": "gs"}).json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["required_scopes"] == ["write"]


def test_a_key_without_read_cannot_list(emu: TalonicEmulator) -> None:
    # given a key with write only
    emu.add_key("tlnc_test_write_only_0004", {"write"})
    # when it lists, then 403 asking for read
    response = call(emu, "GET", RUNS, key="tlnc_test_write_only_0004")
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["read"]


def test_another_orgs_run_is_indistinguishable_from_a_missing_one(emu: TalonicEmulator) -> None:
    # given a run of another organization
    run = emu.add_run(golden_sample_id="gs", org="org_other", behaviour=QUICK)
    # when this org's key reads, lists, fetches results of, or deletes it
    # then it is 404 / absent, and the run survives
    assert call(emu, "GET", run_path(run["id"])).status_code == 404
    assert call(emu, "GET", results_path(run["id"])).status_code == 404
    assert call(emu, "DELETE", run_path(run["id"])).status_code == 404
    assert call(emu, "GET", RUNS).json() == {"data": []}
    assert call(emu, "GET", run_path(run["id"]), key=OTHER_ORG_KEY).status_code == 200


# --------------------------------------------------------------------------- progression


def test_read_count_progression_goes_pending_running_completed(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given a run scripted by read counts
    behaviour = RunBehaviour(pending_reads=1, running_reads=2, fields=FIELDS)
    run = emu.add_run(golden_sample_id="gs", behaviour=behaviour)
    # when it is polled five times (the clock barely moves)
    seen = []
    for _ in range(5):
        clock.advance(0.25)
        seen.append(call(emu, "GET", run_path(run["id"])).json())
    # then the statuses follow the script
    assert [body["status"] for body in seen] == ["pending", "running", "running", "completed", "completed"]
    # and accuracy, total_comparisons and completed_at appear only once completed
    assert [body["accuracy"] for body in seen[:3]] == [None, None, None]
    assert seen[3]["accuracy"] == pytest.approx(6 / 10)
    assert seen[3]["total_comparisons"] == 10
    assert seen[3]["completed_at"] == iso_ms(START + 1.0)
    assert seen[4]["completed_at"] == seen[3]["completed_at"]
    assert emu.read_count(run["id"]) == 5


def test_results_are_empty_until_the_run_completes(emu: TalonicEmulator) -> None:
    # given a run that completes on its second read
    run = emu.add_run(golden_sample_id="gs", behaviour=RunBehaviour(pending_reads=1, fields=FIELDS))
    # when results are fetched before and after completion (results reads are not status reads)
    before = call(emu, "GET", results_path(run["id"])).json()
    call(emu, "GET", run_path(run["id"]))
    still_before = call(emu, "GET", results_path(run["id"])).json()
    call(emu, "GET", run_path(run["id"]))
    after = call(emu, "GET", results_path(run["id"])).json()
    # then they appear only after the status read that showed completion
    assert before == still_before == {"data": []}
    assert len(after["data"]) == 10
    assert emu.read_count(run["id"]) == 2


def test_clock_progression_follows_the_fake_clock(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given runs created by POST that are pending 5 s and running 10 s
    emu.default_behaviour = RunBehaviour(pending_seconds=5, running_seconds=10, accuracy=0.875)
    run_id = call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}).json()["id"]

    def status_at(elapsed: float) -> dict[str, Any]:
        clock.set(START + elapsed)
        body: dict[str, Any] = call(emu, "GET", run_path(run_id)).json()
        return body

    # when time moves, then the status follows it, however often the run is read
    assert status_at(0)["status"] == "pending"
    assert status_at(4.999)["status"] == "pending"
    assert status_at(5)["status"] == "running"
    assert status_at(14.9)["status"] == "running"
    done = status_at(60)
    assert done["status"] == "completed"
    assert done["accuracy"] == 0.875
    assert done["completed_at"] == "2024-09-14T10:32:15.000Z"


def test_failed_run_has_no_accuracy_and_no_results(emu: TalonicEmulator) -> None:
    # given a run that fails on its first read
    run = emu.add_run(golden_sample_id="gs", behaviour=RunBehaviour(running_reads=0, final_status="failed"))
    # when it is read
    body = call(emu, "GET", run_path(run["id"])).json()
    # then it is failed, finished, and without accuracy or results
    assert body["status"] == "failed"
    assert body["accuracy"] is None
    assert body["total_comparisons"] is None
    assert body["completed_at"] == iso_ms(START)
    assert call(emu, "GET", results_path(run["id"])).json() == {"data": []}


def test_posted_runs_use_the_golden_sample_override_else_the_default(emu: TalonicEmulator) -> None:
    # given a default behaviour and an override for one golden sample
    emu.default_behaviour = QUICK
    emu.behaviour_by_golden_sample["gs_broken"] = RunBehaviour(running_reads=0, final_status="failed")
    ok = call(emu, "POST", RUNS, json={"golden_sample_id": "gs_fine"}).json()
    broken = call(emu, "POST", RUNS, json={"golden_sample_id": "gs_broken"}).json()
    # when both are read, then each followed its own behaviour
    assert call(emu, "GET", run_path(ok["id"])).json()["status"] == "completed"
    assert call(emu, "GET", run_path(broken["id"])).json()["status"] == "failed"


def test_unknown_status_can_be_forced_and_released(emu: TalonicEmulator) -> None:
    # given a run that would complete on its first read
    run = emu.add_run(golden_sample_id="gs", behaviour=QUICK)
    # when its status is forced to a value the docs do not list
    emu.set_status(run["id"], "archived")
    forced = call(emu, "GET", run_path(run["id"])).json()
    # then the API reports it verbatim, unfinished
    assert forced["status"] == "archived"
    assert forced["completed_at"] is None
    assert forced["accuracy"] is None
    # and releasing the force returns to the script
    emu.set_status(run["id"], None)
    assert call(emu, "GET", run_path(run["id"])).json()["status"] == "completed"


def test_removing_a_run_behind_the_clients_back_makes_it_404(emu: TalonicEmulator) -> None:
    # given a run the client knows
    run = emu.add_run(golden_sample_id="gs")
    assert call(emu, "GET", run_path(run["id"])).status_code == 200
    # when it disappears out of band, then the client gets 404
    emu.remove_run(run["id"])
    assert call(emu, "GET", run_path(run["id"])).status_code == 404


# --------------------------------------------------------------------------- results


def test_results_have_every_documented_column_and_add_up_per_field(emu: TalonicEmulator) -> None:
    # given a completed run with known per-field outcomes
    run = emu.add_run(golden_sample_id="gs", behaviour=RunBehaviour(fields=FIELDS), status="completed")
    # when its results are read
    rows = call(emu, "GET", results_path(run["id"])).json()["data"]
    # then every row has the documented columns, and per-field correctness matches the script
    assert {frozenset(row) for row in rows} == {
        frozenset(
            {
                "id",
                "validation_run_id",
                "document_id",
                "field_name",
                "expected_value",
                "actual_value",
                "match_type",
                "similarity_score",
                "confidence",
                "judge_verdict",
                "created_at",
            }
        )
    }
    assert {row["validation_run_id"] for row in rows} == {run["id"]}
    assert {row["document_id"] for row in rows} == {"doc_1", "doc_2", "doc_3", "doc_4"}
    totals = Counter(row["field_name"] for row in rows)
    correct = Counter(row["field_name"] for row in rows if row_is_correct(row))
    assert {name: (correct[name], totals[name]) for name in totals} == FIELDS
    assert {row["judge_verdict"] for row in rows} == {None, "correct", "incorrect"}
    assert {row["match_type"] for row in rows} == {"exact", "fuzzy", "no_match"}
    shown = call(emu, "GET", run_path(run["id"])).json()
    assert shown["total_comparisons"] == len(rows)
    assert shown["accuracy"] == pytest.approx(6 / 10)


def test_judged_only_returns_only_rows_the_judge_saw(emu: TalonicEmulator) -> None:
    # given a completed run
    run = emu.add_run(golden_sample_id="gs", status="completed")
    # when results are read with and without judged_only
    everything = call(emu, "GET", results_path(run["id"]), params={"judged_only": "false"}).json()["data"]
    judged = call(emu, "GET", results_path(run["id"]), params={"judged_only": "true"}).json()["data"]
    # then judged_only is exactly the rows with a verdict
    assert judged == [row for row in everything if row["judge_verdict"] is not None]
    assert 0 < len(judged) < len(everything)
    assert call(emu, "GET", results_path(run["id"]), params={"judged_only": "maybe"}).status_code == 400


def test_results_pagination_follows_cursors(emu: TalonicEmulator) -> None:
    # given a completed run with 40 rows and results pages of 7
    run = emu.add_run(golden_sample_id="gs", status="completed")
    emu.results_page_size = 7
    # when every page is followed, with and without judged_only
    pages = follow_pages(emu, results_path(run["id"]))
    judged_pages = follow_pages(emu, results_path(run["id"]), judged_only="true")
    # then the pages concatenate to the full listing
    assert [len(page) for page in pages] == [7, 7, 7, 7, 7, 5]
    assert [row for page in pages for row in page] == emu.results(run["id"])
    assert [row for page in judged_pages for row in page] == emu.results(run["id"], judged_only=True)


# --------------------------------------------------------------------------- idempotency


def test_repeated_post_with_an_idempotency_key_returns_the_first_response(
    emu: TalonicEmulator, clock: FakeClock
) -> None:
    # given a POST with an Idempotency-Key
    headers = {"Idempotency-Key": "create-1"}
    first = call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers)
    # when it is repeated an hour later, even with a different body
    clock.advance(3600)
    again = call(emu, "POST", RUNS, json={"golden_sample_id": "other"}, headers=headers)
    # then the first response comes back unchanged and only one run exists
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(emu.runs) == 1
    assert [record.idempotent_replay for record in emu.requests] == [False, True]


def test_idempotency_keys_are_per_org_and_expire_after_24_hours(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given a run created with an Idempotency-Key
    headers = {"Idempotency-Key": "create-1"}
    call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers)
    # when another org uses the same key, then it gets its own run
    call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers, key=OTHER_ORG_KEY)
    assert len(emu.runs) == 2
    # when the key is reused after 24 hours, then it is a new request
    clock.advance(24 * 3600)
    assert call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers).status_code == 201
    assert len(emu.runs) == 3


def test_repeated_delete_with_an_idempotency_key_returns_the_first_response(emu: TalonicEmulator) -> None:
    # given a deleted run
    run = emu.add_run(golden_sample_id="gs")
    first = call(emu, "DELETE", run_path(run["id"]), headers={"Idempotency-Key": "del-1"})
    # when the delete is repeated with the same key, then it still reads as a success
    again = call(emu, "DELETE", run_path(run["id"]), headers={"Idempotency-Key": "del-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == {"deleted": True, "id": run["id"]}
    # but without the key a repeat is a 404
    assert call(emu, "DELETE", run_path(run["id"])).status_code == 404


# --------------------------------------------------------------------------- error shapes


def test_flat_error_shape(emu: TalonicEmulator) -> None:
    # when something is not found in the default (flat) shape
    response = call(emu, "GET", run_path("missing"))
    # then the body is the documented flat error
    assert response.json() == {
        "statusCode": 404,
        "code": "RESOURCE_NOT_FOUND",
        "error": "Not Found",
        "message": "Validation run not found.",
        "retryable": False,
        "request_id": response.headers["X-Request-Id"],
        "timestamp": "2024-09-14T10:32:00.000Z",
        "path": run_path("missing"),
    }


def test_nested_error_shape(emu: TalonicEmulator) -> None:
    # given the nested shape
    emu.error_shape = "nested"
    # when something is not found
    response = call(emu, "GET", run_path("missing"))
    # then the error sits under "error" with a lower-case code
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "Validation run not found.",
            "retryable": False,
            "request_id": response.headers["X-Request-Id"],
        }
    }


def test_short_error_shape(emu: TalonicEmulator) -> None:
    # given the short shape
    emu.error_shape = "short"
    # when something is not found, then status, code and message only
    response = call(emu, "GET", run_path("missing"))
    assert response.json() == {"status": 404, "code": "not_found", "message": "Validation run not found."}


def test_empty_and_text_error_shapes(emu: TalonicEmulator) -> None:
    # given bodies that are empty, then ones that are not JSON
    emu.error_shape = "empty"
    empty = call(emu, "GET", run_path("missing"))
    emu.error_shape = "text"
    text = call(emu, "GET", run_path("missing"))
    # then the status still says what happened
    assert (empty.status_code, empty.content) == (404, b"")
    assert text.status_code == 404
    assert text.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        text.json()


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (503, True), (409, False)])
def test_retryable_is_true_exactly_for_429_and_5xx(emu: TalonicEmulator, status: int, retryable: bool) -> None:
    # given an injected error, when it is served, then "retryable" reflects its status in both JSON shapes
    emu.inject("status", status=status)
    assert call(emu, "GET", RUNS).json()["retryable"] is retryable
    emu.error_shape = "nested"
    emu.inject("status", status=status)
    assert call(emu, "GET", RUNS).json()["error"]["retryable"] is retryable


def test_openapi_run_shape(emu: TalonicEmulator) -> None:
    # given the OpenAPI models' shape and a completed run
    emu.run_shape = "openapi"
    run = emu.add_run(golden_sample_id="gs", name="hidden", dataspace_run_id="dsr", status="completed")
    # when it is read
    body = call(emu, "GET", run_path(run["id"])).json()
    # then accuracy_overall, documents_processed and schema_id replace the documented extras
    assert set(body) == {
        "id",
        "status",
        "golden_sample_id",
        "schema_id",
        "accuracy_overall",
        "documents_processed",
        "created_at",
        "completed_at",
        "links",
    }
    assert body["accuracy_overall"] == pytest.approx(34 / 40)
    assert body["documents_processed"] == 10


# --------------------------------------------------------------------------- rate limits


def test_per_second_limit_answers_429_with_retry_after_seconds(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given 2 requests per second and a clock 0.25 s into a window
    emu.rate_limit_per_second = 2
    clock.set(START + 0.25)
    # when a third request arrives in the same second
    responses = [call(emu, "GET", RUNS) for _ in range(3)]
    # then it is refused, retryable, with Retry-After in seconds and the headers counting down
    assert [response.status_code for response in responses] == [200, 200, 429]
    assert [response.headers["X-RateLimit-Remaining"] for response in responses] == ["1", "0", "0"]
    assert {response.headers["X-RateLimit-Limit"] for response in responses} == {"2"}
    assert {response.headers["X-RateLimit-Reset"] for response in responses} == {str(int(START) + 1)}
    assert responses[2].headers["Retry-After"] == "1"
    assert responses[2].json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert responses[2].json()["retryable"] is True
    # when the next second starts, then requests pass again
    clock.advance(1)
    assert call(emu, "GET", RUNS).status_code == 200


def test_rate_limits_are_per_key(emu: TalonicEmulator) -> None:
    # given one request per second, used up by one key
    emu.rate_limit_per_second = 1
    assert call(emu, "GET", RUNS).status_code == 200
    # when another key asks in the same second, then it has its own budget
    assert call(emu, "GET", RUNS, key=READ_KEY).status_code == 200
    assert call(emu, "GET", RUNS).status_code == 429


def test_retry_after_as_http_date(emu: TalonicEmulator) -> None:
    # given Retry-After as an HTTP-date and an exhausted second
    emu.rate_limit_per_second = 1
    emu.retry_after = "http-date"
    call(emu, "GET", RUNS)
    # when refused
    response = call(emu, "GET", RUNS)
    # then Retry-After names the end of the window
    assert response.status_code == 429
    assert parsedate_to_datetime(response.headers["Retry-After"]) == datetime.fromtimestamp(START + 1, tz=UTC)


def test_retry_after_can_be_absent_and_reset_can_be_iso(emu: TalonicEmulator) -> None:
    # given no Retry-After and X-RateLimit-Reset in ISO 8601
    emu.rate_limit_per_second = 1
    emu.retry_after = None
    emu.rate_limit_reset_format = "iso"
    call(emu, "GET", RUNS)
    # when refused
    response = call(emu, "GET", RUNS)
    # then only the rate-limit headers say when to come back
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["X-RateLimit-Reset"] == "2024-09-14T10:32:01.000Z"


def test_rate_limit_headers_can_be_switched_off(emu: TalonicEmulator) -> None:
    # given a plan whose responses carry no rate-limit headers
    emu.rate_limit_per_second = 1
    emu.rate_limit_headers = False
    # when requests pass and are refused, then no X-RateLimit-* header appears
    responses = [call(emu, "GET", RUNS), call(emu, "GET", RUNS)]
    assert [response.status_code for response in responses] == [200, 429]
    assert not [name for response in responses for name in response.headers if name.lower().startswith("x-ratelimit")]
    assert responses[1].headers["Retry-After"] == "1"


def test_exhausted_daily_quota_wins_over_the_per_second_window(emu: TalonicEmulator) -> None:
    # given both budgets, with the daily one used up
    emu.rate_limit_per_second = 10
    emu.daily_quota = 1
    first, refused = call(emu, "GET", RUNS), call(emu, "GET", RUNS)
    # then successes report the per-second window, the refusal points at UTC midnight
    midnight = int(datetime(2024, 9, 15, tzinfo=UTC).timestamp())
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Reset"]) == ("10", str(int(START) + 1))
    assert refused.status_code == 429
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Reset"]) == ("1", str(midnight))


def test_no_rate_limit_headers_without_a_configured_limit(emu: TalonicEmulator) -> None:
    # when nothing limits the key, then there is no budget to report
    assert "X-RateLimit-Limit" not in call(emu, "GET", RUNS).headers


def test_daily_quota_counts_down_and_resets_at_utc_midnight(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given a daily quota of 3
    emu.daily_quota = 3
    midnight = int(datetime(2024, 9, 15, tzinfo=UTC).timestamp())
    # when 4 requests are made across the day
    responses = []
    for _ in range(4):
        clock.advance(3600)
        responses.append(call(emu, "GET", RUNS))
    # then the quota counts down and the 4th is refused until midnight
    assert [response.status_code for response in responses] == [200, 200, 200, 429]
    assert [response.headers["X-RateLimit-Remaining"] for response in responses] == ["2", "1", "0", "0"]
    assert {response.headers["X-RateLimit-Limit"] for response in responses} == {"3"}
    assert {response.headers["X-RateLimit-Reset"] for response in responses} == {str(midnight)}
    assert responses[3].headers["Retry-After"] == str(midnight - int(clock()))
    # when the UTC day turns, then the quota is back
    clock.set(midnight)
    reset = call(emu, "GET", RUNS)
    assert reset.status_code == 200
    assert reset.headers["X-RateLimit-Remaining"] == "2"


# --------------------------------------------------------------------------- faults


def test_status_fault_is_served_once_then_normal_service_resumes(emu: TalonicEmulator) -> None:
    # given one injected 503
    emu.inject("status", status=503)
    # when two requests arrive
    first, second = call(emu, "GET", RUNS), call(emu, "GET", RUNS)
    # then the first gets a retryable 503 in the current shape, the second succeeds
    assert first.status_code == 503
    assert first.json()["code"] == "SERVICE_UNAVAILABLE"
    assert second.status_code == 200
    assert [record.fault for record in emu.requests] == ["status", None]


def test_injected_429_honours_the_retry_after_knob_and_override(emu: TalonicEmulator) -> None:
    # given 429 faults: default, with an explicit delay, and with Retry-After switched off
    emu.inject("status", status=429)
    emu.inject("status", status=429, retry_after_seconds=7)
    default, explicit = call(emu, "GET", RUNS), call(emu, "GET", RUNS)
    emu.retry_after = None
    emu.inject("status", status=429)
    absent = call(emu, "GET", RUNS)
    # then the Retry-After header follows
    assert default.headers["Retry-After"] == "1"
    assert explicit.headers["Retry-After"] == "7"
    assert "Retry-After" not in absent.headers
    assert {default.status_code, explicit.status_code, absent.status_code} == {429}


def test_drop_fault_closes_the_connection_without_a_response(emu: TalonicEmulator) -> None:
    # given a dropped connection for the next request
    emu.inject("drop")
    # when a client asks, then it sees a connection error
    with pytest.raises(requests.ConnectionError):
        call(emu, "GET", RUNS)
    # and the request is recorded without a status
    (record,) = emu.requests
    assert (record.status, record.fault) == (None, "drop")
    assert call(emu, "GET", RUNS).status_code == 200


def test_drop_after_processing_loses_the_response_but_not_the_effect(emu: TalonicEmulator) -> None:
    # given a POST whose response is lost after the run was created
    emu.inject("drop", method="POST", after_processing=True)
    headers = {"Idempotency-Key": "create-7"}
    with pytest.raises(requests.ConnectionError):
        call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers)
    # when the client retries with the same Idempotency-Key
    retry = call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers=headers)
    # then it learns about the one run that exists
    assert retry.status_code == 201
    assert list(emu.runs) == [retry.json()["id"]]


def test_malformed_and_empty_faults_answer_200_with_unparseable_bodies(emu: TalonicEmulator) -> None:
    # given a malformed body then an empty one
    emu.inject("malformed")
    emu.inject("empty")
    malformed, empty = call(emu, "GET", RUNS), call(emu, "GET", RUNS)
    # then both are 200s a JSON parser rejects
    assert malformed.status_code == empty.status_code == 200
    assert empty.content == b""
    for response in (malformed, empty):
        with pytest.raises(requests.JSONDecodeError):
            response.json()


def test_slow_fault_makes_the_client_time_out_after_the_effect(emu: TalonicEmulator) -> None:
    # given a POST answered only after a second
    emu.inject("slow", seconds=1)
    # when the client waits 0.2 s, then it times out
    with pytest.raises(requests.ReadTimeout):
        call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, timeout=0.2)
    # and the run was created anyway, as on a real server
    assert len(emu.runs) == 1
    assert emu.requests[0].fault == "slow"


def test_latency_knob_delays_every_response(emu: TalonicEmulator) -> None:
    # given one second of latency, when a client waits 0.2 s, then it times out
    emu.latency = 1.0
    with pytest.raises(requests.ReadTimeout):
        call(emu, "GET", RUNS, timeout=0.2)


def test_faults_match_by_method_and_path_in_order(emu: TalonicEmulator) -> None:
    # given a 502 for result reads only and an unlimited 500 for deletes
    run = emu.add_run(golden_sample_id="gs")
    emu.inject("status", status=502, method="GET", path_regex=r"/results$")
    emu.inject("status", count=None, status=500, method="DELETE")
    # when other requests arrive, then they are unaffected
    assert call(emu, "GET", run_path(run["id"])).status_code == 200
    # when matching ones arrive, then they get their faults, the unlimited one until cleared
    assert call(emu, "GET", results_path(run["id"])).status_code == 502
    assert call(emu, "GET", results_path(run["id"])).status_code == 200
    assert [call(emu, "DELETE", run_path(run["id"])).status_code for _ in range(3)] == [500, 500, 500]
    assert emu.pending_faults() == 1
    emu.clear_faults()
    assert call(emu, "DELETE", run_path(run["id"])).status_code == 200


def test_inject_rejects_unknown_kinds_and_parameters(emu: TalonicEmulator) -> None:
    # when a fault is mis-specified, then inject fails loudly instead of injecting something else
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.inject("explode")
    with pytest.raises(ValueError, match="does not take"):
        emu.inject("status", status=500, second=3)
    with pytest.raises(ValueError, match="needs"):
        emu.inject("slow")
    with pytest.raises(TypeError):
        emu.inject("status", status="500")


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded_without_raw_keys(emu: TalonicEmulator, clock: FakeClock) -> None:
    # given requests with a named key, an unknown key, no key, and an idempotency key
    call(emu, "POST", RUNS, json={"golden_sample_id": "gs"}, headers={"Idempotency-Key": "idem-1"})
    clock.advance(2)
    call(emu, "GET", RUNS, key="tlnc_test_unregistered_key_wxyz", params={"judged_only": "true"})
    call(emu, "GET", RUNS, key=None)
    # when the recording is inspected
    records = emu.requests
    # then each request is there, keys appear only as aliases
    assert [(r.method, r.path, r.status, r.key_alias) for r in records] == [
        ("POST", RUNS, 201, "rw"),
        ("GET", RUNS, 401, "...wxyz"),
        ("GET", RUNS, 401, None),
    ]
    assert records[0].idempotency_key == "idem-1"
    assert records[0].json_body == {"golden_sample_id": "gs"}
    assert records[1].query == {"judged_only": "true"}
    assert [r.at for r in records] == [START, START + 2, START + 2]
    dump = repr(records)
    for secret in (*ALL_KEYS, "tlnc_test_unregistered_key_wxyz"):
        assert secret not in dump
    # and the helpers count and reset
    assert emu.count(method="GET", status=401) == 2
    assert emu.count(path_regex=r"^/v1/validation/runs$") == 3
    emu.reset_requests()
    assert emu.requests == []


def test_recorded_request_id_matches_the_response_header(emu: TalonicEmulator) -> None:
    # when a request is served, then its record carries the id the client saw
    response = call(emu, "GET", RUNS)
    record: RecordedRequest = emu.requests[-1]
    assert record.request_id == response.headers["X-Request-Id"]


def test_a_broken_knob_yields_a_500_instead_of_a_hang(emu: TalonicEmulator) -> None:
    # given an impossible error shape (a test bug)
    emu.error_shape = "sideways"  # type: ignore[assignment]
    # when an error would be rendered, then the emulator says so with a 500 and records it
    response = call(emu, "GET", run_path("missing"))
    assert response.status_code == 500
    assert "sideways" in response.text
    assert emu.requests[-1].fault == "emulator_error"


def test_concurrent_clients_are_all_served_and_recorded(emu: TalonicEmulator) -> None:
    # given 16 clients creating runs at the same time
    def create(index: int) -> int:
        return call(emu, "POST", RUNS, json={"golden_sample_id": f"gs_{index}"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(16)))
    # then every request succeeded, made its own run and was recorded once
    assert statuses == [201] * 16
    assert len(emu.runs) == 16
    assert emu.count(method="POST", status=201) == 16


# --------------------------------------------------------------------------- pure parts


def test_fake_clock_moves_only_when_told() -> None:
    # given a fake clock, when it is advanced and set, then it reports exactly that
    clock = FakeClock(100.0)
    assert clock() == 100.0
    assert clock.advance(2.5) == 102.5
    clock.set(7.0)
    assert clock() == 7.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_run_behaviour_rejects_impossible_scripts() -> None:
    # when a behaviour cannot happen, then it is refused at construction
    with pytest.raises(ValueError, match="final_status"):
        RunBehaviour(final_status="archived")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correct <= total"):
        RunBehaviour(fields={"x": (3, 2)})
    with pytest.raises(ValueError, match="negative"):
        RunBehaviour(pending_reads=-1)


@given(pending=st.integers(0, 5), running=st.integers(0, 5))
def test_read_script_shows_each_phase_for_its_count(pending: int, running: int) -> None:
    # given a read-count script, when it is read pending+running+2 times
    behaviour = RunBehaviour(pending_reads=pending, running_reads=running)
    statuses = [behaviour.status_after_reads(read) for read in range(1, pending + running + 3)]
    # then each phase lasts exactly its count, and the final status sticks
    assert statuses == ["pending"] * pending + ["running"] * running + ["completed"] * 2


@given(
    fields=st.dictionaries(
        st.sampled_from(["invoice_number", "total_amount", "vendor_name", "invoice_date", "po_ref", "notes"]),
        st.integers(0, 12).flatmap(lambda total: st.tuples(st.integers(0, total), st.just(total))),
        max_size=6,
    )
)
def test_generated_results_match_the_field_script(fields: dict[str, tuple[int, int]]) -> None:
    # given any per-field script, when results are generated
    behaviour = RunBehaviour(fields=fields)
    rows = generate_results("run-1", behaviour, "2024-09-14T10:32:00.000Z")
    # then each field has `total` rows of which `correct` score as correct, one per document
    assert len(rows) == behaviour.total_comparisons
    for name, (correct, total) in fields.items():
        own = [row for row in rows if row["field_name"] == name]
        assert len(own) == total
        assert sum(row_is_correct(row) for row in own) == correct
        assert [row["document_id"] for row in own] == [f"doc_{index + 1}" for index in range(total)]
    assert len({row["id"] for row in rows}) == len(rows)
    assert rows == generate_results("run-1", behaviour, "2024-09-14T10:32:00.000Z")


def test_an_action_scripted_after_requests_happens_between_two_reads() -> None:
    # given a run, and its deletion scripted after two reads of it
    with TalonicEmulator() as emu:
        emu.add_key("tlnc_test_script_key", scopes={"read"})
        run = emu.add_run(golden_sample_id="6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11")
        emu.after_requests(2, lambda: emu.remove_run(run["id"]), method="GET", path_regex=run["id"])
        headers = {"Authorization": "Bearer tlnc_test_script_key"}
        url = f"{emu.url}/v1/validation/runs/{run['id']}"
        # when it is read three times
        statuses = [requests.get(url, headers=headers, timeout=5).status_code for _ in range(3)]
    # then the first two reads find it and the third does not
    assert statuses == [200, 200, 404]
