"""Trust tiers are 1..7 for people and enum indexes 0..6 on chain: tier 4 is 3."""

from __future__ import annotations

import pytest

from gpu_provider.chain.contracts import tier_index


@pytest.mark.parametrize(("tier", "index"), [(1, 0), (4, 3), (7, 6)])
def test_a_tier_is_its_enum_index_plus_one(tier: int, index: int) -> None:
    assert tier_index(tier) == index


@pytest.mark.parametrize("tier", [0, 8, -1])
def test_tiers_outside_one_to_seven_are_refused(tier: int) -> None:
    with pytest.raises(ValueError, match=r"a trust tier is 1\.\.7"):
        tier_index(tier)
