"""Deleting a ProviderNode with a live lease: what a provider and its tenant would notice.

Before this existed, the deletion let the garbage collector take the GpuLeases and their
namespaces while the leases stayed active on chain (the tenant paying for a workload that was
gone) and the offer stayed advertised. Now the operator closes the lease on chain first
(reason `ProviderNodeDeleted`), puts the provider in Maintenance with nothing offered,
withdraws the earnings, and only then lets the ProviderNode go.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from e2e.lifecycle.conftest import (
    Market,
    Operators,
    call,
    gpu_order,
    gpuleases,
    lifecycle_provider,
    start_serving,
    until,
)
from e2e.operator.conftest import PN_GROUP, PN_PLURAL, PN_VERSION, Chain, OperatorProcess
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.registry import read_provider
from gpu_provider.market.advertise import ProviderStatus

NAME = "retiring-provider"


@pytest.fixture(scope="module")
async def operator(
    operators: Operators, chain: Chain, market: Market, custom: client.CustomObjectsApi
) -> OperatorProcess:
    body = lifecycle_provider(NAME)
    # No withdrawal before the deletion (so the one after it is the decommission's), and no
    # manifest deadline closing the lease first.
    for token in body["spec"]["acceptedTokens"]:
        token["withdrawThreshold"] = "1000000"
    body["spec"]["leaseDefaults"]["manifestDeadlineSeconds"] = 3600
    return await start_serving(operators, chain, market, custom, body)


def _gone(custom: client.CustomObjectsApi) -> bool:
    try:
        custom.get_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, NAME)
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


async def test_deleting_a_provider_node_closes_its_leases_withdraws_the_offer_and_earnings(
    operator: OperatorProcess,
    market: Market,
    chain: Chain,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
) -> None:
    placed = await market.tenant.create_order(gpu_order(1, "h100", seconds=60 * 60))
    lease_id = placed.order_id
    await until(
        lambda: (gpuleases(api_client, NAME).get(lease_id) or {}).get("status", {}).get("phase"),
        "the matched order's GpuLease",
        within=90,
    )
    assert (await market.tenant.lease(lease_id)).state == "ACTIVE"
    token = chain.state.payment_token

    custom.delete_cluster_custom_object(PN_GROUP, PN_VERSION, PN_PLURAL, NAME)

    # While it is held by the finalizer, its lease is closed for that reason.
    closing = await until(
        lambda: (
            (gpuleases(api_client, NAME).get(lease_id) or {}).get("status", {}).get("closeReason")
        ),
        "the lease's close reason recorded",
        within=60,
    )
    assert closing == "ProviderNodeDeleted"
    await until(lambda: _gone(custom), "the ProviderNode gone once decommissioned", within=120)

    assert (await market.tenant.lease(lease_id)).state == "TERMINATED"
    closed = "gpu_provider_leases_closed_total"
    assert operator.metric(closed, reason="ProviderNodeDeleted", sent="true") == 1
    contracts = Contracts(market.devnet.w3, chain.state.chain_settings().contracts)
    after = await read_provider(contracts, chain.provider)
    assert after.registered  # the wallet's registration (its tier, its history) stays
    assert after.status is ProviderStatus.MAINTENANCE
    assert after.approved_units("GPU") == ()  # nothing offered any more
    assert after.pending_units("GPU") == ()
    earned, withdrawn, balance = (
        int(v)
        for v in await call(
            market, "EscrowProtocol", "providerEarnings", chain.provider, token
        ).call()
    )
    assert balance == 0
    assert withdrawn == earned > 0
    # Nothing of it is left in the cluster: the GpuLease went with its owner.
    await until(lambda: lease_id not in gpuleases(api_client, NAME), "the GpuLease gone")
