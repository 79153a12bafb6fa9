"""Function configuration, parsed once at handler entry from the environment the template sets.

A missing or malformed variable is a ConfigurationError that names the variable: a deploy mistake should
read as one, not as a KeyError deep in a stack trace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from talonic_watchdog.errors import ConfigurationError


class Env:
    """Typed reads of one environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is not None:
            return default
        raise ConfigurationError(f"environment variable {name} is not set")

    def number(self, name: str, default: float | None = None, *, low: float, high: float) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            if default is None:
                raise ConfigurationError(f"environment variable {name} is not set")
            return default
        try:
            value = float(raw)
        except ValueError as error:
            raise ConfigurationError(f"environment variable {name} is not a number: {raw!r}") from error
        if not low <= value <= high:
            raise ConfigurationError(f"environment variable {name} is {value}, outside {low}..{high}")
        return value

    def integer(self, name: str, default: int | None = None, *, low: int, high: int) -> int:
        value = self.number(name, None if default is None else float(default), low=low, high=high)
        if value != int(value):
            raise ConfigurationError(f"environment variable {name} is not a whole number: {value}")
        return int(value)

    def boolean(self, name: str, default: bool) -> bool:
        """`true` or `false` (any case); anything else is a ConfigurationError, never a guess."""
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("true", "false"):
            return raw == "true"
        raise ConfigurationError(f"environment variable {name} must be true or false, not {raw!r}")

    def items(self, name: str) -> tuple[str, ...]:
        """`a,b,c` as a tuple of non-empty, stripped items; empty when unset."""
        raw = self._environ.get(name, "")
        return tuple(item for item in (part.strip() for part in raw.split(",")) if item)

    def pairs(self, name: str) -> dict[str, str]:
        """`a=b,c=d` as a dict; empty when unset."""
        raw = self._environ.get(name, "").strip()
        result: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigurationError(f"environment variable {name} has {item!r}; expected key=value pairs")
            result[key.strip()] = value.strip()
        return result
