"""The matchmaker's choice: the cheapest eligible bid wins, ties go to the earliest, and every
other bid gets a reason a provider can act on."""

from __future__ import annotations

import pytest

from gpu_provider.devnet.matchmaker import (
    BidState,
    OrderBid,
    ProviderFacts,
    select_bid,
)

MAX_PRICE = 1_000
ANY_TIER: frozenset[int] = frozenset()
A, B, C = "0xAaaa", "0xBbbb", "0xCccc"
ACTIVE = ProviderFacts(active=True, tier=1)
FACTS = {A: ACTIVE, B: ACTIVE, C: ACTIVE}


def _reasons(bids: list[OrderBid], **kwargs: object) -> dict[str, str]:
    selection = select_bid(
        bids,
        max_price=kwargs.get("max_price", MAX_PRICE),  # type: ignore[arg-type]
        tiers=kwargs.get("tiers", ANY_TIER),  # type: ignore[arg-type]
        providers=kwargs.get("providers", FACTS),  # type: ignore[arg-type]
    )
    return {rejection.bid.provider: rejection.reason for rejection in selection.rejected}


def test_the_cheapest_bid_wins_and_the_others_are_outbid() -> None:
    bids = [OrderBid(0, A, 900), OrderBid(1, B, 700), OrderBid(2, C, 800)]
    selection = select_bid(bids, max_price=MAX_PRICE, tiers=ANY_TIER, providers=FACTS)
    assert selection.winner == bids[1]
    assert [r.bid.index for r in selection.rejected] == [0, 2]
    assert _reasons(bids) == {
        A: "outbid: 900 per block > the winning 700",
        C: "outbid: 800 per block > the winning 700",
    }


def test_a_tie_goes_to_the_earliest_bid() -> None:
    bids = [OrderBid(0, A, 800), OrderBid(1, B, 700), OrderBid(2, C, 700)]
    selection = select_bid(bids, max_price=MAX_PRICE, tiers=ANY_TIER, providers=FACTS)
    assert selection.winner == bids[1]
    assert _reasons(bids)[C] == "same price as bid #1, which came first"


def test_a_cheaper_bid_from_a_provider_that_is_no_longer_active_loses() -> None:
    bids = [OrderBid(0, A, 100), OrderBid(1, B, 700)]
    facts = {A: ProviderFacts(active=False, tier=1), B: ACTIVE}
    selection = select_bid(bids, max_price=MAX_PRICE, tiers=ANY_TIER, providers=facts)
    assert selection.winner == bids[1]
    assert "not Active" in _reasons(bids, providers=facts)[A]


def test_a_bid_above_the_max_price_loses_however_cheap_the_rest() -> None:
    bids = [OrderBid(0, A, MAX_PRICE + 1), OrderBid(1, B, MAX_PRICE)]
    selection = select_bid(bids, max_price=MAX_PRICE, tiers=ANY_TIER, providers=FACTS)
    assert selection.winner == bids[1]
    assert _reasons(bids)[A] == "the bid 1001 per block exceeds the order's max price 1000"


def test_the_order_s_trust_tiers_are_respected() -> None:
    bids = [OrderBid(0, A, 100), OrderBid(1, B, 500)]
    facts = {A: ProviderFacts(active=True, tier=5), B: ProviderFacts(active=True, tier=2)}
    selection = select_bid(bids, max_price=MAX_PRICE, tiers={1, 2, 3}, providers=facts)
    assert selection.winner == bids[1]
    assert _reasons(bids, tiers={1, 2, 3}, providers=facts)[A] == (
        "the provider's trust tier 5 is not one the order accepts (1, 2, 3)"
    )


@pytest.mark.parametrize(
    ("bid", "facts", "reason"),
    [
        (OrderBid(0, A, 100, BidState.REJECTED), FACTS, "the bid is already rejected"),
        (OrderBid(0, A, 100, BidState.ACCEPTED), FACTS, "the bid is already accepted"),
        (OrderBid(0, A, 0), FACTS, "the bid price is zero"),
        (OrderBid(0, A, 100), {}, "the provider is not in the provider registry"),
    ],
)
def test_bids_that_cannot_be_matched(
    bid: OrderBid, facts: dict[str, ProviderFacts], reason: str
) -> None:
    selection = select_bid([bid], max_price=MAX_PRICE, tiers=ANY_TIER, providers=facts)
    assert selection.winner is None
    assert [(r.bid, r.reason) for r in selection.rejected] == [(bid, reason)]


def test_no_bids_no_winner() -> None:
    selection = select_bid([], max_price=MAX_PRICE, tiers=ANY_TIER, providers=FACTS)
    assert (selection.winner, selection.rejected) == (None, ())


def test_the_winner_may_bid_exactly_the_max_price() -> None:
    bids = [OrderBid(0, A, MAX_PRICE)]
    assert select_bid(bids, max_price=MAX_PRICE, tiers=ANY_TIER, providers=FACTS).winner == bids[0]
