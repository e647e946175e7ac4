"""When earnings are withdrawn, how much (to the wei), and under which idempotency key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpu_provider.market.earnings import (
    ProviderEarnings,
    threshold_base_units,
    withdraw_key,
    withdrawal_amount,
)

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize(
    ("whole", "decimals", "base_units"),
    [
        ("10", 18, 10 * 10**18),
        ("2.5", 6, 2_500_000),
        (Decimal("0.000001"), 6, 1),
        ("0", 18, 0),
        ("123456789.123456789123456789", 18, 123456789123456789123456789),
    ],
)
def test_threshold_in_whole_tokens_is_converted_exactly(
    whole: str | Decimal, decimals: int, base_units: int
) -> None:
    assert threshold_base_units(whole, decimals) == base_units


@pytest.mark.parametrize(
    ("whole", "decimals", "message"),
    [
        ("0.0000001", 6, "finer than one base unit"),
        ("-1", 18, ">= 0"),
        ("ten", 18, "not a decimal number"),
        ("NaN", 18, ">= 0"),
    ],
)
def test_unusable_threshold_is_refused(whole: str, decimals: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        threshold_base_units(whole, decimals)


def test_whole_balance_is_withdrawn_once_it_reaches_the_threshold() -> None:
    threshold = 10 * 10**18
    below = ProviderEarnings(earned=threshold - 1, withdrawn=0, balance=threshold - 1)
    assert withdrawal_amount(below, threshold) is None
    reached = ProviderEarnings(earned=threshold + 7, withdrawn=5, balance=threshold + 2)
    assert withdrawal_amount(reached, threshold) == threshold + 2


def test_nothing_is_withdrawn_from_an_empty_balance_even_with_a_zero_threshold() -> None:
    assert withdrawal_amount(ProviderEarnings(earned=9, withdrawn=9, balance=0), 0) is None
    assert withdrawal_amount(ProviderEarnings(earned=1, withdrawn=0, balance=1), 0) == 1


def test_key_is_stable_until_a_withdrawal_is_mined() -> None:
    assert withdraw_key(TOKEN, 0) == withdraw_key(TOKEN.lower(), 0)
    assert withdraw_key(TOKEN, 0) == f"withdraw:{TOKEN.lower()}:0"
    assert withdraw_key(TOKEN, 0) != withdraw_key(TOKEN, 10)


def test_negative_amounts_are_not_earnings() -> None:
    with pytest.raises(ValueError, match="balance"):
        ProviderEarnings(earned=0, withdrawn=0, balance=-1)
