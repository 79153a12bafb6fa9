"""`make demo` tells its story and exits 0 (the same code, run in-process)."""

from __future__ import annotations

import pytest

from local import demo

pytestmark = pytest.mark.integration


def test_the_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "→ 202" in out
    assert "poll  1: status pending" in out
    assert "status completed → completed" in out
    assert "Subject: [WARNING] Accuracy 81.0 % below 90.0 %" in out
    assert "--- Slack (AWS Chatbot custom notification) ---" in out
    assert "executions: 1 · alerts: 1" in out
