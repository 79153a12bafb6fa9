"""The first step's input validation: bad input is a named error and no call is made."""

from __future__ import annotations

import pytest

from talonic_watchdog.watch import InvalidWatchInputError, WatchSettings, create_idempotency_key, prepare_watch

RUN = "0b9f7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
JOB = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
GOLDEN = "6f0c4c1e-0b7c-4b0e-9c57-2f6d3f0d8a11"
SETTINGS = WatchSettings(deadline_minutes=60)
NOW = 1_796_385_600.0


def prepare(request: object, settings: WatchSettings = SETTINGS) -> dict:  # type: ignore[type-arg]
    return prepare_watch(request, settings=settings, execution_name="exec-1", now=NOW)


def test_an_existing_run_is_watched_with_the_stack_defaults():
    state = prepare({"validation_run_id": RUN.upper()})
    assert state["watch"] == {
        "execution_name": "exec-1",
        "started_at": NOW,
        "deadline_at": NOW + 3600,
        "validation_run_id": RUN,
    }
    assert state["poll"] == {"polls": 0, "requests": 0, "consecutive_failures": 0}


def test_a_job_run_gets_a_create_key_derived_from_the_input_and_overrides_win():
    state = prepare(
        {
            "dataspace_run_id": JOB,
            "golden_sample_id": GOLDEN,
            "name": " nightly ",
            "accuracy_threshold": 0.75,
            "deadline_minutes": 10,
        }
    )
    watch = state["watch"]
    assert "validation_run_id" not in watch
    assert watch["create_idempotency_key"] == create_idempotency_key(JOB, GOLDEN)
    assert watch["accuracy_threshold"] == 0.75
    assert watch["deadline_at"] == NOW + 600
    assert watch["name"] == "nightly"
    assert create_idempotency_key(JOB, GOLDEN) != create_idempotency_key(JOB, RUN)


def test_the_default_golden_sample_fills_in():
    settings = WatchSettings(deadline_minutes=60, default_golden_sample_id=GOLDEN)
    assert prepare({"dataspace_run_id": JOB}, settings)["watch"]["golden_sample_id"] == GOLDEN


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "give validation_run_id"),
        ({"validaton_run_id": RUN}, "unknown input field"),
        ({"validation_run_id": "run-1"}, "not a UUID"),
        ({"validation_run_id": 42}, "must be a UUID string"),
        ({"dataspace_run_id": JOB}, "no default golden sample"),
        ({"validation_run_id": RUN, "accuracy_threshold": 1.5}, "outside 0.0..1.0"),
        ({"validation_run_id": RUN, "accuracy_threshold": "0.8"}, "must be a number"),
        ({"validation_run_id": RUN, "accuracy_threshold": True}, "must be a number"),
        ({"validation_run_id": RUN, "deadline_minutes": 0}, "outside 1..1380"),
        ({"validation_run_id": RUN, "name": ""}, "name must be"),
    ],
)
def test_bad_input_is_a_named_error_that_says_what_was_wrong(request_, message):
    with pytest.raises(InvalidWatchInputError, match=message):
        prepare(request_)
