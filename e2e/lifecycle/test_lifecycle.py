"""Orders to closed, paid leases through the real `gpu-provider run` on kwok and the devnet.

What a provider would check: the chain holds exactly the bids it should, /metrics counts every
skip by its reason, `kubectl get gl` shows the matched leases with their GPUs, each lease ends
for the reason the chain or the cluster shows, and the earnings land in the reward wallet's
account to the wei.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes import client

from e2e.lifecycle.conftest import (
    MANIFEST_DEADLINE,
    REGION,
    Market,
    Operators,
    call,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    provider_node,
    start_serving,
    until,
)
from e2e.operator.conftest import Chain, OperatorProcess
from gpu_provider.devnet.tenant import PlacedOrder
from gpu_provider.market.spec import Placement

NAME = "devnet-provider"


@pytest.fixture(scope="module")
async def operator(
    operators: Operators,
    chain: Chain,
    market: Market,
    custom: client.CustomObjectsApi,
    kwok_cluster: Any,
) -> OperatorProcess:
    return await start_serving(operators, chain, market, custom, lifecycle_provider(NAME))


@pytest.fixture(scope="module")
async def orders(operator: OperatorProcess, market: Market) -> dict[str, PlacedOrder]:
    """Two servable orders and four that nothing here can serve, in a row."""
    wanted = {
        "h100": gpu_order(1, "h100"),
        "a100": gpu_order(1, "a100-80g", seconds=60 * 60),
        "unknown_gpu_model": gpu_order(1, "h900"),
        "no_node_fits": gpu_order(16, "h100", max_usd="100"),
        "price_below_ours": gpu_order(1, "h100", max_usd="2.00"),
        "region_excluded": gpu_order(1, "h100", placement=Placement(region_exclude=(REGION,))),
    }
    return {what: await market.tenant.create_order(order) for what, order in wanted.items()}


def _with_phase(lease: dict[str, Any] | None) -> dict[str, Any] | None:
    return lease if lease and (lease.get("status") or {}).get("phase") else None


async def test_servable_orders_are_bid_matched_and_become_gpuleases_the_rest_skipped(
    operator: OperatorProcess,
    orders: dict[str, PlacedOrder],
    market: Market,
    chain: Chain,
    api_client: client.ApiClient,
) -> None:
    ours = chain.provider
    for what in ("h100", "a100"):
        order_id = orders[what].order_id
        # The GpuLease is created first and its status written right after: wait for both.
        lease = await until(
            lambda order_id=order_id: _with_phase(gpuleases(api_client).get(order_id)),
            f"the {what} order's GpuLease with its phase",
            within=90,
        )
        assert lease["status"]["phase"] == "AwaitingManifest"
        assert lease["spec"]["resources"]["totalGpus"] == 1
        assert lease["status"]["placement"]["gpus"] == 1
        assert await bids_on_chain(market, order_id) == [ours]
    for reason in ("unknown_gpu_model", "no_node_fits", "price_below_ours", "region_excluded"):
        order_id = orders[reason].order_id
        assert await bids_on_chain(market, order_id) == []
        assert operator.metric("gpu_provider_bid_skips", reason=reason) == 1, reason
    assert operator.metric("gpu_provider_bids", outcome="placed") == 2
    await until(lambda: operator.metric("gpu_provider_bids", outcome="won") == 2, "2 won")
    assert operator.metric("gpu_provider_lease_intake_seconds_count") == 2


async def bids_on_chain(market: Market, order_id: int) -> list[str]:
    """The providers with a bid on the order, as the chain holds them."""
    found = await call(market, "Bid", "getAllBidsForOrder", order_id).call()
    return [str(b[1]) for b in found]


async def test_a_lease_the_tenant_closes_becomes_closing_with_tenant_closed(
    orders: dict[str, PlacedOrder], market: Market, api_client: client.ApiClient
) -> None:
    lease_id = orders["h100"].order_id
    await market.tenant.close(lease_id)
    lease = await until(
        lambda: (
            gpuleases(api_client)[lease_id]["status"].get("closeReason")
            and gpuleases(api_client)[lease_id]
        ),
        "the tenant's close seen",
    )
    assert lease["status"]["closeReason"] == "TenantClosed"
    assert lease["status"]["phase"] in ("Closing", "Closed")


async def test_a_lease_out_of_blocks_is_closed_by_the_provider(
    operator: OperatorProcess, market: Market, api_client: client.ApiClient, chain: Chain
) -> None:
    placed = await market.tenant.create_order(gpu_order(1, "h100", seconds=15))
    lease_id = placed.order_id
    lease = await until(
        lambda: (
            (gpuleases(api_client).get(lease_id) or {}).get("status", {}).get("chainState")
            == "Terminated"
            and gpuleases(api_client)[lease_id]
        ),
        "the lease closed on chain once its blocks ran out",
        within=90,
    )
    assert lease["status"]["closeReason"] == "LeaseExpired"
    assert (await market.tenant.lease(lease_id)).state == "TERMINATED"
    assert (
        operator.metric("gpu_provider_leases_closed_total", reason="LeaseExpired", sent="true") == 1
    )


async def test_a_lease_without_a_manifest_by_the_deadline_is_closed_for_that_reason(
    orders: dict[str, PlacedOrder], api_client: client.ApiClient
) -> None:
    lease_id = orders["a100"].order_id
    lease = await until(
        lambda: (
            gpuleases(api_client)[lease_id]["status"].get("closeReason")
            and gpuleases(api_client)[lease_id]
        ),
        "the manifest deadline passed",
        within=MANIFEST_DEADLINE + 60,
    )
    assert lease["status"]["closeReason"] == "ManifestDeadlinePassed"


async def test_earnings_are_withdrawn_to_the_wei(
    operator: OperatorProcess, market: Market, chain: Chain, custom: client.CustomObjectsApi
) -> None:
    token = chain.state.payment_token

    async def chain_earnings() -> tuple[int, int, int]:
        e = await call(market, "EscrowProtocol", "providerEarnings", chain.provider, token).call()
        return int(e[0]), int(e[1]), int(e[2])

    deadline = time.monotonic() + 60
    earned, withdrawn, balance = await chain_earnings()
    while not (earned > 0 and balance == 0) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        earned, withdrawn, balance = await chain_earnings()
    assert balance == 0
    assert withdrawn == earned > 0
    entry = await until(
        lambda: next(
            (
                e
                for e in (provider_node(custom, NAME).get("status") or {}).get("earnings") or []
                if e.get("withdrawn") == str(withdrawn)
            ),
            None,
        ),
        "status.earnings showing the withdrawal",
    )
    assert entry["earned"] == str(earned)
    assert entry["balance"] == "0"
