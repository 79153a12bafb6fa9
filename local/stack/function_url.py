"""Lambda function URLs: the request event (payload format 2.0) and how a handler's result becomes a response.

moto stores a function URL's configuration but serves nothing at the URL, so the local stack builds the
event the function URL service would send and shapes the handler's answer as the service does.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: The response a function URL gives when the handler raises.
INTERNAL_SERVER_ERROR: dict[str, Any] = {
    "statusCode": 502,
    "headers": {"content-type": "text/plain"},
    "body": "Internal Server Error",
    "isBase64Encoded": False,
}

_TEXT_SUBTYPES = ("json", "xml", "javascript", "x-www-form-urlencoded")


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or any(media_type.endswith(subtype) for subtype in _TEXT_SUBTYPES)


def request_event(
    url: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: str | bytes | None,
    query: str,
    epoch: float,
) -> dict[str, Any]:
    """The event a function URL sends for one HTTP request: header names lower-cased, cookies split out,
    the body base64-encoded unless its content type is text."""
    domain = urlsplit(url).netloc
    request_headers = {name.lower(): value for name, value in headers.items()}
    cookie_header = request_headers.pop("cookie", None)
    request_headers.setdefault("host", domain)
    request_headers.setdefault("x-forwarded-proto", "https")
    request_headers.setdefault("x-forwarded-port", "443")
    request_headers.setdefault("x-forwarded-for", "127.0.0.1")
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": request_headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": request_headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(epoch * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    if query:
        parameters: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
        event["queryStringParameters"] = parameters
    if body is not None:
        if _is_text(request_headers.get("content-type", "")):
            event["body"] = body.decode() if isinstance(body, bytes) else body
        else:
            raw = body if isinstance(body, bytes) else body.encode()
            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
    return event


def response(result: Any) -> dict[str, Any]:
    """The HTTP response for a handler's result: as given when it has a statusCode, else (as the service
    infers) 200 with the result as a JSON body."""
    if isinstance(result, dict) and "statusCode" in result:
        shaped = {
            "statusCode": int(result["statusCode"]),
            "headers": dict(result.get("headers") or {}),
            "body": result.get("body", ""),
            "isBase64Encoded": bool(result.get("isBase64Encoded", False)),
        }
        if result.get("cookies"):
            shaped["cookies"] = list(result["cookies"])
        return shaped
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": result if isinstance(result, str) else json.dumps(result),
        "isBase64Encoded": False,
    }
