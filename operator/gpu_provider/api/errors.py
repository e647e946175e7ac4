"""Render pydantic validation errors the way the apiserver does: `spec.pricing.gpu[0].model: ...`.

The same text goes into `kubectl` output, Events and status conditions, so a provider reads one
kind of message whether the apiserver or the operator caught the mistake.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """`("pricing", "gpu", 0, "model")` → `pricing.gpu[0].model` (after `prefix.`, if any)."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def describe(error: ValidationError, prefix: str = "") -> list[str]:
    """One `path: message` line per problem, in the order pydantic found them."""
    lines = []
    for item in error.errors(include_url=False):
        path = field_path(item["loc"], prefix) or prefix or "(root)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return lines
