"""The two records passed around the emulator: a reply to send and a request that was served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What the HTTP layer should do with one request.

    ``drop`` closes the connection without a response; ``delay`` is real time to wait first (the
    "slow" fault plus the ``latency`` knob).
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    drop: bool = False
    delay: float = 0.0

    def with_headers(self, headers: tuple[tuple[str, str], ...]) -> Reply:
        return replace(self, headers=self.headers + headers)

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively (used by tests and the idempotency store)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator served, as tests inspect it.

    The raw API key is never stored (talonic-api.md: never log a key); ``key_alias`` is the alias
    given to ``add_key`` or ``...`` plus the key's last four characters, None without a key.
    ``status`` is None when the connection was dropped without a response. ``at`` is emulator-clock
    time. ``fault`` names the injected fault kind that hit the request, if any.
    """

    method: str
    path: str
    query: Mapping[str, str]
    status: int | None
    key_alias: str | None
    idempotency_key: str | None
    at: float
    fault: str | None = None
    request_id: str | None = None
    idempotent_replay: bool = False
    json_body: Any = field(default=None, compare=False)
