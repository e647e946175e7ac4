"""Two providers compete for one order: two ProviderNodes (provider and provider-2, each with
its own wallet Secret) in one `gpu-provider run`, each with its own chain daemon. Both bid;
the matchmaker picks the cheaper; the winner takes the lease in, the loser counts the order
lost and releases the GPUs it held for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernetes import client

from e2e.harness.operator_setup import OPERATOR_NAMESPACE, WALLET_KEY
from e2e.harness.stack import apply_objects
from e2e.lifecycle.conftest import (
    Market,
    Operators,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    metric,
    until,
)
from e2e.operator.conftest import Chain
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.devnet.accounts import Role
from gpu_provider.market.advertise import ProviderStatus

FIRST, SECOND = "compete-provider", "compete-provider-2"
SECOND_SECRET = "provider-2-wallet"


def _second_wallet(chain: Chain) -> dict[str, Any]:
    key = "0x" + bytes(chain.state.signer(Role.PROVIDER_2).key).hex()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECOND_SECRET, "namespace": OPERATOR_NAMESPACE},
        "type": "Opaque",
        "stringData": {WALLET_KEY: key},
    }


def _priced(name: str, h100: str, **spec: Any) -> dict[str, Any]:
    body = lifecycle_provider(name, **spec)
    for price in body["spec"]["pricing"]["gpu"]:
        if price["model"] == "h100":
            price["usdPerHour"] = h100
    return body


async def _active(market: Market, chain: Chain, address: str) -> None:
    contracts = Contracts(market.devnet.w3, chain.state.chain_settings().contracts)
    deadline = time.monotonic() + 120
    while (await read_provider(contracts, address)).status is not ProviderStatus.ACTIVE:
        assert time.monotonic() < deadline, f"{address} registered and approved"
        await asyncio.sleep(0.5)


async def test_two_providers_compete_and_the_loser_releases_its_reservation(
    operators: Operators, market: Market, chain: Chain, api_client: client.ApiClient
) -> None:
    second_address = str(chain.state.account_address(Role.PROVIDER_2))
    apply_objects([_second_wallet(chain)], kubeconfig=operators.kubeconfig)
    operator = operators.start()
    operators.apply(_priced(FIRST, "2.49"))
    operators.apply(
        _priced(
            SECOND,
            "2.20",
            wallet={"secretName": SECOND_SECRET, "privateKeyKey": WALLET_KEY},
        )
    )
    await _active(market, chain, chain.provider)
    await _active(market, chain, second_address)
    await until(
        lambda: (
            metric(operator, "gpu_provider_chain_head", provider=SECOND) > 0
            and metric(operator, "gpu_provider_chain_head", provider=FIRST) > 0
        ),
        "both chain daemons following the chain",
    )
    placed = await market.tenant.create_order(gpu_order(1, "h100"))
    lease = await until(
        lambda: gpuleases(api_client, SECOND).get(placed.order_id),
        "the cheaper provider's GpuLease",
        within=90,
    )
    assert lease["spec"]["providerNode"] == SECOND
    assert placed.order_id not in gpuleases(api_client, FIRST)
    found = await market.devnet.contract("Bid").functions.getAllBidsForOrder(placed.order_id).call()
    assert sorted(str(b[1]) for b in found) == sorted([chain.provider, second_address])
    await until(
        lambda: operator.metric("gpu_provider_bids", provider=FIRST, outcome="lost") == 1,
        "the loser counting the order lost",
    )
    assert operator.metric("gpu_provider_reservations", provider=FIRST, kind="bid") == 0
    await until(
        lambda: operator.metric("gpu_provider_bids", provider=SECOND, outcome="won") == 1,
        "the winner counting the order won",
    )
