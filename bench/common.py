"""What the benchmarks share: tables, the RESULT line, quiet sections, the repository's paths.

Benchmarks are not tests: they print figures next to the figure they are compared with, and state each
target as met or missed. Timings on this shared 2-core machine are noisy, so comparisons are ratios taken
within one run, never absolute thresholds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "layers" / "shared"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned."""
    cells = [[str(header) for header in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(line[index]) for line in cells) for index in range(len(headers))]
    numeric = [all(_is_number(row[index]) for row in rows) and bool(rows) for index in range(len(headers))]

    def render(line: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(line, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [title, ""] if title else []
    out.append(render(cells[0]))
    out.append("  ".join("-" * width for width in widths))
    out.extend(render(line) for line in cells[1:])
    return "\n".join(out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        text = f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def result_line(name: str, **values: object) -> str:
    """The one machine-readable line each benchmark ends with: `RESULT bench=<name> key=value …`."""
    parts = [f"bench={name}"]
    for key, value in values.items():
        text = _cell(value) if not isinstance(value, str) else value
        parts.append(f"{key}={text.replace(' ', '_').replace(',', '')}")
    return "RESULT " + " ".join(parts)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@contextlib.contextmanager
def quiet_fds(log_path: Path | None = None) -> Iterator[Path]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so the JSON lines Powertools and
    moto print go too) to a file for the duration; yields the file's path."""
    sys.stdout.flush()
    sys.stderr.flush()
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix="bench-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    saved = os.dup(1), os.dup(2)
    with log_path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield log_path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def lambda_like_env(**extra: str) -> dict[str, str]:
    """The environment a handler sees (the template's Globals), with fake AWS credentials and no real endpoint."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "PYTHON")) and key != "VIRTUAL_ENV"
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "talonic-watchdog",
            "POWERTOOLS_METRICS_NAMESPACE": "TalonicWatchdog",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            "PYTHONPATH": f"{REPO}{os.pathsep}{LAYER}",
        }
    )
    env.update(extra)
    return env
