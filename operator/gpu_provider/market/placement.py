"""Where an order may run (`pr`): the SDK's placement attributes, typed.

The SDK writes the known attributes in a fixed order and joins several values of one
attribute with `;` (`region_exclude: us-east;eu-west`). Those multi-value attributes decode
into tuples here, so the bid engine compares whole items and never substrings.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, Field, model_validator

from gpu_provider.market.text import (
    MAX_TEXT_CHARS,
    Attributes,
    FrozenModel,
    Name,
    Value,
    unique_keys,
)

MAX_ATTRIBUTES: Final = 64
LIST_SEPARATOR: Final = ";"
SINGLE_VALUE_KEYS: Final = ("cpu_model", "bandwidth", "region")
LIST_KEYS: Final = (
    "region_exclude",
    "desired_fizz",
    "desired_provider",
    "provider_exclude",
    "fizz_exclude",
)
PLACEMENT_KEYS: Final = (
    "cpu_model",
    "bandwidth",
    "region",
    "region_exclude",
    "desired_fizz",
    "desired_provider",
    "provider_exclude",
    "fizz_exclude",
)
"""Known placement attributes, in the order the SDK's encoder writes them."""


def _check_item(value: str) -> str:
    if LIST_SEPARATOR in value:
        raise ValueError(f"a list item must not contain {LIST_SEPARATOR!r}")
    if value != value.strip():
        raise ValueError("a list item must not start or end with whitespace")
    return value


Item = Annotated[Value, AfterValidator(_check_item)]
ValueList = tuple[Item, ...] | None
"""None when the attribute is absent; otherwise its `;`-separated items (at least one)."""


def split_list(value: str) -> tuple[str, ...]:
    """The items of a `;`-joined attribute value, each trimmed as the SDK's user wrote them."""
    return tuple(item.strip() for item in value.split(LIST_SEPARATOR))


class Placement(FrozenModel):
    """Where the order may run (`pr`). Absent attributes are None, not empty strings."""

    cpu_model: Value | None = None
    bandwidth: Value | None = None
    region: Value | None = None
    region_exclude: ValueList = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    desired_fizz: ValueList = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    desired_provider: ValueList = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    provider_exclude: ValueList = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    fizz_exclude: ValueList = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTES)
    provider_wallets: tuple[Name, ...] = Field(default=(), max_length=MAX_ATTRIBUTES)
    extra_attributes: Attributes = Field(default=(), max_length=MAX_ATTRIBUTES)

    @model_validator(mode="after")
    def _extras_are_unknown(self) -> Placement:
        unique_keys(self.extra_attributes, frozenset(PLACEMENT_KEYS), "placement")
        for key in LIST_KEYS:
            items = getattr(self, key)
            if items is not None and len(LIST_SEPARATOR.join(items)) > MAX_TEXT_CHARS:
                raise ValueError(f"{key} is longer than {MAX_TEXT_CHARS} characters once joined")
        return self

    def known_attributes(self) -> tuple[tuple[str, str], ...]:
        """The typed attributes that are set, as (key, value) in encoding order."""
        pairs: list[tuple[str, str]] = []
        for key in PLACEMENT_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            pairs.append((key, value if isinstance(value, str) else LIST_SEPARATOR.join(value)))
        return tuple(pairs)
