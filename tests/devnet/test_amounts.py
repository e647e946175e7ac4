"""USD amounts the tenant types become exact token amounts, and come back printed exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.tenant import format_amount, usd_to_base_units


@pytest.mark.parametrize(
    ("usd", "decimals", "units"),
    [("100", 18, 100 * 10**18), ("12.5", 18, 125 * 10**17), ("0.000001", 6, 1), ("3", 0, 3)],
)
def test_usd_to_token_units(usd: str, decimals: int, units: int) -> None:
    assert usd_to_base_units(Decimal(usd), decimals) == units
    assert Decimal(format_amount(units, decimals)) == Decimal(usd)


@pytest.mark.parametrize(
    ("usd", "message"),
    [("0.0000001", "more decimal places"), ("0", "positive"), ("-1", "positive")],
)
def test_amounts_the_token_cannot_hold(usd: str, message: str) -> None:
    with pytest.raises(DevnetError, match=message):
        usd_to_base_units(Decimal(usd), 6)


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (999_980 * 10**18, 18, "999980"),
        (0, 18, "0"),
        (5, 18, "0.000000000000000005"),
        (3_999_999_999_999_999_600, 18, "3.9999999999999996"),
        (10**24, 18, "1000000"),
        (100, 0, "100"),
    ],
)
def test_amounts_print_without_exponents_or_trailing_zeros(
    units: int, decimals: int, text: str
) -> None:
    assert format_amount(units, decimals) == text
