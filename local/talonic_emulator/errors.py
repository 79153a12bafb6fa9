"""Error bodies in every shape Talonic is known to send.

talonic-api.md lists three JSON shapes in use (flat, nested, short), codes in both upper and lower
case, and bodies that are empty or not JSON at all. A client must cope with all of them, so the
emulator can produce each one on demand (``TalonicEmulator.error_shape``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

ErrorShape = Literal["flat", "nested", "short", "empty", "text"]
ERROR_SHAPES: frozenset[str] = frozenset({"flat", "nested", "short", "empty", "text"})

# status -> (upper-case code of the flat shape, lower-case code of the nested and short shapes)
_CODES: dict[int, tuple[str, str]] = {
    400: ("VALIDATION_ERROR", "invalid_request"),
    401: ("AUTH_REQUIRED", "unauthorized"),
    403: ("INSUFFICIENT_PERMISSIONS", "insufficient_scope"),
    404: ("RESOURCE_NOT_FOUND", "not_found"),
    405: ("METHOD_NOT_ALLOWED", "method_not_allowed"),
    409: ("CONFLICT", "conflict"),
    422: ("VALIDATION_ERROR", "validation_error"),
    429: ("RATE_LIMIT_EXCEEDED", "rate_limited"),
    500: ("INTERNAL_ERROR", "internal_error"),
    502: ("BAD_GATEWAY", "bad_gateway"),
    503: ("SERVICE_UNAVAILABLE", "service_unavailable"),
    504: ("GATEWAY_TIMEOUT", "gateway_timeout"),
}

JSON_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` ("Not Found"), or a generic one for odd codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_codes(status: int) -> tuple[str, str]:
    """The (upper-case, lower-case) error code pair Talonic uses for an HTTP status."""
    if status in _CODES:
        return _CODES[status]
    snake = reason_phrase(status).replace("-", " ").replace("'", "").lower().replace(" ", "_")
    return snake.upper(), snake


def is_retryable(status: int) -> bool:
    """Talonic marks 429 and 5xx as retryable and everything else as final."""
    return status == 429 or status >= 500


def encode_json(payload: Any) -> bytes:
    """Compact JSON as the API sends it."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def render_error(
    shape: str,
    status: int,
    message: str,
    *,
    request_id: str,
    path: str,
    timestamp: str,
    extra: Mapping[str, Any] | None = None,
) -> tuple[bytes, str | None]:
    """Return ``(body, content_type)`` of an error response in the requested shape.

    ``extra`` (e.g. ``required_scopes`` on a 403) goes next to ``code``/``message`` in every JSON
    shape. The short shape carries no request id, as observed; the request id is still in the
    ``X-Request-Id`` header of every response.
    """
    upper, lower = error_codes(status)
    details = dict(extra or {})
    if shape == "flat":
        return encode_json(
            {
                "statusCode": status,
                "code": upper,
                "error": reason_phrase(status),
                "message": message,
                "retryable": is_retryable(status),
                "request_id": request_id,
                "timestamp": timestamp,
                "path": path,
                **details,
            }
        ), JSON_CONTENT_TYPE
    if shape == "nested":
        return encode_json(
            {
                "error": {
                    "code": lower,
                    "message": message,
                    "retryable": is_retryable(status),
                    "request_id": request_id,
                    **details,
                }
            }
        ), JSON_CONTENT_TYPE
    if shape == "short":
        return encode_json({"status": status, "code": lower, "message": message, **details}), JSON_CONTENT_TYPE
    if shape == "empty":
        return b"", None
    if shape == "text":
        title = f"{status} {reason_phrase(status)}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
        return page.encode("utf-8"), HTML_CONTENT_TYPE
    raise ValueError(f"unknown error_shape {shape!r}; expected one of {sorted(ERROR_SHAPES)}")
