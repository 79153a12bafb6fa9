"""Named exceptions: the contract between the shared package, the handlers and the state machine.

Step Functions matches `Retry`/`Catch` on the exception's class name, so these names are public API:
renaming one is a breaking change for `statemachine/*.asl.json`.
"""

from __future__ import annotations


class WatchdogError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigurationError(WatchdogError):
    """The deployment is misconfigured: a missing variable, an empty or malformed secret."""


class TalonicError(WatchdogError):
    """The Talonic API answered with an error, or could not be reached.

    Carries what an operator needs to follow up with Talonic (HTTP status, error code, request id) and
    never the API key: messages are redacted before they get here.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retryable = retryable

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (("status", self.status), ("code", self.code), ("request_id", self.request_id))
            if value is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message


class TalonicUnauthorizedError(TalonicError):
    """401: the key is missing, invalid or revoked (after one refresh of the secret)."""


class TalonicInsufficientScopeError(TalonicError):
    """403: the key is valid but lacks the scope this call needs (a read key used for a delete)."""

    def __init__(self, message: str, *, required_scopes: tuple[str, ...] = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.required_scopes = required_scopes


class TalonicNotFoundError(TalonicError):
    """404: no such run, or it belongs to another organization (Talonic does not say which)."""


class TalonicBadRequestError(TalonicError):
    """400/409/422: Talonic rejected the request body; retrying the same request cannot help."""


class TalonicRateLimitedError(TalonicError):
    """429, or the call's time budget ran out while waiting for the rate limit.

    `retry_after_seconds` says when to come back, so a caller (the poll step) can wait exactly that long
    instead of failing.
    """

    def __init__(self, message: str, *, retry_after_seconds: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after_seconds = retry_after_seconds


class TalonicServerError(TalonicError):
    """5xx after the retries the time budget allowed."""


class TalonicTransportError(TalonicError):
    """Timeouts and connection errors after the retries the time budget allowed."""


class TalonicBadResponseError(TalonicError):
    """The answer is not what the API documents: not JSON, or a required field missing or mistyped."""


class UnknownRunStatusError(TalonicBadResponseError):
    """A run's status is none of pending/running/completed/failed: reported, never taken as 'keep waiting'."""
