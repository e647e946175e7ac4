"""A tenant orders GPUs from YAML, the matchmaker picks the cheapest eligible bid, the tenant
uploads its manifest to the provider with a signed header, watches the lease and closes it.

Providers register and bid through the contracts directly (the operator's chain daemon does
that in production); everything the tenant and the matchmaker do goes through the devnet
tooling. Every balance is checked to the wei.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from e2e.chain.conftest import FUNDS, STATUS_MAINTENANCE, TOKEN, Market
from gpu_provider.devnet.client import DevnetClient
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.manifest import parse_manifest_yaml
from gpu_provider.devnet.matchmaker import Matchmaker
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.devnet.tenant import Balances, Tenant
from gpu_provider.market import decode
from gpu_provider.market.auth import AUTH_HEADER, AuthError, verify_auth_header

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "manifests/examples"
DEPOSIT = Decimal(10)
# The example order: 1 h (1800 blocks at the SDK's 2 s) for at most 4 USD/h.
BLOCKS = 1800
MAX_PRICE = 4 * TOKEN // 1800
CHEAP, FAIR, DEAR = MAX_PRICE // 4, MAX_PRICE // 2, MAX_PRICE * 3 // 4


def _example_order() -> Any:
    return parse_order_yaml((EXAMPLES / "order.yaml").read_text(), "order.yaml")


def _tenant(market: Market, devnet: DevnetClient) -> Tenant:
    return Tenant(client=devnet, account=market.people.tenant)


def _active_provider(market: Market, who: Any) -> None:
    market.register_provider(who)
    market.activate(who)


def _close_window(market: Market, order_id: int) -> None:
    """Mine until the order's last bidding block is mined."""
    created = market.orders.functions.orderCreatedBlock(order_id).call()
    window = market.bids.functions.bidWindow().call()
    if market.block() < created + window:
        market.mine(created + window - market.block())


def test_tenant_order_from_yaml_is_matched_to_the_cheapest_active_bid_and_paid_to_the_wei(
    market: Market, devnet: DevnetClient, caplog: pytest.LogCaptureFixture
) -> None:
    people = market.people
    tenant = _tenant(market, devnet)
    for provider in (people.provider, people.other_provider, people.stranger):
        _active_provider(market, provider)

    # The tenant funds escrow and orders what manifests/examples/order.yaml describes.
    assert tenant.deposit(DEPOSIT) == Balances(
        wallet=FUNDS - 10 * TOKEN, locked=0, unlocked=10 * TOKEN
    )
    order = _example_order()
    placed = tenant.create_order(order)
    assert (placed.terms.num_blocks, placed.terms.max_price_per_block) == (BLOCKS, MAX_PRICE)
    on_chain = market.orders.functions.getOrderById(placed.order_id).call()
    assert (on_chain[1], on_chain[2], on_chain[4]) == (MAX_PRICE, BLOCKS, people.tenant.address)
    assert decode(on_chain[6][0]) == order.spec
    assert on_chain[6][3] == [0, 1, 2]  # tiers: secured
    assert tenant.balances() == Balances(
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

    matchmaker = Matchmaker(client=devnet, account=people.matchmaker)
    caplog.set_level(logging.INFO, logger="gpu_provider.devnet")
    # The window is still open: the matchmaker waits for later bids.
    assert matchmaker.poll_once() == []
    assert matchmaker.pending_orders == (placed.order_id,)
    assert market.order_state(placed.order_id) == 0

    _close_window(market, placed.order_id)
    (decision,) = matchmaker.poll_once()
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
    assert matchmaker.poll_once() == []  # nothing is matched twice

    # The tenant sees the lease: same id as the order, the fair provider, its bid price.
    lease = tenant.wait_for_lease(placed.order_id, timeout=5)
    assert (lease.lease_id, lease.state, lease.provider, lease.tenant) == (
        placed.order_id,
        "ACTIVE",
        people.other_provider.address,
        people.tenant.address,
    )
    assert (lease.accepted_price, lease.num_blocks) == (FAIR, BLOCKS)
    assert lease.usd_per_hour == Decimal(FAIR * 1800) / TOKEN
    assert lease.provider_host_uri == "provider.devnet.example:8443"
    assert tenant.balances().locked == FAIR * BLOCKS

    # 12 blocks later the tenant closes it and pays for exactly the blocks it ran.
    market.mine(12)
    closed = tenant.close(placed.order_id)
    paid = FAIR * (closed.block - lease.start_block)
    assert closed.paid == paid == FAIR * 13
    assert closed.balances == Balances(
        wallet=FUNDS - 10 * TOKEN, locked=0, unlocked=10 * TOKEN - paid
    )
    assert tenant.lease(placed.order_id).state == "TERMINATED"
    assert market.order_state(placed.order_id) == 2
    assert market.earnings_of(people.other_provider) == (paid, 0, paid)
    assert market.earnings_of(people.provider) == (0, 0, 0)
    assert market.earnings_of(people.stranger) == (0, 0, 0)
    with pytest.raises(
        DevnetError, match=r"closing lease \d+ was refused: Lease already terminated"
    ):
        tenant.close(placed.order_id)


def test_eager_matchmaker_matches_on_the_first_eligible_bid(
    market: Market, devnet: DevnetClient
) -> None:
    tenant = _tenant(market, devnet)
    tenant.deposit(DEPOSIT)
    placed = tenant.create_order(_example_order())
    matchmaker = Matchmaker(client=devnet, account=market.people.matchmaker, eager=True)
    assert matchmaker.poll_once() == []  # no bid yet
    _active_provider(market, market.people.provider)
    market.bid(market.people.provider, placed.order_id, DEAR)
    (decision,) = matchmaker.poll_once()
    assert decision.matched
    created = market.orders.functions.orderCreatedBlock(placed.order_id).call()
    assert market.block() <= created + market.bids.functions.bidWindow().call()
    assert market.lease(placed.order_id)["acceptedPrice"] == DEAR


def test_an_order_nobody_eligible_bid_on_stays_open_for_the_tenant_to_cancel(
    market: Market, devnet: DevnetClient
) -> None:
    tenant = _tenant(market, devnet)
    tenant.deposit(DEPOSIT)
    placed = tenant.create_order(_example_order())
    _active_provider(market, market.people.provider)
    market.bid(market.people.provider, placed.order_id, CHEAP)
    market.send(
        market.providers.functions.setProviderStatus(
            market.people.provider.address, STATUS_MAINTENANCE
        ),
        market.people.provider,
    )
    matchmaker = Matchmaker(client=devnet, account=market.people.matchmaker)
    _close_window(market, placed.order_id)
    (decision,) = matchmaker.poll_once()
    assert not decision.matched
    assert decision.selection.winner is None
    assert matchmaker.pending_orders == ()
    assert tenant.order_state(placed.order_id) == "OPEN"
    with pytest.raises(
        DevnetError, match="no lease after 0 s: is `gpu-provider devnet matchmaker`"
    ):
        tenant.wait_for_lease(placed.order_id, timeout=0)
    assert tenant.cancel(placed.order_id).unlocked == 10 * TOKEN
    with pytest.raises(DevnetError, match="is closed: it will not get a lease"):
        tenant.wait_for_lease(placed.order_id, timeout=0)


def test_a_matchmaker_started_late_finds_every_order_through_bounded_log_ranges(
    market: Market, devnet: DevnetClient
) -> None:
    tenant = _tenant(market, devnet)
    tenant.deposit(DEPOSIT)
    _active_provider(market, market.people.provider)
    orders = []
    for _ in range(3):
        placed = tenant.create_order(
            parse_order_yaml(
                (EXAMPLES / "order.yaml").read_text().replace('"4.00"', '"0.5"'), "order.yaml"
            )
        )
        market.bid(market.people.provider, placed.order_id, placed.terms.max_price_per_block)
        market.mine(3)
        orders.append(placed.order_id)
    _close_window(market, orders[-1])
    matchmaker = Matchmaker(client=devnet, account=market.people.matchmaker, log_range=2)
    head = market.block()
    decisions = matchmaker.poll_once()
    assert [d.order_id for d in decisions if d.matched] == orders
    assert matchmaker.checkpoint == head + 1


def test_tenant_cannot_overspend_its_escrow(market: Market, devnet: DevnetClient) -> None:
    tenant = _tenant(market, devnet)
    tenant.deposit(Decimal("1.5"))
    with pytest.raises(
        DevnetError,
        match=r"locks 3\.9+6 USDT .* only 1\.5 USDT is free: run "
        r"`gpu-provider devnet tenant deposit --amount 3`",
    ):
        tenant.create_order(_example_order())
    assert tenant.balances().locked == 0


# --- the manifest upload, against a stand-in for the provider's gateway --------------------


@dataclass
class Gateway:
    url: str
    received: list[tuple[int, str, Any]] = field(default_factory=list)


@asynccontextmanager
async def _provider_gateway(market: Market) -> AsyncIterator[Gateway]:
    """An HTTP server that accepts a manifest only from the lease's tenant, as the gateway will."""
    gateway = Gateway(url="")

    async def manifest(request: web.Request) -> web.Response:
        lease_id = int(request.match_info["lease_id"])
        details = market.leases.functions.getLeaseDetails(lease_id)
        _, tenant, _ = await asyncio.to_thread(details.call)
        try:
            token = verify_auth_header(
                request.headers.get(AUTH_HEADER), now=int(time.time()), expected_signer=tenant
            )
        except AuthError as error:
            return web.json_response({"reason": error.reason, "message": str(error)}, status=401)
        gateway.received.append((lease_id, token.address, await request.json()))
        return web.json_response({"lease": lease_id, "status": "accepted"})

    app = web.Application()
    app.router.add_post("/deployment/{lease_id}/manifest", manifest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    gateway.url = f"http://{host}:{port}"
    try:
        yield gateway
    finally:
        await runner.cleanup()


async def test_manifest_reaches_the_provider_signed_by_the_lease_tenant(
    market: Market, devnet: DevnetClient
) -> None:
    people = market.people
    tenant = _tenant(market, devnet)
    tenant.deposit(DEPOSIT)
    placed = tenant.create_order(_example_order())
    _active_provider(market, people.provider)
    market.bid(people.provider, placed.order_id, FAIR)
    market.match(placed.order_id, people.provider, FAIR)
    manifest = parse_manifest_yaml((EXAMPLES / "manifest.yaml").read_text())

    async with _provider_gateway(market) as gateway:
        reply = await asyncio.to_thread(
            tenant.send_manifest, placed.order_id, manifest, provider_url=gateway.url
        )
        assert reply.status == 200
        assert reply.url == f"{gateway.url}/deployment/{placed.order_id}/manifest"
        assert '"accepted"' in reply.body
        assert gateway.received == [(placed.order_id, people.tenant.address, manifest)]

        # A token signed 60 s ago is refused by the provider, and the tool says why.
        stale = await asyncio.to_thread(
            lambda: _refusal(
                lambda: tenant.send_manifest(
                    placed.order_id,
                    manifest,
                    provider_url=gateway.url,
                    now=lambda: time.time() - 60,
                )
            )
        )
        assert "HTTP 401" in stale
        assert "Expired" in stale

        # Someone else's wallet is stopped before anything is sent.
        stranger = Tenant(client=devnet, account=people.stranger)
        wrong = await asyncio.to_thread(
            lambda: _refusal(
                lambda: stranger.send_manifest(placed.order_id, manifest, provider_url=gateway.url)
            )
        )
        assert f"belongs to {people.tenant.address}" in wrong

        # A manifest for other services is stopped too.
        other = [{"name": "llm", "services": [{"name": "web", "image": "nginx"}]}]
        mismatch = await asyncio.to_thread(
            lambda: _refusal(
                lambda: tenant.send_manifest(placed.order_id, other, provider_url=gateway.url)
            )
        )
        assert "are not the order's (ui, vllm)" in mismatch
        assert len(gateway.received) == 1

    # Nobody listens any more: a clear error, not a traceback.
    gone = _refusal(
        lambda: tenant.send_manifest(placed.order_id, manifest, provider_url=gateway.url)
    )
    assert gone.startswith("cannot reach the provider at http://127.0.0.1:")


def _refusal(action: Any) -> str:
    with pytest.raises(DevnetError) as refused:
        action()
    return str(refused.value)
