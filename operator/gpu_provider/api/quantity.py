"""Kubernetes resource quantities: the one grammar the project parses them with.

`resource.Quantity` as apimachinery reads it, restricted to non-negative values: a decimal
number (`2`, `1.5`, `.5`) with an optional binary suffix (`Ki` .. `Ei`), decimal suffix (`n`,
`u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or exponent (`1e3`). The CRD schema's pattern,
the pydantic type and the parser to an exact `Decimal` all come from the tables below, so a
value the apiserver admits is a value the operator can read, and the other way round.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Final

from pydantic import BeforeValidator, WithJsonSchema

BINARY_SUFFIXES: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
"""Binary suffix -> power of 1024."""
DECIMAL_SUFFIXES: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
"""Decimal suffix -> power of ten."""
_NUMBER: Final = r"[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)"
_SUFFIX: Final = "|".join(
    sorted((s for s in (*BINARY_SUFFIXES, *DECIMAL_SUFFIXES) if s), key=lambda s: -len(s))
)
_MAX_EXPONENT: Final = 64
"""Larger exponents describe no real resource and would make exact arithmetic expensive."""
QUANTITY_PATTERN: Final = rf"^{_NUMBER}({_SUFFIX}|[eE][+-]?[0-9]+)?$"
_QUANTITY: Final = re.compile(rf"^(?P<number>{_NUMBER})(?P<suffix>{_SUFFIX}|[eE][+-]?[0-9]+)?$")
_UNIT_LIKE: Final = re.compile(rf"^{_NUMBER}\s*(?P<unit>[A-Za-z]+)$")
EXAMPLES: Final = "e.g. 500m, 2, 1.5, 512Mi, 16Gi or 1T"


class QuantityError(ValueError):
    """A value that is not a non-negative Kubernetes quantity; the message says why."""


def parse_quantity(value: object) -> Decimal:
    """The exact value of a quantity (`"500m"` -> 0.5, `"1Ki"` -> 1024); ints pass through."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QuantityError(f"must be a Kubernetes quantity ({EXAMPLES}), not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise QuantityError(f"must not be negative, got {value}")
        return Decimal(value)
    match = _QUANTITY.match(value)
    if match is None:
        unit = _UNIT_LIKE.match(value)
        if unit is not None:
            known = ", ".join(s for s in (*BINARY_SUFFIXES, *DECIMAL_SUFFIXES) if s)
            raise QuantityError(
                f"unknown unit {unit['unit']!r} in {value!r}: a Kubernetes quantity uses {known}"
            )
        raise QuantityError(f"{value!r} is not a Kubernetes quantity ({EXAMPLES})")
    number = Decimal(match["number"].lstrip("+"))
    suffix = match["suffix"] or ""
    if suffix in BINARY_SUFFIXES:
        return number * Decimal(1024) ** BINARY_SUFFIXES[suffix]
    if suffix in DECIMAL_SUFFIXES:
        return number.scaleb(DECIMAL_SUFFIXES[suffix])
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise QuantityError(f"the exponent in {value!r} is out of range")
    return number.scaleb(exponent)


def quantity_to_int(value: object, *, scale: int = 1) -> int:
    """`value * scale` rounded up to a whole number, as apimachinery's `Value()` does.

    `scale=1000` gives millis (`MilliValue()`): `quantity_to_int("1.5", scale=1000) == 1500`.
    """
    exact = parse_quantity(value) * scale
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def quantity_to_exact_int(value: object, *, scale: int = 1, what: str = "units") -> int:
    """`value * scale` as a whole number; QuantityError when it has a fraction left."""
    exact = parse_quantity(value) * scale
    if exact != exact.to_integral_value():
        raise QuantityError(f"{value!r} is not a whole number of {what}")
    return int(exact)


def _quantity_string(value: object) -> str:
    parse_quantity(value)
    return str(value)


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_string),
    WithJsonSchema({"type": "string", "pattern": QUANTITY_PATTERN}),
]
"""A non-negative Kubernetes resource quantity kept as written ('500m', '16Gi', '1.5')."""
