"""Listing and cursor pagination, plus the ApiError endpoint code raises for a 4xx answer.

talonic-api.md: the run list documents no parameters and returns at most the newest 100; elsewhere
the API pages with ``?limit=&cursor=`` and a ``pagination`` block, and a client should follow
``next_cursor`` only if it appears. Cursors are opaque base64 strings; the run-list cursor names the
last run shown (not an offset), so runs created between pages neither repeat nor go missing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from local.talonic_emulator.runs import StoredRun

#: The documented list returns at most this many runs, the newest.
LIST_CAP = 100
#: Largest page a ``?limit=`` may ask for in pagination mode.
MAX_PAGE_LIMIT = 100


class ApiError(Exception):
    """Raised by endpoint code to answer with an error body in the current shape."""

    def __init__(self, status: int, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def newest_first(runs: Sequence[StoredRun]) -> list[StoredRun]:
    return sorted(runs, key=lambda run: (run.created_at, run.seq), reverse=True)


def encode_cursor(payload: Mapping[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    """Decode a cursor this emulator issued for listing ``kind``; anything else is a 400."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as error:
        raise ApiError(400, "Invalid cursor.") from error
    if not isinstance(payload, dict) or payload.get("k") != kind:
        raise ApiError(400, "Invalid cursor.")
    return payload


def page_limit(query: Mapping[str, str], page_size: int) -> int:
    """The page size: ``?limit=`` (capped at MAX_PAGE_LIMIT) or the configured default."""
    if page_size < 1:
        raise ValueError("page sizes must be at least 1")
    raw = query.get("limit")
    if raw is None:
        return page_size
    try:
        limit = int(raw)
    except ValueError as error:
        raise ApiError(400, "limit must be an integer.") from error
    if limit < 1:
        raise ApiError(400, "limit must be at least 1.")
    return min(limit, MAX_PAGE_LIMIT)


def parse_bool(value: str | None, name: str) -> bool:
    """A boolean query parameter; absent means false."""
    if value is None or value.lower() in {"false", "0", ""}:
        return False
    if value.lower() in {"true", "1"}:
        return True
    raise ApiError(400, f"{name} must be true or false.")


def _pagination(total: int, limit: int, next_cursor: str | None) -> dict[str, Any]:
    return {"total": total, "limit": limit, "has_more": next_cursor is not None, "next_cursor": next_cursor}


def page_of_runs(
    runs: Sequence[StoredRun], query: Mapping[str, str], page_size: int
) -> tuple[list[StoredRun], dict[str, Any]]:
    """One page of ``runs`` (already newest first) after the cursor in ``query``, and its pagination."""
    limit = page_limit(query, page_size)
    remaining = list(runs)
    if cursor := query.get("cursor"):
        anchor = decode_cursor(cursor, "runs")
        after = (anchor.get("t"), anchor.get("s"))
        if not all(isinstance(part, int | float) and not isinstance(part, bool) for part in after):
            raise ApiError(400, "Invalid cursor.")
        remaining = [run for run in runs if (run.created_at, run.seq) < after]
    page = remaining[:limit]
    next_cursor = (
        encode_cursor({"k": "runs", "t": page[-1].created_at, "s": page[-1].seq}) if len(remaining) > limit else None
    )
    return page, _pagination(len(runs), limit, next_cursor)


def page_of_rows(
    rows: Sequence[dict[str, Any]], query: Mapping[str, str], page_size: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page of result rows after the cursor in ``query``, and its pagination block."""
    limit = page_limit(query, page_size)
    offset = 0
    if cursor := query.get("cursor"):
        position = decode_cursor(cursor, "results").get("o")
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise ApiError(400, "Invalid cursor.")
        offset = position
    next_cursor = encode_cursor({"k": "results", "o": offset + limit}) if offset + limit < len(rows) else None
    return list(rows[offset : offset + limit]), _pagination(len(rows), limit, next_cursor)
