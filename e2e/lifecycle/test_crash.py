"""Crash safety: `gpu-provider run` is SIGKILLed at random points while the tenant orders, and
restarted each time. The chain shows no order with two bids of ours and no transaction of
ours sent twice (same contract, same calldata); the cluster shows every lease matched to us
as a GpuLease.

`LIFECYCLE_CRASH_ORDERS` orders (10 in `make test`, 50 in `make soak`); the random seed is
printed so a failure can be replayed (`LIFECYCLE_CRASH_SEED`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from typing import Any

import pytest
from kubernetes import client

from e2e.lifecycle.conftest import (
    Market,
    Operators,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    until,
)
from e2e.operator.conftest import Chain, OperatorProcess
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.market.advertise import ProviderStatus

PROVIDER = "crash-provider"
ORDERS = int(os.environ.get("LIFECYCLE_CRASH_ORDERS", "10"))
SEED = int(os.environ.get("LIFECYCLE_CRASH_SEED", str(int(time.time()))))


async def _active(market: Market, chain: Chain) -> None:
    contracts = Contracts(market.devnet.w3, chain.state.chain_settings().contracts)
    deadline = time.monotonic() + 120
    while (await read_provider(contracts, chain.provider)).status is not ProviderStatus.ACTIVE:
        assert time.monotonic() < deadline, "the provider registered and approved"
        await asyncio.sleep(0.5)


def _leading(operator: OperatorProcess) -> bool:
    assert operator.process.poll() is None, operator.log()[-3000:]
    try:
        return operator.metric("gpu_provider_leader") == 1
    except OSError:  # not serving /metrics yet
        return False


async def test_sigkill_at_random_points_loses_no_lease_and_sends_nothing_twice(
    operators: Operators,
    market: Market,
    chain: Chain,
    kwok_cluster: Any,
    api_client: client.ApiClient,
) -> None:
    rng = random.Random(SEED)
    print(f"crash test: {ORDERS} orders, seed {SEED}")
    operator = operators.start()
    # Short leases so that GPUs come back for the later orders. Withdrawals stay at the default
    # threshold (none here): leases of one price and length earn identical amounts, so two
    # honest withdrawals can carry the same calldata (their idempotency is e2e/leases').
    provider = lifecycle_provider(PROVIDER)
    for token in provider["spec"]["acceptedTokens"]:
        token["withdrawThreshold"] = "10"
    operators.apply(provider)
    await _active(market, chain)
    first_block = await market.devnet.head()
    placed = []
    kills = 0
    for n in range(ORDERS):
        model = "h100" if n % 2 == 0 else "a100-80g"
        placed.append(await market.tenant.create_order(gpu_order(1, model, seconds=30)))
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        if rng.random() < 0.35:
            operator.stop(signal.SIGKILL, timeout=10)
            kills += 1
            operator = operators.start()
            # The next orders meet a leading operator again (the old Lease runs out first).
            await until(lambda op=operator: _leading(op), "the restarted operator leading")
    print(f"crash test: {kills} SIGKILLs")
    bid = market.devnet.contract("Bid")
    lease = market.devnet.contract("ComputeLease")
    window = int(await bid.functions.bidWindow().call())
    last = placed[-1].block + window + 2
    for _ in range(600):  # the matchmaker decides each order once its window has passed
        if await market.devnet.head() >= last:
            break
        await asyncio.sleep(0.5)

    # Every lease matched to us has its GpuLease (closed ones included: taken in first).
    _active_ids, all_ids = await lease.functions.getProviderLeases(chain.provider).call()
    ours = {int(i) for i in all_ids}
    assert ours, "no order was matched to us: the test shows nothing"
    missing = await until(
        lambda: not (ours - set(gpuleases(api_client, PROVIDER))) or None,
        f"a GpuLease for each of our {len(ours)} leases",
        within=90,
    )
    assert missing

    # One bid per order, ever.
    for order in placed:
        found = await bid.functions.getAllBidsForOrder(order.order_id).call()
        mine = [b for b in found if str(b[1]).lower() == chain.provider.lower()]
        assert len(mine) <= 1, f"order {order.order_id}: {len(mine)} bids of ours"

    # No transaction sent twice. Offer updates may legitimately repeat (A -> B -> A), so
    # only the marketplace's one-shot calls are compared: bids and closes.
    once = {str(market.devnet.state.address(name)).lower() for name in ("Bid", "ComputeLease")}
    sent = await asyncio.to_thread(chain.transactions_from, None)
    repeated = [
        (to, data) for (to, data), n in Counter(sent).items() if n > 1 and to.lower() in once
    ]
    assert not repeated, repeated
    first = [t for t in sent if t[0].lower() in once]
    print(
        f"crash test: {len(placed)} orders from block {first_block}, {len(ours)} leases, "
        f"{len(first)} marketplace transactions, {kills} kills"
    )


pytestmark = pytest.mark.e2e
