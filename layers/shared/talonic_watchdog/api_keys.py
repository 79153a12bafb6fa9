"""Talonic API keys from Secrets Manager, through Powertools Parameters (cached with a max age).

A secret's value is the bare key or JSON `{"api_key": "..."}`. Keys never leave this module except in the
Authorization header: error messages name the secret, never its value.
"""

from __future__ import annotations

import json
import threading
from typing import Protocol

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from talonic_watchdog.errors import ConfigurationError

DEFAULT_MAX_AGE_SECONDS = 300
KEY_PREFIX = "tlnc_"


class KeySource(Protocol):
    """What the client needs from a key source: the current key, and a way to fetch it anew."""

    def get(self) -> str: ...

    def refresh(self) -> str: ...


def parse_secret_value(value: str | bytes | None, *, secret_id: str) -> str:
    """The key inside a secret value; a clear ConfigurationError (without the value) otherwise."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = (value or "").strip()
    if not text:
        raise ConfigurationError(f"secret {secret_id} is empty: put the Talonic API key into it")
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                f"secret {secret_id} looks like JSON but does not parse; expected an object with an api_key field"
            ) from error
        key = document.get("api_key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(f'secret {secret_id} is JSON without a non-empty string "api_key"')
        text = key.strip()
    # Only the documented prefix is checked: key formats beyond `tlnc_` have changed over time.
    if not text.startswith(KEY_PREFIX) or any(character.isspace() for character in text):
        raise ConfigurationError(
            f"secret {secret_id} does not hold a Talonic API key (expected a single token starting with {KEY_PREFIX!r})"
        )
    return text


class SecretsManagerKeySource:
    """One Talonic key, read from one secret. Thread-safe: cleanup shares it across worker threads."""

    def __init__(
        self,
        secret_id: str,
        *,
        provider: SecretsProvider | None = None,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        if not secret_id:
            raise ConfigurationError("no secret id given for the Talonic API key")
        self.secret_id = secret_id
        self._provider = provider or SecretsProvider()
        self._max_age = max_age_seconds
        self._lock = threading.Lock()

    def get(self) -> str:
        return self._fetch(force=False)

    def refresh(self) -> str:
        """Bypass the cache: the key may have been rotated since it was cached."""
        return self._fetch(force=True)

    def _fetch(self, *, force: bool) -> str:
        with self._lock:
            try:
                value = self._provider.get(self.secret_id, max_age=self._max_age, force_fetch=force)
            except GetParameterError as error:
                raise ConfigurationError(
                    f"cannot read secret {self.secret_id}: {type(error.__cause__ or error).__name__}"
                ) from error
        if not isinstance(value, str | bytes | None):
            raise ConfigurationError(f"secret {self.secret_id} has an unexpected value type")
        return parse_secret_value(value, secret_id=self.secret_id)


class StaticKeySource:
    """A key given directly (the demo against the real API takes it from the environment)."""

    def __init__(self, key: str, *, name: str = "static key") -> None:
        self._key = parse_secret_value(key, secret_id=name)

    def get(self) -> str:
        return self._key

    def refresh(self) -> str:
        return self._key
