"""The one Kubernetes quantity grammar: exact values, apimachinery's rounding, one pattern."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from gpu_provider.api.quantity import (
    QUANTITY_PATTERN,
    QuantityError,
    parse_quantity,
    quantity_to_exact_int,
    quantity_to_int,
)

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "gpu_provider"


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("2", Decimal(2)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("+1", Decimal(1)),
        ("16Gi", Decimal(16 * 2**30)),
        ("100Ki", Decimal(102400)),
        ("0.1Gi", Decimal("107374182.4")),
        ("1Ei", Decimal(2**60)),
        ("1k", Decimal(1000)),
        ("1T", Decimal(10**12)),
        ("1E", Decimal(10**18)),
        ("250u", Decimal("0.00025")),
        ("3n", Decimal("0.000000003")),
        ("1e3", Decimal(1000)),
        ("1E-3", Decimal("0.001")),
        (4, Decimal(4)),
    ],
)
def test_quantities_parse_to_exact_values(text: object, exact: Decimal) -> None:
    assert parse_quantity(text) == exact
    if isinstance(text, str):
        assert re.match(QUANTITY_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-1", "not a Kubernetes quantity"),
        ("16GB", "unknown unit 'GB'"),
        ("1K", "unknown unit 'K'"),
        ("lots", "not a Kubernetes quantity"),
        ("1.5.5", "not a Kubernetes quantity"),
        ("", "not a Kubernetes quantity"),
        (" 1", "not a Kubernetes quantity"),
        ("1e999", "exponent"),
        (True, "must be a Kubernetes quantity"),
        (1.5, "must be a Kubernetes quantity"),
        (-3, "must not be negative"),
    ],
)
def test_bad_quantities_say_why(text: object, reason: str) -> None:
    with pytest.raises(QuantityError, match=re.escape(reason)):
        parse_quantity(text)
    if isinstance(text, str) and reason != "exponent":
        assert not re.match(QUANTITY_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "scale", "value"),
    [("0.1Gi", 1, 107374183), ("1.5", 1000, 1500), ("500m", 1, 1), ("1m", 1000, 1), ("0", 1, 0)],
)
def test_integers_round_up_like_apimachinery(text: str, scale: int, value: int) -> None:
    assert quantity_to_int(text, scale=scale) == value


def test_exact_integers_refuse_a_fraction() -> None:
    assert quantity_to_exact_int("1.5Gi", what="bytes") == 3 * 2**29
    with pytest.raises(QuantityError, match="not a whole number of bytes"):
        quantity_to_exact_int("0.3Ki", what="bytes")


def test_no_other_module_carries_its_own_quantity_grammar() -> None:
    suffix_tables = re.compile(r"[\"']Mi[\"']\s*:\s*2\s*\*\*\s*20|[\"']Gi[\"']\s*:")
    offenders = [
        str(path.relative_to(OPERATOR))
        for path in OPERATOR.rglob("*.py")
        if path.name != "quantity.py" and suffix_tables.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
