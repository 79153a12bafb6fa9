"""Which endpoint a request is for, which scope it needs, and who is asking.

talonic-api.md: GETs need ``read``; creating and deleting need ``write`` (inferred for POST);
keys arrive as ``Authorization: Bearer <key>`` and are opaque beyond the ``tlnc_`` prefix, which the
emulator does not check at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

COLLECTION_PATH = "/v1/validation/runs"
_RUN_PATH = re.compile(r"^/v1/validation/runs/(?P<run_id>[^/]+)$")
_RESULTS_PATH = re.compile(r"^/v1/validation/runs/(?P<run_id>[^/]+)/results$")
#: Methods that honour Idempotency-Key.
WRITE_METHODS = frozenset({"POST", "DELETE"})


@dataclass(frozen=True)
class Route:
    """An endpoint; ``run_id`` is empty for the collection."""

    kind: Literal["collection", "run", "results"]
    run_id: str
    scope_by_method: Mapping[str, str]


def resolve(path: str) -> Route | None:
    """The endpoint for a path (without query string), or None when the API has no such path."""
    if path == COLLECTION_PATH:
        return Route("collection", "", {"GET": "read", "POST": "write"})
    if match := _RESULTS_PATH.match(path):
        return Route("results", unquote(match["run_id"]), {"GET": "read"})
    if match := _RUN_PATH.match(path):
        return Route("run", unquote(match["run_id"]), {"GET": "read", "DELETE": "write"})
    return None


def bearer_token(header: str | None) -> str | None:
    """The key in ``Authorization: Bearer <key>``; None for a missing header or another scheme."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def alias_for(key: str) -> str:
    """A name for a key that is safe to record: the last four characters of long keys only."""
    return f"...{key[-4:]}" if len(key) >= 12 else "..."
