"""A reorg within the confirmation depth during intake: a match mined and then rolled back
(anvil `evm_snapshot`/`evm_revert`) before it has `chain.confirmations` blocks on top never
becomes a GpuLease, and intake goes on past it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from e2e.lifecycle.conftest import (
    Market,
    Operators,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    metric,
    until,
)
from e2e.operator.conftest import Chain, provider_node

MATCH_BY_HAND = True
PROVIDER = "reorg-provider"
CONFIRMATIONS = 6


async def _rpc(market: Market, method: str, *params: Any) -> Any:
    reply = await market.devnet.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    return reply["result"]


async def test_a_match_rolled_back_within_the_confirmations_is_no_gpulease(
    operators: Operators,
    market: Market,
    chain: Chain,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
) -> None:
    operator = operators.start(confirmations=CONFIRMATIONS)
    operators.apply(lifecycle_provider(PROVIDER))
    await until(
        lambda: metric(operator, "gpu_provider_chain_head", provider=PROVIDER) > 0,
        "the chain daemon following the chain",
        within=120,
    )
    placed = await market.tenant.create_order(gpu_order(1, "h100"))
    bid = market.devnet.contract("Bid")
    window = int(await bid.functions.bidWindow().call())
    ours = chain.provider.lower()
    for _ in range(200):  # our bid mined, and the window over
        found = await bid.functions.getAllBidsForOrder(placed.order_id).call()
        mine = any(str(b[1]).lower() == ours for b in found)
        if mine and await market.devnet.head() > placed.block + window:
            break
        await asyncio.sleep(0.25)
    assert mine, "our bid on the order"

    snapshot = await _rpc(market, "evm_snapshot")
    (decision,) = [d for d in await market.matchmaker.poll_once() if d.order_id == placed.order_id]
    assert decision.matched, decision
    matched_at = await market.devnet.head()
    await asyncio.sleep(2)  # two blocks on top: fewer than the confirmations
    assert await market.devnet.head() < matched_at + CONFIRMATIONS
    assert await _rpc(market, "evm_revert", snapshot)
    state = int((await market.tenant.order(placed.order_id))[5])
    assert state == 0, "the match is gone with the reorg"

    # Well past the confirmation depth of the rolled-back match: no GpuLease for it.
    target = matched_at + CONFIRMATIONS + 3
    for _ in range(200):
        if await market.devnet.head() >= target:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(3)
    assert placed.order_id not in gpuleases(api_client, PROVIDER)

    # The intake stream went on past it (its checkpoint is beyond the rolled-back match).
    await until(
        lambda: (
            ((provider_node(custom, PROVIDER).get("status") or {}).get("chain") or {}).get(
                "lastProcessedBlock", 0
            )
            >= matched_at
        ),
        "intake past the block of the rolled-back match",
    )
    lease = market.devnet.contract("ComputeLease")
    _active, every = await lease.functions.getProviderLeases(chain.provider).call()
    assert list(every) == []
