"""Keeps Talonic API keys out of messages and logs.

Keys start with `tlnc_`; anything that looks like one is masked, whatever its source (an error message
the API echoed, an exception text, a log line).
"""

from __future__ import annotations

import re

_KEY_PATTERN = re.compile(r"tlnc_[A-Za-z0-9_\-]+")
MASK = "tlnc_***"


def redact(text: str, *secrets: str) -> str:
    """Mask every known secret and every key-shaped token in `text`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _KEY_PATTERN.sub(MASK, text)
