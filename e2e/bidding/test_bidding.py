"""The bid engine on the devnet: the tenant orders with the devnet tenant, the devnet
matchmaker matches, and the chain shows exactly the bids a provider should have placed.

Anvil mines one block per transaction, so "within the window" is checked by block number:
each order is decided while the head is still the order's own block, and its bid is mined in
the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from web3.types import RPCEndpoint

from e2e.bidding.conftest import DEPOSIT, REGION, Provider, until
from e2e.chain.conftest import BID_WINDOW, Market
from gpu_provider.chain.bidstream import bid_stream_start
from gpu_provider.devnet.matchmaker import Matchmaker
from gpu_provider.devnet.orderfile import TenantOrder, order_terms
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.devnet.tenant import PlacedOrder, Tenant
from gpu_provider.market import encode
from gpu_provider.market.bidding import Bid
from gpu_provider.market.eligibility import Skip, SkipReason
from gpu_provider.market.reservations import HoldState
from gpu_provider.market.spec import GpuModelRef, GpuRequest, OrderSpec, Placement, Service

GIB = 2**30
COMMUNITY = (4, 5, 6, 7)


def gpu_order(
    units: int,
    model: str,
    *,
    max_usd: str = "4",
    placement: Placement | None = None,
) -> TenantOrder:
    service = Service(
        name="py",
        resource_id=1,
        replicas=1,
        cpu_millicores=4000,
        memory_bytes=16 * GIB,
        gpu=GpuRequest(units=units, models=(GpuModelRef(vendor="nvidia", model=model),)),
    )
    spec = OrderSpec(name="ml", placement=placement or Placement(), services=(service,))
    return TenantOrder(
        spec=spec, duration_seconds=3600, max_usd_per_hour=Decimal(max_usd), tiers=COMMUNITY
    )


def bids_on(market: Market, order_id: int) -> list[tuple[str, int]]:
    """(provider, price) of every bid the chain holds for the order."""
    found = market.bids.functions.getAllBidsForOrder(order_id).call()
    return [(str(bid[1]), int(bid[2])) for bid in found]


def sent(market: Market, provider: Provider) -> int:
    return int(market.w3.eth.get_transaction_count(provider.account.address))


def close_window(market: Market, placed: PlacedOrder) -> None:
    last = placed.block + BID_WINDOW
    if market.block() < last:
        market.mine(last - market.block())


async def order_and_wait(tenant: Tenant, provider: Provider, order: TenantOrder) -> PlacedOrder:
    """The tenant orders; the engine decides (and, for a bid, its transaction is mined)."""
    placed = await tenant.create_order(order)
    engine = provider.engine
    assert engine is not None

    def decided() -> bool:
        outcome = engine.outcomes.get(placed.order_id)
        if outcome is None:
            return False
        return isinstance(outcome.decision, Skip) or outcome.tx is not None or bool(outcome.error)

    await until(decided, f"{provider.address} decides on order {placed.order_id}")
    return placed


async def test_servable_orders_are_bid_within_the_window_and_the_rest_skipped_with_reasons(
    market: Market, devnet: DevnetChain, providers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gpu_provider.chain.bidding")
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    engine = await provider.start(market.block() + 1)
    before = sent(market, provider)

    servable = {
        "h100": await order_and_wait(tenant, provider, gpu_order(1, "h100")),
        "a100": await order_and_wait(tenant, provider, gpu_order(2, "a100-80g")),
    }
    unservable = {
        SkipReason.UNKNOWN_GPU_MODEL: gpu_order(1, "h900"),
        SkipReason.NO_NODE_FITS: gpu_order(16, "h100", max_usd="100"),
        SkipReason.PRICE_BELOW_OURS: gpu_order(1, "h100", max_usd="2.50"),
        SkipReason.REGION_EXCLUDED: gpu_order(
            1, "h100", placement=Placement(region_exclude=("eu-west", REGION))
        ),
    }
    skipped = {
        reason: await order_and_wait(tenant, provider, order)
        for reason, order in unservable.items()
    }

    # Bids went exactly to the servable orders, one transaction each, in the next block.
    for placed in servable.values():
        outcome = engine.outcomes[placed.order_id]
        assert isinstance(outcome.decision, Bid)
        assert outcome.head == placed.block, "decided while the order's block was the head"
        assert outcome.tx is not None
        assert outcome.tx.block_number == placed.block + 1 <= placed.block + BID_WINDOW
        assert bids_on(market, placed.order_id) == [
            (provider.address, outcome.decision.price_per_block)
        ]
        assert outcome.decision.price_per_block <= placed.terms.max_price_per_block
    for reason, placed in skipped.items():
        outcome = engine.outcomes[placed.order_id]
        assert isinstance(outcome.decision, Skip)
        assert outcome.decision.reason is reason, outcome.decision.message
        assert bids_on(market, placed.order_id) == []
    assert sent(market, provider) == before + 2
    assert engine.skips == Counter(list(unservable))
    assert engine.placed == 2
    # 2.556 USD/h (H100 + 4 cores + 16 GiB) is above 2.50: skipped by 1 base unit or more.
    price_skip = engine.outcomes[skipped[SkipReason.PRICE_BELOW_OURS].order_id].decision
    assert isinstance(price_skip, Skip)
    assert "1420000000000000" in price_skip.message
    for reason in unservable:
        assert f"skip ({reason}): order {skipped[reason].order_id}: " in caplog.text

    # Both hold their GPUs until matched; the matchmaker matches both to us after the window.
    assert {r.order_id for r in engine.book} == {p.order_id for p in servable.values()}
    assert engine.book.capacity(provider.capacity).free_gpus("h100") == 15
    assert engine.book.capacity(provider.capacity).free_gpus("a100-80g") == 6
    matchmaker = Matchmaker(chain=devnet, account=market.people.matchmaker)
    close_window(market, skipped[SkipReason.REGION_EXCLUDED])
    decisions = await matchmaker.poll_once()
    matched = {d.order_id: d for d in decisions if d.matched}
    assert set(matched) == {p.order_id for p in servable.values()}
    await until(lambda: engine.won == 2, "the engine sees both matches")
    assert all(r.state is HoldState.LEASED for r in engine.book)
    lease = await tenant.lease(servable["h100"].order_id)
    assert lease.provider == provider.address


async def test_a_restarted_engine_does_not_bid_twice(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    start = market.block() + 1
    first = await provider.start(start)
    placed = await order_and_wait(tenant, provider, gpu_order(1, "h100"))
    assert first.placed == 1
    nonce = sent(market, provider)

    # A new process with the same journal replays the order inside its window: the key's
    # transaction is looked up, nothing is sent.
    again = await provider.start(start)
    await until(lambda: placed.order_id in again.outcomes and again.placed == 1, "replayed")
    assert market.block() < placed.block + BID_WINDOW
    assert sent(market, provider) == nonce
    assert len(bids_on(market, placed.order_id)) == 1
    assert placed.order_id in again.book

    # A process that lost its journal too: the contract says we bid already; still nothing sent.
    provider.store = type(provider.store)()
    lost = await provider.start(start)
    await until(lambda: lost.skips[SkipReason.ALREADY_BID] == 1, "ProviderHasActiveBid seen")
    assert sent(market, provider) == nonce
    assert lost.placed == 0
    assert placed.order_id in lost.book, "our bid may still win: its GPUs stay held"
    assert len(bids_on(market, placed.order_id)) == 1


async def test_an_order_seen_too_late_is_skipped_and_one_seen_in_time_is_bid(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    late = await tenant.create_order(gpu_order(1, "h100"))
    market.mine(BID_WINDOW - 1)
    just_in_time = await tenant.create_order(gpu_order(1, "h100"))
    # Head = late's last bidding block: a bid now would be mined after it.
    assert market.block() == late.block + BID_WINDOW
    nonce = sent(market, provider)
    engine = await provider.start(late.block)
    await until(lambda: engine.placed == 1, "the order still in its window is bid")
    outcome = engine.outcomes[late.order_id].decision
    assert isinstance(outcome, Skip)
    assert outcome.reason is SkipReason.BIDDING_CLOSED
    assert bids_on(market, late.order_id) == []
    assert len(bids_on(market, just_in_time.order_id)) == 1
    assert sent(market, provider) == nonce + 1


async def test_two_providers_compete_and_the_loser_releases_its_reservation(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    dear: Provider = await providers(market.people.provider, h100="2.50")
    cheap: Provider = await providers(market.people.other_provider, h100="2.00")
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    start = market.block() + 1
    dear_engine = await dear.start(start)
    cheap_engine = await cheap.start(start)
    placed = await tenant.create_order(gpu_order(8, "h100", max_usd="40"))
    await until(lambda: dear_engine.placed == 1 and cheap_engine.placed == 1, "both providers bid")
    assert {p for p, _ in bids_on(market, placed.order_id)} == {dear.address, cheap.address}
    for provider in (dear, cheap):
        engine = provider.engine
        assert engine is not None
        assert engine.book.capacity(provider.capacity).free_gpus("h100") == 8

    close_window(market, placed)
    (decision,) = await Matchmaker(chain=devnet, account=market.people.matchmaker).poll_once()
    assert decision.matched
    await until(lambda: dear_engine.lost == 1 and cheap_engine.won == 1, "the match is seen")
    assert placed.order_id not in dear_engine.book
    assert dear_engine.book.capacity(dear.capacity) == dear.capacity
    held = cheap_engine.book.get(placed.order_id)
    assert held is not None
    assert held.state is HoldState.LEASED
    assert held.placement.gpus == 8
    assert (dear_engine.won, cheap_engine.lost) == (0, 0)


async def test_a_restart_after_the_window_holds_the_gpus_of_our_pending_bid_again(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    first = await provider.start(market.block() + 1)
    placed = await order_and_wait(tenant, provider, gpu_order(8, "h100", max_usd="40"))
    assert first.placed == 1
    close_window(market, placed)
    market.mine(1)
    await provider.stop()

    # The new process starts where bid_stream_start says: one window and the grace back.
    restarted = await provider.start(bid_stream_start(market.block(), BID_WINDOW).block_number + 1)
    await until(lambda: placed.order_id in restarted.book, "the earlier bid's GPUs are held again")
    assert restarted.book.capacity(provider.capacity).free_gpus("h100") == 8
    assert restarted.skips == Counter(), "an order closed before the restart is not a skip"
    assert restarted.placed == 0

    (decision,) = await Matchmaker(chain=devnet, account=market.people.matchmaker).poll_once()
    assert decision.matched
    await until(lambda: restarted.won == 1, "the match after the restart is ours")
    held = restarted.book.get(placed.order_id)
    assert held is not None
    assert held.state is HoldState.LEASED


async def test_bidding_closed_from_the_contract_is_a_lost_window_and_sends_nothing(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    placed = await tenant.create_order(gpu_order(1, "h100"))
    close_window(market, placed)
    market.mine(1)
    nonce = sent(market, provider)
    # An engine that believes the window is longer than the chain's: the contract refuses.
    engine = await provider.start(placed.block, window=BID_WINDOW + 10)
    await until(lambda: engine.skips[SkipReason.BIDDING_CLOSED] == 1, "BiddingClosed seen")
    outcome = engine.outcomes[placed.order_id].decision
    assert isinstance(outcome, Skip)
    assert "bidding window for this order has closed" in outcome.message
    assert placed.order_id not in engine.book
    assert sent(market, provider) == nonce
    assert bids_on(market, placed.order_id) == []


async def test_an_order_the_tenant_cancels_releases_its_reservation(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    engine = await provider.start(market.block() + 1)
    placed = await order_and_wait(tenant, provider, gpu_order(8, "h100", max_usd="40"))
    assert placed.order_id in engine.book
    await tenant.cancel(placed.order_id)
    await until(lambda: placed.order_id not in engine.book, "the cancelled order's GPUs are free")
    assert engine.book.capacity(provider.capacity) == provider.capacity


async def test_a_burst_of_orders_in_one_block_is_bid_in_the_window_without_double_booking(
    market: Market, devnet: DevnetChain, providers: Any
) -> None:
    provider: Provider = await providers(market.people.provider)
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(DEPOSIT)
    engine = await provider.start(market.block() + 1)
    # 12 orders of 2 x H100 in one block: the cluster has 16 H100, so 8 get a bid.
    order = gpu_order(2, "h100", max_usd="10")
    terms = order_terms(order, devnet.state.token_terms())
    details = market.order_details(terms.max_price_per_block, terms.num_blocks, encode(order.spec))
    tiers = [t - 1 for t in COMMUNITY]
    rpc = market.w3.provider
    rpc.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        for _ in range(12):
            market.orders.functions.createOrder((*details[:6], tiers)).transact(
                {"from": market.people.tenant.address}
            )
        market.mine(1)
        created = market.block()
        # Blocks every half second from now on, so the bids share blocks as on a real chain.
        rpc.make_request(RPCEndpoint("evm_setIntervalMining"), [1])
        await until(lambda: len(engine.outcomes) == 12, "all 12 orders decided")
        await asyncio.wait_for(engine.drain(), 30)
    finally:
        rpc.make_request(RPCEndpoint("evm_setIntervalMining"), [0])
        rpc.make_request(RPCEndpoint("evm_setAutomine"), [True])
    bids = [o for o in engine.outcomes.values() if isinstance(o.decision, Bid)]
    assert len(bids) == engine.placed == 8
    assert engine.skips == Counter({SkipReason.NO_NODE_FITS: 4})
    assert all(o.tx is not None and o.tx.block_number <= created + BID_WINDOW for o in bids)
    assert engine.book.capacity(provider.capacity).free_gpus("h100") == 0
    per_node: Counter[str] = Counter()
    for held in engine.book:
        for node, use in held.placement.by_node().items():
            per_node[node] += use.gpus.get("h100", 0)
    assert per_node == Counter({"gpu-h100-0": 8, "gpu-h100-1": 8})
