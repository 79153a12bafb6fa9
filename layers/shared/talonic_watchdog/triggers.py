"""How a watch starts: from an EventBridge event, from Talonic's signal webhook, or directly.

Every path ends in one StartExecution under a deterministic name (`run-<id>` or `job-<id>-<hash>`), and
"already exists" counts as success, so a signal delivered seven times (Talonic delivers at least once) or a
run announced by two paths is watched once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from talonic_watchdog import clock
from talonic_watchdog.errors import ConfigurationError, TalonicBadResponseError, WatchdogError
from talonic_watchdog.models import parse_timestamp

logger = logging.getLogger(__name__)

SIGNAL_SOURCE = "talonic"
COMPLETED_SIGNAL = "run.dataspace.completed"
IGNORED_SIGNALS = frozenset({"run.dataspace.failed"})  # a failed job run has no output to validate
RUN_ID_FIELDS = ("dataspace_run_id", "run_id", "id")  # Talonic does not document the payload's field name
# A signed delivery older (or newer) than this is refused as a replay; Talonic stamps each retry afresh.
DEFAULT_MAX_SIGNAL_AGE_SECONDS = 300.0


class InvalidSignalError(WatchdogError):
    """An event or signal that cannot start a watch: no job run id, or one that is not a UUID."""


def _as_uuid(value: object, what: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError as error:
        raise InvalidSignalError(f"{what} is not a UUID: {str(value)[:80]!r}") from error


def job_run_id_of(payload: dict[str, Any]) -> str:
    for name in RUN_ID_FIELDS:
        if payload.get(name):
            return _as_uuid(payload[name], name)
    raise InvalidSignalError(f"no job run id: expected one of {', '.join(RUN_ID_FIELDS)}")


def watch_input_from_event(
    event: dict[str, Any], *, golden_sample_map: dict[str, str], default_golden_sample_id: str | None
) -> dict[str, Any]:
    """The state machine input for a `run.dataspace.completed` event on the bus.

    The golden sample comes from the event, else from the stack's job → golden sample map (matched on the
    event's job_id or dataspace_id), else from the stack's default.
    """
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidSignalError("the event has no detail object")
    if detail.get("validation_run_id"):
        return {"validation_run_id": _as_uuid(detail["validation_run_id"], "validation_run_id")}
    watch_input: dict[str, Any] = {"dataspace_run_id": job_run_id_of(detail)}
    golden = detail.get("golden_sample_id")
    if not golden:
        golden = next(
            (
                golden_sample_map[str(detail[key])]
                for key in ("job_id", "dataspace_id")
                if detail.get(key) and str(detail[key]) in golden_sample_map
            ),
            default_golden_sample_id,
        )
    if not golden:
        raise InvalidSignalError(
            f"job run {watch_input['dataspace_run_id']}: the event names no golden sample, and neither "
            "GoldenSampleMap nor DefaultGoldenSampleId covers it"
        )
    watch_input["golden_sample_id"] = _as_uuid(golden, "golden_sample_id")
    if isinstance(detail.get("name"), str) and detail["name"].strip():
        watch_input["name"] = detail["name"].strip()[:200]
    return watch_input


def execution_name(watch_input: dict[str, Any]) -> str:
    """Deterministic, within Step Functions' 80 characters of [A-Za-z0-9-_]."""
    if watch_input.get("validation_run_id"):
        return f"run-{watch_input['validation_run_id']}"
    golden_hash = hashlib.sha256(str(watch_input["golden_sample_id"]).encode()).hexdigest()[:12]
    return f"job-{watch_input['dataspace_run_id']}-{golden_hash}"


@dataclass(frozen=True, slots=True)
class StartResult:
    execution_name: str
    started: bool
    execution_arn: str | None = None


def start_watch(sfn: Any, state_machine_arn: str, watch_input: dict[str, Any]) -> StartResult:
    """Start the watch under its deterministic name. `started` is False only when Step Functions says the name
    is taken by a finished execution; a repeat while the first is still running is answered idempotently
    with the same execution, as Step Functions does."""
    name = execution_name(watch_input)
    try:
        response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(watch_input))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            logger.info("watch already started", extra={"execution_name": name})
            return StartResult(execution_name=name, started=False)
        raise
    logger.info("watch started", extra={"execution_name": name})
    return StartResult(execution_name=name, started=True, execution_arn=response.get("executionArn"))


# -- the signal webhook (Lambda function URL) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngressSecret:
    """The shared token Talonic's destination presents, and optionally the HMAC signing secret."""

    token: str
    signing_secret: str | None = None

    @classmethod
    def parse(cls, value: str | bytes | None, *, secret_id: str) -> IngressSecret:
        text = (value.decode() if isinstance(value, bytes) else value or "").strip()
        token: object = text
        signing: object = None
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError as error:
                raise ConfigurationError(f"secret {secret_id} is not valid JSON") from error
            token = document.get("token") if isinstance(document, dict) else None
            signing = document.get("signing_secret") if isinstance(document, dict) else None
        if not isinstance(token, str) or len(token) < 16:
            raise ConfigurationError(f"secret {secret_id} needs a token of at least 16 characters")
        if signing is not None and (not isinstance(signing, str) or not signing):
            raise ConfigurationError(f"secret {secret_id} has a signing_secret that is not a non-empty string")
        return cls(token=token, signing_secret=signing or None)


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _presented_token(headers: dict[str, str], auth_header: str) -> str | None:
    value = headers.get(auth_header.lower())
    if value:
        return value.strip()
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def signature_of(body: bytes, signing_secret: str) -> str:
    return "sha256=" + hmac.new(signing_secret.encode(), body, hashlib.sha256).hexdigest()


def _delivery_age(signal: dict[str, Any], now: float) -> float | None:
    """Seconds between the envelope's `event.delivered_at` and now (negative: from the future); None when
    the stamp is missing or not an ISO 8601 instant."""
    try:
        delivered = parse_timestamp(signal.get("delivered_at"), field_name="delivered_at")
    except TalonicBadResponseError:
        return None
    return None if delivered is None else now - delivered.timestamp()


def handle_signal(
    request: dict[str, Any],
    *,
    secret: IngressSecret,
    auth_header: str,
    events: Any,
    bus_name: str,
    max_age_seconds: float = DEFAULT_MAX_SIGNAL_AGE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """A function-URL request from Talonic's delivery system → one event on the bus, or a clear refusal.

    401 for missing or wrong credentials, 400 for a body that is not a signal, 202 when accepted (or when a
    signal type that needs no watch was ignored), 502 when the bus did not take the event, so Talonic retries.

    With a signing secret, a delivery is also refused (401 "stale delivery") unless its `event.delivered_at`
    is within `max_age_seconds` of `now` (default: `talonic_watchdog.clock.now()`), either way: a captured,
    validly signed delivery cannot be replayed later. Talonic stamps each redelivery afresh (a new
    `delivered_at` and `attempt`), so its honest retries pass; a replay within the window, or a redelivery,
    starts no second watch (the execution name is deterministic).
    """
    method = request.get("requestContext", {}).get("http", {}).get("method", "POST")
    if method != "POST":
        return _response(405, {"error": "method_not_allowed", "message": "send signals with POST"})
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    raw = request.get("body") or ""
    body = base64.b64decode(raw) if request.get("isBase64Encoded") else str(raw).encode()

    presented = _presented_token(headers, auth_header)
    # compare_digest: the comparison takes as long whatever the prefix that matched.
    if presented is None or not hmac.compare_digest(presented.encode(), secret.token.encode()):
        logger.warning("signal refused: missing or wrong credentials")
        return _response(401, {"error": "unauthorized", "message": "missing or wrong credentials"})
    if secret.signing_secret is not None:
        expected = signature_of(body, secret.signing_secret)
        if not hmac.compare_digest(headers.get("x-talonic-signature", "").encode(), expected.encode()):
            logger.warning("signal refused: bad or missing X-Talonic-Signature")
            return _response(401, {"error": "unauthorized", "message": "bad or missing X-Talonic-Signature"})

    try:
        envelope = json.loads(body)
    except ValueError:
        return _response(400, {"error": "bad_request", "message": "the body is not JSON"})
    signal = envelope.get("event") if isinstance(envelope, dict) else None
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(signal, dict) or not isinstance(payload, dict):
        return _response(400, {"error": "bad_request", "message": 'expected {"event": {...}, "payload": {...}}'})
    if secret.signing_secret is not None:
        age = _delivery_age(signal, clock.now() if now is None else now)
        if age is None or abs(age) > max_age_seconds:
            logger.warning(
                "signal refused: stale delivery",
                extra={"event_id": str(signal.get("event_id"))[:80], "age_s": None if age is None else round(age)},
            )
            return _response(401, {"error": "unauthorized", "message": "stale delivery"})
    event_type = signal.get("event_type")
    if event_type in IGNORED_SIGNALS:
        return _response(202, {"accepted": False, "reason": f"{event_type} needs no validation"})
    if event_type != COMPLETED_SIGNAL:
        return _response(400, {"error": "bad_request", "message": f"unsupported event_type {str(event_type)[:80]!r}"})
    try:
        job_run_id = job_run_id_of(payload)
    except InvalidSignalError as error:
        return _response(400, {"error": "bad_request", "message": str(error)})

    detail: dict[str, Any] = {"dataspace_run_id": job_run_id}
    for name in ("golden_sample_id", "job_id", "dataspace_id", "name"):
        if isinstance(payload.get(name), str) and payload[name]:
            detail[name] = payload[name]
    detail["signal"] = {
        name: signal[name]
        for name in ("event_id", "idempotency_key", "attempt", "delivered_at", "binding_id")
        if name in signal
    }
    result = events.put_events(
        Entries=[
            {
                "Source": SIGNAL_SOURCE,
                "DetailType": COMPLETED_SIGNAL,
                "Detail": json.dumps(detail),
                "EventBusName": bus_name,
            }
        ]
    )
    if result.get("FailedEntryCount"):
        logger.error("the event bus refused the signal", extra={"entries": result.get("Entries")})
        return _response(502, {"error": "bus_unavailable", "message": "try again later"})
    logger.info("signal accepted", extra={"dataspace_run_id": job_run_id, "event_id": signal.get("event_id")})
    return _response(202, {"accepted": True, "dataspace_run_id": job_run_id})
