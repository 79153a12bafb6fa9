"""Starting watches: event → input, deterministic names, duplicates, and the signal webhook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from talonic_watchdog.errors import ConfigurationError
from talonic_watchdog.triggers import (
    IngressSecret,
    InvalidSignalError,
    execution_name,
    handle_signal,
    signature_of,
    start_watch,
    watch_input_from_event,
)

JOB_RUN = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
OTHER_GOLDEN = "11111111-2222-4333-8444-555555555555"
TOKEN = "a-shared-token-of-some-length-123"


def bus_event(**detail: Any) -> dict[str, Any]:
    return {"source": "talonic", "detail-type": "run.dataspace.completed", "detail": detail}


@pytest.mark.parametrize("field", ["dataspace_run_id", "run_id", "id"])
def test_the_job_run_id_is_found_under_each_documented_name(field):
    watch_input = watch_input_from_event(
        bus_event(**{field: JOB_RUN}, golden_sample_id=GOLDEN), golden_sample_map={}, default_golden_sample_id=None
    )
    assert watch_input == {"dataspace_run_id": JOB_RUN, "golden_sample_id": GOLDEN}


def test_the_golden_sample_comes_from_the_event_then_the_map_then_the_default():
    mapping = {"job-42": OTHER_GOLDEN}
    from_map = watch_input_from_event(
        bus_event(run_id=JOB_RUN, job_id="job-42"), golden_sample_map=mapping, default_golden_sample_id=GOLDEN
    )
    from_default = watch_input_from_event(
        bus_event(run_id=JOB_RUN, job_id="job-7"), golden_sample_map=mapping, default_golden_sample_id=GOLDEN
    )
    assert from_map["golden_sample_id"] == OTHER_GOLDEN
    assert from_default["golden_sample_id"] == GOLDEN
    with pytest.raises(InvalidSignalError, match="names no golden sample"):
        watch_input_from_event(bus_event(run_id=JOB_RUN), golden_sample_map={}, default_golden_sample_id=None)
    with pytest.raises(InvalidSignalError, match="not a UUID"):
        watch_input_from_event(bus_event(run_id="42; drop"), golden_sample_map={}, default_golden_sample_id=GOLDEN)


def test_execution_names_are_deterministic_and_valid():
    a = execution_name({"dataspace_run_id": JOB_RUN, "golden_sample_id": GOLDEN})
    b = execution_name({"dataspace_run_id": JOB_RUN, "golden_sample_id": OTHER_GOLDEN})
    assert a == execution_name({"dataspace_run_id": JOB_RUN, "golden_sample_id": GOLDEN})
    assert a != b
    assert execution_name({"validation_run_id": GOLDEN}) == f"run-{GOLDEN}"
    assert all(len(name) <= 80 and name.replace("-", "").isalnum() for name in (a, b))


class FakeStepFunctions:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        if name in self.names:
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}}, "StartExecution")
        self.names.add(name)
        return {"executionArn": f"{stateMachineArn}:{name}"}


def test_starting_twice_watches_once():
    sfn = FakeStepFunctions()
    first = start_watch(sfn, "arn:sm", {"validation_run_id": GOLDEN})
    second = start_watch(sfn, "arn:sm", {"validation_run_id": GOLDEN})
    assert first.started
    assert not second.started
    assert len(sfn.names) == 1


# -- the webhook -------------------------------------------------------------------------------------------


class FakeEvents:
    def __init__(self, fail: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = fail

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


DELIVERED_AT = "2026-12-04T12:00:00.000Z"
NOW = 1_796_385_601.0  # one second after DELIVERED_AT


def signal(
    payload: dict[str, Any] | None = None,
    event_type: str = "run.dataspace.completed",
    *,
    delivered_at: str | None = DELIVERED_AT,
    attempt: int = 2,
) -> str:
    event: dict[str, Any] = {"event_type": event_type, "event_id": "evt_1", "idempotency_key": "idem_1"}
    event["attempt"] = attempt
    if delivered_at is not None:
        event["delivered_at"] = delivered_at
    return json.dumps(
        {
            "event": event,
            "payload": payload if payload is not None else {"run_id": JOB_RUN, "golden_sample_id": GOLDEN},
            "content": None,
        }
    )


def request(body: str, headers: dict[str, str] | None = None, method: str = "POST") -> dict[str, Any]:
    return {
        "headers": headers or {},
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": method}},
    }


def call(  # type: ignore[no-untyped-def]
    req: dict[str, Any],
    secret: IngressSecret | None = None,
    events: FakeEvents | None = None,
    *,
    now: float = NOW,
    **options: Any,
):
    events = events if events is not None else FakeEvents()
    response = handle_signal(
        req,
        secret=secret or IngressSecret(TOKEN),
        auth_header="X-API-Key",
        events=events,
        bus_name="default",
        now=now,
        **options,
    )
    return response["statusCode"], json.loads(response["body"]), events


@pytest.mark.parametrize("headers", [{"X-API-Key": TOKEN}, {"x-api-key": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}])
def test_a_good_signal_is_put_on_the_bus(headers):
    status, body, events = call(request(signal(), headers))
    assert status == 202
    assert body == {"accepted": True, "dataspace_run_id": JOB_RUN}
    detail = json.loads(events.entries[0]["Detail"])
    assert events.entries[0]["Source"] == "talonic"
    assert events.entries[0]["DetailType"] == "run.dataspace.completed"
    assert detail["dataspace_run_id"] == JOB_RUN
    assert detail["golden_sample_id"] == GOLDEN
    assert detail["signal"]["idempotency_key"] == "idem_1"


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": TOKEN[:-1]}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_missing_or_wrong_credentials_get_401_and_nothing_is_put(headers):
    status, body, events = call(request(signal(), headers))
    assert status == 401
    assert body["error"] == "unauthorized"
    assert events.entries == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        (json.dumps({"payload": {}}), "expected"),
        (signal({"nothing": 1}), "no job run id"),
        (signal({"run_id": "xyz"}), "not a UUID"),
        (signal(event_type="extraction.complete"), "unsupported event_type"),
    ],
)
def test_a_bad_body_gets_400_and_nothing_is_put(body, message):
    status, answer, events = call(request(body, {"X-API-Key": TOKEN}))
    assert status == 400
    assert message in answer["message"]
    assert events.entries == []


def test_a_failed_job_run_is_acknowledged_and_ignored():
    status, body, events = call(request(signal(event_type="run.dataspace.failed"), {"X-API-Key": TOKEN}))
    assert status == 202
    assert body["accepted"] is False
    assert events.entries == []


def test_when_the_bus_refuses_talonic_is_told_to_retry():
    status, _, _ = call(request(signal(), {"X-API-Key": TOKEN}), events=FakeEvents(fail=True))
    assert status == 502


def test_a_signing_secret_requires_a_valid_signature():
    # the documented test vector of Talonic's older webhook signatures
    vector_body = (
        '{"event":"extraction.complete","delivery_id":"dlv_test123","timestamp":"2026-01-15T10:00:00Z","data":'
        '{"extraction_id":"ext_abc","document_id":"doc_xyz","schema_id":"sch_123","status":"complete",'
        '"confidence":0.95}}'
    )
    assert signature_of(vector_body.encode(), "whsec_test_secret_do_not_use_in_production") == (
        "sha256=1e23bdc14b051f268d4fd9544387b51b074186c51c5b6c76ce700956308d168a"
    )
    secret = IngressSecret(TOKEN, signing_secret="whsec_abc")
    body = signal()
    good = {"X-API-Key": TOKEN, "X-Talonic-Signature": signature_of(body.encode(), "whsec_abc")}
    assert call(request(body, good), secret)[0] == 202
    assert call(request(body, {"X-API-Key": TOKEN}), secret)[0] == 401
    assert call(request(body + " ", good), secret)[0] == 401


SIGNING = "whsec_abc"
SIGNED = IngressSecret(TOKEN, signing_secret=SIGNING)


def signed(body: str) -> dict[str, Any]:
    return request(body, {"X-API-Key": TOKEN, "X-Talonic-Signature": signature_of(body.encode(), SIGNING)})


@pytest.mark.parametrize(
    ("delivered_at", "status"),
    [
        ("2026-12-04T12:00:00.000Z", 202),  # a second ago
        ("2026-12-04T11:55:01.000Z", 202),  # exactly the tolerance ago (300 s)
        ("2026-12-04T11:55:00.000Z", 401),  # one second more
        ("2026-12-04T12:05:01.000Z", 202),  # a sender's clock a little ahead
        ("2026-12-04T12:06:00.000Z", 401),  # too far in the future
        ("2026-12-04T13:00:00+01:00", 202),  # the same instant as the first, with an offset
        ("2026-12-03T12:00:00.000Z", 401),  # yesterday's delivery, replayed
        ("yesterday", 401),
        (None, 401),  # no stamp: a signed delivery must say when it was sent
    ],
)
def test_a_signed_delivery_must_be_fresh(delivered_at, status):
    # given a validly signed delivery stamped `delivered_at`, arriving at NOW
    status_seen, body, events = call(signed(signal(delivered_at=delivered_at)), SIGNED)
    # then only a delivery within 5 minutes of now is accepted; a stale one is refused and puts nothing
    assert status_seen == status
    if status == 401:
        assert body == {"error": "unauthorized", "message": "stale delivery"}
        assert events.entries == []


def test_the_tolerance_is_configurable_and_honest_retries_pass():
    # given a delivery signed and stamped when Talonic first sent it, and its retry an hour later
    first = signed(signal(delivered_at="2026-12-04T12:00:00.000Z", attempt=1))
    retry = signed(signal(delivered_at="2026-12-04T13:00:00.000Z", attempt=2))
    an_hour_later = NOW + 3600
    # then the first, replayed an hour later, is stale; the retry (a fresh stamp) is accepted
    assert call(first, SIGNED, now=an_hour_later)[0] == 401
    assert call(retry, SIGNED, now=an_hour_later)[0] == 202
    # and a tolerance of 2 hours accepts the replay
    assert call(first, SIGNED, now=an_hour_later, max_age_seconds=7200)[0] == 202


def test_without_a_signing_secret_the_stamp_is_not_checked():
    # the shared token alone cannot tell a replay from a delivery: only a signature binds the stamp
    assert call(request(signal(delivered_at=None), {"X-API-Key": TOKEN}))[0] == 202
    assert call(request(signal(delivered_at="2020-01-01T00:00:00Z"), {"X-API-Key": TOKEN}))[0] == 202


def test_a_stale_delivery_with_a_bad_signature_is_refused_for_the_signature():
    body = signal(delivered_at="2026-12-03T12:00:00.000Z")
    status, answer, _ = call(request(body, {"X-API-Key": TOKEN, "X-Talonic-Signature": "sha256=00"}), SIGNED)
    assert (status, answer["message"]) == (401, "bad or missing X-Talonic-Signature")


def test_only_post_is_accepted():
    assert call(request(signal(), {"X-API-Key": TOKEN}, method="GET"))[0] == 405


@pytest.mark.parametrize(
    "value",
    ["", "short", '{"token": 1}', '{"token": "x"}', "{bad json", '{"token": "' + TOKEN + '", "signing_secret": 5}'],
)
def test_a_bad_ingress_secret_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError):
        IngressSecret.parse(value, secret_id="ingress")
    assert IngressSecret.parse(json.dumps({"token": TOKEN}), secret_id="i").token == TOKEN
    assert IngressSecret.parse(TOKEN, secret_id="i").signing_secret is None
