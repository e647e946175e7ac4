"""What an RPC error answer means for the request that got it.

Nodes and hosted RPCs word the same condition differently, and the words overlap: Infura
answers code -32005 both for "request rate limited" and for "query returned more than 10000
results", and rate-limit messages say "limit" and "exceeded" as often as range refusals do.
So a rate limit is recognised by its own phrases first, and only an explicit "range too
large" or "too many results" phrase makes the event stream shrink an `eth_getLogs` range.
A timeout is neither: it is retried as it is.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final


class RpcErrorKind(StrEnum):
    RATE_LIMITED = "rate-limited"
    """Back off (for the hinted time if any) and send the same request again."""
    RANGE_TOO_LARGE = "range-too-large"
    """The `eth_getLogs` block range or its result is too large: ask for a smaller range."""
    OTHER = "other"


# HTTP 429 as `FailoverProvider` hands it back (negative status), the JSON-RPC codes hosted
# RPCs use only for throttling (Alchemy 429, QuickNode -32007, proxyd/Base -32016).
_RATE_CODES: Final = frozenset({-429, 429, -32007, -32016})
_RATE_PHRASES: Final = (
    "rate limit",
    "rate-limit",
    "ratelimit",
    "rate exceeded",
    "too many requests",
    "request limit reached",
    "requests per second",
    "calls per second",
    "compute units",
    "request count exceeded",
    "throttl",
    "retry after",
    "try again in",
)
_RANGE_PHRASES: Final = (
    "range too large",
    "range is too large",
    "range too wide",
    "block range greater than",
    "block range should work",
    "block range and no limit",
    "max block range",
    "maximum block range",
    "blocks range",
    "limited to a",
    "too many results",
    "more than 10000 results",
    "returned more than",
    "max results",
    "response size exceeded",
    "response is too big",
    "too many logs",
    "logs exceed",
)
_HINT: Final = re.compile(
    r"(?:retry[- ]after|try again in|retry in|wait)\D{0,3}?(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)?\b",
    re.IGNORECASE,
)
_UNITS: Final = {"ms": 0.001, "m": 60.0, "min": 60.0}


def classify(code: int, message: str) -> RpcErrorKind:
    """What a JSON-RPC error (or an HTTP status as `-status`) means for a retry."""
    text = message.lower()
    if code == 3 or "revert" in text:
        return RpcErrorKind.OTHER  # the contract's words, whatever they say
    if any(phrase in text for phrase in _RANGE_PHRASES):
        return RpcErrorKind.RANGE_TOO_LARGE
    if code in _RATE_CODES or any(phrase in text for phrase in _RATE_PHRASES):
        return RpcErrorKind.RATE_LIMITED
    if code == -32005 and "result" not in text:
        # EIP-1474's "limit exceeded": Infura's throttling code when no phrase says more.
        return RpcErrorKind.RATE_LIMITED
    return RpcErrorKind.OTHER


def retry_after_hint(message: str, data: Any = None) -> float | None:
    """Seconds to wait, as the answer suggests in its message or its `data`, if it does."""
    if isinstance(data, Mapping):
        for holder in (data, data.get("rate")):
            if isinstance(holder, Mapping):
                for key in ("retry_after", "retryAfter", "backoff_seconds"):
                    value = holder.get(key)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        return max(0.0, float(value))
    match = _HINT.search(message)
    if match is None:
        return None
    unit = (match.group(2) or "s").lower()
    scale = _UNITS.get(unit[:3] if unit.startswith("min") else unit, None)
    if scale is None:
        scale = 0.001 if unit.startswith("milli") else 60.0 if unit.startswith("m") else 1.0
    return float(match.group(1)) * scale


def parse_retry_after(value: str, now: float) -> float | None:
    """An HTTP `Retry-After` header (delay seconds or an HTTP date) as seconds from `now`."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)  # the standard says whole seconds; some servers send fractions
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)
