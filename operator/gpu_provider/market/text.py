"""Strings that survive the compressed spec format, shared by the spec models and the codec."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict

MAX_TEXT_CHARS: Final = 256
STRUCTURAL_CHARS: Final = frozenset("{}[],")
"""Characters a bare value cannot contain: they would end or open a value when decoded."""


def check_text(value: str, *, allow_empty: bool = False) -> str:
    """Reject strings that cannot be written bare in a spec and read back unchanged.

    Only printable characters (so no tabs, newlines or invisible format characters), no
    structural characters, no surrounding spaces (the decoder trims them) and a sane length.
    """
    if not value and not allow_empty:
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"is {len(value)} characters long; the limit is {MAX_TEXT_CHARS}")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    for ch in value:
        if ch in STRUCTURAL_CHARS:
            raise ValueError(f"must not contain {ch!r}")
        if not ch.isprintable():
            raise ValueError(f"must not contain the non-printable character {ch!r}")
    return value


def _check_name(value: str) -> str:
    return check_text(value)


def _check_value(value: str) -> str:
    return check_text(value, allow_empty=True)


def _check_path_segment(value: str) -> str:
    check_text(value)
    if "/" in value:
        raise ValueError("must not contain '/'")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
"""A non-empty string that survives the compressed format (names, keys)."""
Value = Annotated[str, AfterValidator(_check_value)]
"""A possibly empty string that survives the compressed format (attribute values)."""
PathSegment = Annotated[str, AfterValidator(_check_path_segment)]
Attributes = tuple[tuple[Name, Value], ...]
"""Attributes we do not interpret, kept as (key, value) pairs in their original order."""


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def unique_keys(pairs: Attributes, reserved: frozenset[str], where: str) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in reserved:
            raise ValueError(f"{where} attribute {key!r} has its own field")
        if key in seen:
            raise ValueError(f"{where} attribute {key!r} appears twice")
        seen.add(key)
