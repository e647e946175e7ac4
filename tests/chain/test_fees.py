"""EIP-1559 fees: what a new transaction and a replacement pay, and where the cap stops them."""

from __future__ import annotations

import pytest

from gpu_provider.chain.errors import FeeCapExceeded
from gpu_provider.chain.fees import GWEI, FeePolicy, Fees, fees_for, replacement_fees, tip_for

POLICY = FeePolicy(max_fee_per_gas=100 * GWEI, min_priority_fee=GWEI // 1000)


def test_a_new_transaction_pays_twice_the_base_fee_plus_the_tip() -> None:
    assert fees_for(POLICY, 10 * GWEI, GWEI) == Fees(21 * GWEI, GWEI)


def test_the_cap_clamps_the_headroom_but_not_what_mining_needs() -> None:
    assert fees_for(POLICY, 60 * GWEI, GWEI) == Fees(100 * GWEI, GWEI)
    with pytest.raises(FeeCapExceeded, match="above the max fee cap of 100 gwei"):
        fees_for(POLICY, 100 * GWEI, GWEI)


@pytest.mark.parametrize(
    ("suggested", "tip"),
    [(None, GWEI // 1000), (1, GWEI // 1000), (2 * GWEI, 2 * GWEI), (50 * GWEI, 5 * GWEI)],
)
def test_the_suggested_tip_is_clamped_to_the_bounds(suggested: int | None, tip: int) -> None:
    assert tip_for(POLICY, suggested) == tip


def test_a_fixed_tip_ignores_the_suggestion() -> None:
    assert tip_for(FeePolicy(priority_fee=7), 5 * GWEI) == 7


def test_a_replacement_raises_both_fees_by_at_least_an_eighth() -> None:
    previous = Fees(20 * GWEI, GWEI)
    bumped = replacement_fees(POLICY, previous, base_fee=GWEI, tip=GWEI // 1000)
    assert bumped is not None
    assert bumped.max_fee_per_gas >= previous.max_fee_per_gas * 1.125
    assert bumped.max_priority_fee_per_gas >= previous.max_priority_fee_per_gas * 1.125


def test_a_replacement_follows_a_rising_base_fee() -> None:
    bumped = replacement_fees(POLICY, Fees(3 * GWEI, GWEI), base_fee=30 * GWEI, tip=GWEI)
    assert bumped is not None
    assert bumped.max_fee_per_gas >= 2 * 30 * GWEI


def test_a_replacement_of_a_tiny_fee_still_moves_by_a_wei() -> None:
    bumped = replacement_fees(POLICY, Fees(1, 1), base_fee=0, tip=0)
    assert bumped == Fees(2, 2)


def test_no_replacement_when_the_cap_leaves_no_room() -> None:
    assert replacement_fees(POLICY, Fees(95 * GWEI, GWEI), base_fee=GWEI, tip=GWEI) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"base_fee_multiplier": 0.5}, "must be >= 1"),
        ({"gas_margin": 0.9}, "must be >= 1"),
        ({"replacement_bump": 1.05}, "replacement_bump >= 1.1"),
        ({"min_priority_fee": 10, "max_priority_fee": 1}, "must not exceed"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(values: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeePolicy(**values)  # type: ignore[arg-type]
