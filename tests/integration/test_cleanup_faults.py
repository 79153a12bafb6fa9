"""Cleanup under fire: the faults of the watch suite, thrown at a cleanup run while it re-reads and deletes.

Whatever happens, nothing is wrongly deleted and the report tells the truth: every run it says deleted is gone
from Talonic, every other run is still there (but those someone else deleted first, which it reports as
already gone), every DELETE Talonic received was for an outdated run, and its counts add up. The stack is a
live one (dry run off); test_cleanup.py tells the fault-free stories and the plain 429 storm on deletes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from talonic_watchdog.cleanup import DEFAULT_WORKERS
from talonic_watchdog.models import ValidationRun
from tests.integration.conftest import READ_KEY, WRITE_KEY
from tests.integration.test_cleanup import LIVE, Cleanup, cleanup_stack

pytestmark = pytest.mark.integration

RUNS = "/v1/validation/runs"
ONE_RUN = rf"{RUNS}/[^/]+$"
_LINE = re.compile(r"^(?P<run_id>[0-9a-f-]{36}) \(golden sample [^,]+, [^,]+, (?P<rest>.*)\)$")


@dataclass
class Inventory:
    """What Talonic held before the cleanup run, and which runs are outdated."""

    everything: set[str]
    outdated: set[str]
    listed: list[str]  # outdated runs the list shows, oldest last
    beyond_horizon: set[str]  # outdated runs only the runs table knows: read again before deletion
    gone_already: str  # outdated, recorded, and deleted in Talonic by someone else before the run

    def path(self, run_id: str) -> str:
        return f"{RUNS}/{run_id}$"


def given_outdated_runs_in_and_beyond_the_list(cleanup: Cleanup) -> Inventory:
    """92 recent runs and 8 outdated ones fill the list (newest 100); older runs are known from the table."""
    recent = {cleanup.add(1 + n / 100) for n in range(92)}  # the newest 2 completed are the baselines
    listed_outdated = [cleanup.add(30 + n, "failed") for n in range(2)] + [cleanup.add(200 + n) for n in range(6)]
    beyond = {cleanup.add(300 + n) for n in range(4)}
    kept_beyond = {cleanup.add(400, name="keep-audit"), cleanup.add(500, "running")}
    gone = cleanup.add(310)
    table, shown = cleanup.table, cleanup.emulator.runs
    for run_id in beyond | kept_beyond | {gone}:  # as watches of them long ago recorded them
        table.record(ValidationRun.from_api(shown[run_id]), now=cleanup.clock(), source="watch")
    cleanup.emulator.remove_run(gone)
    everything = recent | set(listed_outdated) | beyond | kept_beyond
    return Inventory(everything, set(listed_outdated) | beyond | {gone}, listed_outdated, beyond | {gone}, gone)


@pytest.fixture
def live() -> Iterator[Cleanup]:
    with cleanup_stack(**LIVE) as cleanup:
        yield cleanup


def published_report(cleanup: Cleanup) -> tuple[dict[str, str], dict[str, str]]:
    """The one report published: its facts, and each listed run's line (run id -> the rest of the line)."""
    [message] = cleanup.reports()
    assert message["MessageAttributes"]["kind"]["Value"] == "cleanup_report"
    document = json.loads(message["Structured"]["lambda"])["talonic_watchdog_alert"]
    lines = {}
    for line in document["description"].splitlines():
        match = _LINE.match(line)
        if match:
            lines[match["run_id"]] = match["rest"]
    return document["facts"], lines


def then_nothing_was_wrongly_deleted_and_the_report_is_true(
    cleanup: Cleanup, inventory: Inventory, report: dict[str, Any] | None
) -> dict[str, str]:
    facts, lines = published_report(cleanup)
    reported_deleted = {run_id for run_id, rest in lines.items() if "Error" not in rest}  # failed lines name one
    reported_failed = {run_id for run_id, rest in lines.items() if "Error" in rest}
    # every DELETE Talonic received was for an outdated run; the runs gone are exactly those it says deleted
    deletes = {request.path.rsplit("/", 1)[1] for request in cleanup.emulator.requests_matching(method="DELETE")}
    assert deletes <= inventory.outdated
    assert inventory.everything - set(cleanup.emulator.runs) == reported_deleted
    assert reported_failed.isdisjoint(reported_deleted)
    # the counts add up, in the published report and in the returned one
    counted = {name: int(facts[name]) for name in ("Examined", "Eligible", "Deleted", "Failed", "Deferred")}
    assert counted["Deleted"] == len(reported_deleted)
    assert counted["Failed"] == len(reported_failed)
    assert counted["Examined"] == len(inventory.everything) + 1
    assert counted["Eligible"] == len(inventory.outdated)
    outcomes = counted["Deleted"] + counted["Failed"] + counted["Deferred"] + int(facts["Already gone"])
    kept_total = int(facts["Kept"].split(" ", 1)[0])
    assert kept_total + outcomes == counted["Examined"]
    if report is not None:
        assert {line["run_id"] for line in report["runs"]["deleted"]} == reported_deleted
        assert {line["run_id"] for line in report["runs"]["failed"]} == reported_failed
        assert (report["examined"], report["eligible"], report["deleted"], report["failed"], report["deferred"]) == (
            counted["Examined"],
            counted["Eligible"],
            counted["Deleted"],
            counted["Failed"],
            counted["Deferred"],
        )
        assert sum(report["kept"].values()) + outcomes == report["examined"]
        assert report["message_id"] == cleanup.reports()[0]["MessageId"]
    # and the runs table marks the deleted runs, and only those (and the one found already gone)
    table = cleanup.table
    for run_id in inventory.beyond_horizon:
        record = table.get(run_id)
        assert record is not None
        deleted = run_id in reported_deleted or (run_id == inventory.gone_already and facts["Already gone"] == "1")
        assert (record["status"] == "deleted") is deleted, run_id
    return facts


Arrange = Callable[[Cleanup, Inventory, pytest.MonkeyPatch], None]


def inject(kind: str, count: int, method: str, target: str | None = None, **params: Any) -> Arrange:
    """A fault on `count` requests for any run, or only for the run `target` names ("listed:0", "beyond:1")."""

    def arrange(cleanup: Cleanup, inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
        path = ONE_RUN
        if target is not None:
            where, index = target.split(":")
            runs = (
                inventory.listed if where == "listed" else sorted(inventory.beyond_horizon - {inventory.gone_already})
            )
            path = inventory.path(runs[int(index)])
        cleanup.emulator.inject(kind, count=count, method=method, path_regex=path, **params)

    return arrange


def both(*steps: Arrange) -> Arrange:
    def arrange(cleanup: Cleanup, inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
        for step in steps:
            step(cleanup, inventory, monkeypatch)

    return arrange


def within_a_second(cleanup: Cleanup, inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The functions wait 1 s for an answer (not 10 s), so a "slow" answer is a timeout in a second."""
    monkeypatch.setenv("TALONIC_READ_TIMEOUT_SECONDS", "1")


def rate_limited_plan(cleanup: Cleanup, inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request a second per key, and 429s that carry only X-RateLimit-Reset (no Retry-After)."""
    cleanup.emulator.rate_limit_per_second = 1
    cleanup.emulator.retry_after = None
    cleanup.emulator.rate_limit_reset_format = "iso"


@pytest.mark.parametrize(
    ("arrange", "failed"),
    [
        # bursts of every retryable 5xx, on deletes and re-reads, that the client's retries ride out; and one
        # run whose delete meets a 503 on every attempt: it fails, stays, and is reported failed
        pytest.param(
            both(
                inject("status", 4, "DELETE", "listed:3", status=503),
                inject("status", 1, "DELETE", status=500),
                inject("status", 1, "DELETE", status=502),
                inject("status", 1, "DELETE", status=504),
                inject("status", 2, "GET", status=503),
            ),
            1,
            id="5xx bursts",
        ),
        # connections lost before Talonic acted and after (the retry is answered from the idempotency record);
        # and one run whose every answer is lost after Talonic deleted it
        pytest.param(
            both(
                inject("drop", 4, "DELETE", "listed:2", after_processing=True),
                inject("drop", 2, "DELETE"),
                inject("drop", 1, "DELETE", after_processing=True),
                inject("drop", 1, "GET"),
            ),
            0,
            id="dropped connections",
        ),
        # answers that come too late: Talonic acted, the client timed out after 1 s, the retry is answered from
        # the idempotency record (a delete) or reads again (a re-read)
        pytest.param(
            both(within_a_second, inject("slow", 1, "DELETE", seconds=2), inject("slow", 1, "GET", seconds=2)),
            0,
            id="timeouts",
        ),
        # a 200 whose body is cut off or empty is no confirmed deletion (nor a readable run): those runs stay
        pytest.param(
            both(
                inject("malformed", 1, "DELETE", "listed:1"),
                inject("empty", 1, "DELETE", "listed:4"),
                inject("malformed", 1, "GET", "beyond:0"),
            ),
            3,
            id="malformed and empty bodies",
        ),
        # a plan of one request a second per key: a 429 storm on both keys, paced through without losing a run
        pytest.param(rate_limited_plan, 0, id="429 storm from a rate-limited plan"),
    ],
)
def test_a_fault_mid_run_deletes_nothing_wrongly_and_reports_the_truth(
    live: Cleanup, arrange: Arrange, failed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given outdated runs in and beyond the list, and the fault
    inventory = given_outdated_runs_in_and_beyond_the_list(live)
    arrange(live, inventory, monkeypatch)
    # when the schedule fires
    report = live.run()
    # then nothing was wrongly deleted and the report is true
    facts = then_nothing_was_wrongly_deleted_and_the_report_is_true(live, inventory, report)
    assert report["stopped"] is None
    assert report["deferred"] == 0
    assert report["already_gone"] == 1
    assert report["failed"] == failed
    assert report["deleted"] + report["failed"] == len(inventory.outdated) - 1
    assert facts["Failed"] == str(report["failed"])
    severity = live.reports()[0]["MessageAttributes"]["severity"]["Value"]
    assert severity == ("warning" if report["failed"] else "info")
    # and the traffic stayed bounded, and the report counted it right: one listing; each table-only run read
    # again, each outdated run deleted, with at most three retries each, plus the 429s it was paced through
    requests = live.emulator.requests
    assert report["requests"]["sent"] == len(requests)
    assert report["requests"]["rate_limited"] == live.emulator.count(status=429)
    assert live.emulator.count(method="GET", path_regex=f"{RUNS}$") == 1
    attempts = 4 * (len(inventory.beyond_horizon) + len(inventory.outdated) - 1)
    assert len(requests) <= 1 + attempts + report["requests"]["rate_limited"]
    # and a second run finishes the job: what failed is retried, and nothing else is touched
    live.emulator.clear_faults()
    again = live.run()
    assert (again["failed"], again["deferred"]) == (0, 0)
    assert again["deleted"] == report["failed"]
    assert set(live.emulator.runs) == inventory.everything - (inventory.outdated - {inventory.gone_already})


@pytest.mark.parametrize(
    ("revoked", "after", "method", "refused"),
    [
        pytest.param(WRITE_KEY, 3, "DELETE", "Talonic refused the write key", id="write key revoked after 3 deletes"),
        pytest.param(READ_KEY, 1, "GET", "Talonic refused the read key", id="read key revoked after the listing"),
    ],
)
def test_a_key_revoked_mid_run_stops_at_once_and_reports_what_was_done(
    live: Cleanup, revoked: str, after: int, method: str, refused: str
) -> None:
    # given outdated runs, and a key that Talonic revokes while cleanup is deleting
    inventory = given_outdated_runs_in_and_beyond_the_list(live)
    live.emulator.after_requests(after, lambda: live.emulator.revoke_key(revoked), method=method)
    # when the schedule fires, the function fails by name, after publishing its report
    with pytest.raises(Exception, match=refused) as raised:
        live.run()
    assert type(raised.value).__name__ == "CleanupUnauthorizedError"
    # then nothing was wrongly deleted and the report tells what was done before the stop
    facts = then_nothing_was_wrongly_deleted_and_the_report_is_true(live, inventory, None)
    [message] = live.reports()
    assert message["Subject"].startswith(f"[WARNING] Cleanup stopped: {refused}")
    assert int(facts["Failed"]) >= 1  # the runs whose request was refused
    refused_requests = live.emulator.count(status=401)
    # each worker met the refusal at most once, and refreshed the secret once
    assert refused_requests <= 2 * DEFAULT_WORKERS
    if revoked == WRITE_KEY:
        assert int(facts["Deleted"]) >= after
    assert revoked not in json.dumps(message)
