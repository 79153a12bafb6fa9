"""Injected faults: the failures a real network and a real API produce that a happy path never does.

The official SDKs retry 429/5xx, timeouts and connection errors; a client that claims the same must
be tested against each of them. Faults queue up in order and each is consumed by matching requests
until its count runs out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FAULT_KINDS: frozenset[str] = frozenset({"status", "drop", "malformed", "empty", "slow"})

# Allowed parameters per kind, with the types they must have. Unknown parameters are rejected so
# a typo in a test fails loudly instead of silently injecting a different fault.
_PARAMS: dict[str, dict[str, tuple[type, ...]]] = {
    "status": {"status": (int,), "retry_after_seconds": (int, float), "message": (str,), "retryable": (bool,)},
    "drop": {"after_processing": (bool,)},
    "malformed": {},
    "empty": {},
    "slow": {"seconds": (int, float)},
}
_REQUIRED: dict[str, frozenset[str]] = {"status": frozenset({"status"}), "slow": frozenset({"seconds"})}


@dataclass
class Fault:
    """One queued fault; ``remaining`` None means "until clear_faults()"."""

    kind: str
    remaining: int | None
    method: str | None
    path_regex: re.Pattern[str] | None
    params: Mapping[str, Any]

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and path (no query string) should suffer this fault."""
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_regex is None or self.path_regex.search(path) is not None


def build_fault(
    kind: str, count: int | None, method: str | None, path_regex: str | None, params: Mapping[str, Any]
) -> Fault:
    """Validate an ``inject`` call and turn it into a Fault."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
    if count is not None and count < 1:
        raise ValueError("count must be at least 1 (or None for unlimited)")
    allowed = _PARAMS[kind]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(f"fault {kind!r} does not take {sorted(unknown)}; it takes {sorted(allowed)}")
    missing = _REQUIRED.get(kind, frozenset()) - set(params)
    if missing:
        raise ValueError(f"fault {kind!r} needs {sorted(missing)}")
    for name, value in params.items():
        if isinstance(value, bool) and bool not in allowed[name]:
            raise TypeError(f"fault parameter {name!r} must be a number, not a bool")
        if not isinstance(value, allowed[name]):
            raise TypeError(f"fault parameter {name!r} has the wrong type: {value!r}")
    if kind == "status" and not 100 <= params["status"] <= 599:
        raise ValueError("status must be an HTTP status code")
    if kind == "slow" and params["seconds"] < 0:
        raise ValueError("seconds must not be negative")
    if params.get("retry_after_seconds", 0) < 0:
        raise ValueError("retry_after_seconds must not be negative")
    return Fault(
        kind=kind,
        remaining=count,
        method=method.upper() if method else None,
        path_regex=re.compile(path_regex) if path_regex is not None else None,
        params=dict(params),
    )


class FaultQueue:
    """Faults in injection order. Not thread-safe on its own: the emulator calls it under its lock."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching the request, if any."""
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def __len__(self) -> int:
        return len(self._faults)
