"""`make demo` tells its story and exits 0 (the same code, run in-process)."""

from __future__ import annotations

import logging

import pytest

from local import demo
from local.talonic_emulator import RunBehaviour, TalonicEmulator
from tests.integration.conftest import GOLDEN, READ_KEY

pytestmark = pytest.mark.integration


def test_the_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # the demo quiets metrics and moto's interpreter log for the reader: undone after this test
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    interpreter_log = logging.getLogger("moto.stepfunctions.parser")
    monkeypatch.setattr(interpreter_log, "level", interpreter_log.level)
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "→ 202" in out
    assert "poll  1: pending   → next look in   10 s" in out
    assert "completed → completed" in out
    assert "Subject: [WARNING] Accuracy fell 7.5 pts to 90.0 % on invoices nightly" in out
    assert "invoice_number: 7/10 correct (70 %), ▼ 30 pts vs baseline (100 %)" in out
    assert "--- Slack (AWS Chatbot custom notification) ---" in out
    assert "Subject: [INFO] Recovered: accuracy 97.5 % on invoices nightly" in out
    assert "sweep: seen 19, new 17, watches started 1" in out
    assert "dry run: examined 19, eligible 5, deleted 0" in out
    assert "for real: examined 19, eligible 5, deleted 5" in out
    assert "alerts: regression, recovery, cleanup_report, cleanup_report" in out


def test_the_demo_against_a_real_api_watches_a_run_and_only_dry_runs_cleanup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given "the real API" (here the emulator, on its own clock), a read key, and a run that has completed low
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    interpreter_log = logging.getLogger("moto.stepfunctions.parser")
    monkeypatch.setattr(interpreter_log, "level", interpreter_log.level)
    with TalonicEmulator() as talonic:
        talonic.add_key(READ_KEY, scopes={"read"})
        run = talonic.add_run(
            golden_sample_id=GOLDEN,
            name="real nightly",
            behaviour=RunBehaviour(pending_reads=0, running_reads=0, accuracy=0.5),
        )
        monkeypatch.setenv("TALONIC_API_URL", talonic.url)
        monkeypatch.setenv("TALONIC_READ_KEY", READ_KEY)
        monkeypatch.setenv("TALONIC_VALIDATION_RUN_ID", run["id"])
        # when the demo runs
        assert demo.main() == 0
        # then it watched that run, rendered its alert, dry-ran cleanup, and never wrote to Talonic
        out = capsys.readouterr().out
        assert f"Watching run-{run['id']}" in out
        assert "Accuracy 50.0 % below 90.0 % on real nightly" in out
        assert "dry run: examined 1" in out
        assert {request.method for request in talonic.requests} == {"GET"}
