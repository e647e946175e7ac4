"""RPC failover: the operator has two endpoints (two proxies in front of anvil, in
`chain.rpc_urls`) and the first one dies mid-run for good. The daemon goes on through the
second: the lease matched after the failover is taken in, the tenant's close is recorded,
and the GpuLeases are exactly the chain's leases of ours (no event missed, no phantom).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes import client

from e2e.chain_client.conftest import RpcProxy
from e2e.lifecycle.conftest import (
    Market,
    Operators,
    assert_caught_up,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    metric,
    until,
)
from e2e.operator.conftest import Chain

PROVIDER = "failover-provider"


@pytest.fixture
async def proxies(chain: Chain) -> AsyncIterator[tuple[RpcProxy, RpcProxy]]:
    first, second = RpcProxy(chain.anvil.url), RpcProxy(chain.anvil.url)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_the_operator_fails_over_to_the_second_rpc_and_misses_no_lease_event(
    operators: Operators,
    market: Market,
    chain: Chain,
    proxies: tuple[RpcProxy, RpcProxy],
    api_client: client.ApiClient,
) -> None:
    primary, secondary = proxies
    operator = operators.start(rpc_urls=[primary.url, secondary.url])
    operators.apply(lifecycle_provider(PROVIDER))
    await until(
        lambda: metric(operator, "gpu_provider_chain_head", provider=PROVIDER) > 0,
        "the chain daemon following the chain",
        within=120,
    )
    first = await market.tenant.create_order(gpu_order(1, "h100"))
    await until(
        lambda: gpuleases(api_client, PROVIDER).get(first.order_id), "the first GpuLease", within=90
    )

    await primary.stop()  # the first endpoint is gone for the rest of the test
    second = await market.tenant.create_order(gpu_order(1, "a100-80g"))
    await market.tenant.wait_for_lease(second.order_id)
    await market.tenant.close(first.order_id)

    # The second order was matched after the first endpoint died: taken in through the second.
    await assert_caught_up(api_client, market, chain, PROVIDER, second, first, "after the failover")
