"""A tenant orders GPUs from YAML, the matchmaker picks the cheapest eligible bid, the tenant
uploads its manifest to the provider with a signed header, watches the lease and closes it.

Providers register and bid through the contracts directly (the operator's chain daemon does
that in production); everything the tenant and the matchmaker do goes through the devnet
tooling, which talks to the chain through the operator's chain client. Every balance is checked
to the wei. The manifest upload is in test_manifest_upload.py.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from e2e.chain.conftest import FUNDS, STATUS_MAINTENANCE, TOKEN, Market
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.matchmaker import Matchmaker
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.devnet.session import DevnetChain, open_devnet
from gpu_provider.devnet.state import DevnetState
from gpu_provider.devnet.tenant import Balances, Tenant
from gpu_provider.market import decode

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "manifests/examples"
DEPOSIT = Decimal(10)
# The example order: 1 h (1800 blocks at the SDK's 2 s) for at most 4 USD/h.
BLOCKS = 1800
MAX_PRICE = 4 * TOKEN // 1800
CHEAP, FAIR, DEAR = MAX_PRICE // 4, MAX_PRICE // 2, MAX_PRICE * 3 // 4
# The contract's refusal to close a lease twice: Spheron's custom error, in words.
TERMINATED = r"the lease is already closed \(LeaseAlreadyTerminated\)"


def _example_order() -> Any:
    return parse_order_yaml((EXAMPLES / "order.yaml").read_text(), "order.yaml")


def _tenant(market: Market, devnet: DevnetChain) -> Tenant:
    return Tenant(chain=devnet, account=market.people.tenant)


def _active_provider(market: Market, who: Any, tier: int = 1) -> None:
    """Registered, Active, and in `tier` (the example order accepts the secured tiers 1-3)."""
    market.register_provider(who)
    market.activate(who)
    call = market.providers.functions.updateProviderTier(who.address, tier - 1)
    market.send(call, market.people.deployer)


def _close_window(market: Market, order_id: int) -> None:
    """Mine until the order's last bidding block is mined."""
    created = market.orders.functions.orderCreatedBlock(order_id).call()
    window = market.bids.functions.bidWindow().call()
    if market.block() < created + window:
        market.mine(created + window - market.block())


async def test_tenant_order_from_yaml_is_matched_to_the_cheapest_active_bid_and_paid_to_the_wei(
    market: Market,
    devnet: DevnetChain,
    devnet_state: DevnetState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    people = market.people
    tenant = _tenant(market, devnet)
    for provider in (people.provider, people.other_provider, people.stranger):
        _active_provider(market, provider)

    # The tenant funds escrow and orders what manifests/examples/order.yaml describes.
    assert await tenant.deposit(DEPOSIT) == Balances(
        wallet=FUNDS - 10 * TOKEN, locked=0, unlocked=10 * TOKEN
    )
    order = _example_order()
    placed = await tenant.create_order(order)
    assert (placed.terms.num_blocks, placed.terms.max_price_per_block) == (BLOCKS, MAX_PRICE)
    on_chain = market.orders.functions.getOrderById(placed.order_id).call()
    assert (on_chain[1], on_chain[2], on_chain[4]) == (MAX_PRICE, BLOCKS, people.tenant.address)
    assert decode(on_chain[6][0]) == order.spec
    assert on_chain[6][3] == [0, 1, 2]  # tiers: secured
    assert (await tenant.balances()) == Balances(
        wallet=FUNDS - 10 * TOKEN,
        locked=MAX_PRICE * BLOCKS,
        unlocked=10 * TOKEN - MAX_PRICE * BLOCKS,
    )

    # Three active providers bid; the cheapest then goes into maintenance before the match.
    market.bid(people.provider, placed.order_id, CHEAP)
    market.bid(people.stranger, placed.order_id, DEAR)
    market.bid(people.other_provider, placed.order_id, FAIR)
    market.send(
        market.providers.functions.setProviderStatus(people.provider.address, STATUS_MAINTENANCE),
        people.provider,
    )

    matchmaker = Matchmaker(chain=devnet, account=people.matchmaker)
    caplog.set_level(logging.INFO, logger="gpu_provider.devnet")
    # The window is still open: the matchmaker waits for later bids.
    assert await matchmaker.poll_once() == []
    assert matchmaker.pending_orders == (placed.order_id,)
    assert market.order_state(placed.order_id) == 0

    _close_window(market, placed.order_id)
    (decision,) = await matchmaker.poll_once()
    assert decision.matched
    assert decision.lease_id == placed.order_id
    assert decision.selection.winner is not None
    assert (decision.selection.winner.provider, decision.selection.winner.price) == (
        people.other_provider.address,
        FAIR,
    )
    reasons = {r.bid.provider: r.reason for r in decision.selection.rejected}
    assert "not Active" in reasons[people.provider.address]
    assert reasons[people.stranger.address].startswith("outbid")
    log = caplog.text
    assert f"bid #0 by {people.provider.address} at {CHEAP} per block rejected" in log
    assert f"order {placed.order_id} matched to {people.other_provider.address}" in log
    assert not matchmaker.pending_orders
    assert await matchmaker.poll_once() == []  # nothing is matched twice

    # The tenant sees the lease: same id as the order, the fair provider, its bid price.
    lease = await tenant.wait_for_lease(placed.order_id, within=5)
    assert (lease.lease_id, lease.state, lease.provider, lease.tenant) == (
        placed.order_id,
        "ACTIVE",
        people.other_provider.address,
        people.tenant.address,
    )
    assert (lease.accepted_price, lease.num_blocks) == (FAIR, BLOCKS)
    assert lease.usd_per_hour == Decimal(FAIR * 1800) / TOKEN
    assert lease.provider_host_uri == "provider.devnet.example"
    assert (await tenant.balances()).locked == FAIR * BLOCKS

    # 12 blocks later the tenant closes it and pays for exactly the blocks it ran.
    market.mine(12)
    closed = await tenant.close(placed.order_id)
    paid = FAIR * (closed.block - lease.start_block)
    assert closed.paid == paid == FAIR * 13
    assert closed.balances == Balances(
        wallet=FUNDS - 10 * TOKEN, locked=0, unlocked=10 * TOKEN - paid
    )
    assert (await tenant.lease(placed.order_id)).state == "TERMINATED"
    assert market.order_state(placed.order_id) == 2
    assert market.earnings_of(people.other_provider) == (paid, 0, paid)
    assert market.earnings_of(people.provider) == (0, 0, 0)
    assert market.earnings_of(people.stranger) == (0, 0, 0)
    # Closing again in the same session is the same intent: its result, nothing sent twice.
    again = await tenant.close(placed.order_id)
    assert (again.block, again.paid) == (closed.block, closed.paid)
    # A new session (another run of the CLI) asks the contract, which refuses.
    async with await open_devnet(devnet_state) as later:
        with pytest.raises(DevnetError, match=rf"closing lease \d+ was refused: {TERMINATED}"):
            await Tenant(chain=later, account=people.tenant).close(placed.order_id)


async def test_eager_matchmaker_matches_on_the_first_eligible_bid(
    market: Market, devnet: DevnetChain
) -> None:
    tenant = _tenant(market, devnet)
    await tenant.deposit(DEPOSIT)
    placed = await tenant.create_order(_example_order())
    matchmaker = Matchmaker(chain=devnet, account=market.people.matchmaker, eager=True)
    assert await matchmaker.poll_once() == []  # no bid yet
    _active_provider(market, market.people.provider)
    market.bid(market.people.provider, placed.order_id, DEAR)
    (decision,) = await matchmaker.poll_once()
    assert decision.matched
    created = market.orders.functions.orderCreatedBlock(placed.order_id).call()
    assert market.block() <= created + market.bids.functions.bidWindow().call()
    assert market.lease(placed.order_id)["acceptedPrice"] == DEAR


async def test_an_order_nobody_eligible_bid_on_stays_open_for_the_tenant_to_cancel(
    market: Market, devnet: DevnetChain
) -> None:
    tenant = _tenant(market, devnet)
    await tenant.deposit(DEPOSIT)
    placed = await tenant.create_order(_example_order())
    _active_provider(market, market.people.provider)
    market.bid(market.people.provider, placed.order_id, CHEAP)
    market.send(
        market.providers.functions.setProviderStatus(
            market.people.provider.address, STATUS_MAINTENANCE
        ),
        market.people.provider,
    )
    matchmaker = Matchmaker(chain=devnet, account=market.people.matchmaker)
    _close_window(market, placed.order_id)
    (decision,) = await matchmaker.poll_once()
    assert not decision.matched
    assert decision.selection.winner is None
    assert matchmaker.pending_orders == ()
    assert await tenant.order_state(placed.order_id) == "OPEN"
    with pytest.raises(
        DevnetError, match="no lease after 0 s: is `gpu-provider devnet matchmaker`"
    ):
        await tenant.wait_for_lease(placed.order_id, within=0)
    assert (await tenant.cancel(placed.order_id)).unlocked == 10 * TOKEN
    with pytest.raises(DevnetError, match="is closed: it will not get a lease"):
        await tenant.wait_for_lease(placed.order_id, within=0)


async def test_a_matchmaker_started_late_finds_every_order_through_bounded_log_ranges(
    market: Market, devnet: DevnetChain
) -> None:
    tenant = _tenant(market, devnet)
    await tenant.deposit(DEPOSIT)
    _active_provider(market, market.people.provider)
    orders = []
    for _ in range(3):
        placed = await tenant.create_order(
            parse_order_yaml(
                (EXAMPLES / "order.yaml").read_text().replace('"4.00"', '"0.5"'), "order.yaml"
            )
        )
        market.bid(market.people.provider, placed.order_id, placed.terms.max_price_per_block)
        market.mine(3)
        orders.append(placed.order_id)
    _close_window(market, orders[-1])
    matchmaker = Matchmaker(chain=devnet, account=market.people.matchmaker, log_range=2)
    head = market.block()
    decisions = await matchmaker.poll_once()
    assert [d.order_id for d in decisions if d.matched] == orders
    assert matchmaker.checkpoint == head + 1


async def test_tenant_cannot_overspend_its_escrow(market: Market, devnet: DevnetChain) -> None:
    tenant = _tenant(market, devnet)
    await tenant.deposit(Decimal("1.5"))
    with pytest.raises(
        DevnetError,
        match=r"locks 3\.9+6 USDT .* only 1\.5 USDT is free: run "
        r"`gpu-provider devnet tenant deposit --amount 3`",
    ):
        await tenant.create_order(_example_order())
    assert (await tenant.balances()).locked == 0
