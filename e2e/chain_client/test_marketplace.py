"""The chain client against the devnet marketplace: bindings from the artifacts and the
configured addresses, a tenant's transactions through the manager, and the provider's view
of them through the event stream."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from e2e.chain_client.conftest import dev_address, dev_key, take
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import TransactionReverted
from gpu_provider.chain.events import Checkpoint, EventStream, arg_equals
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.rpc import connect
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ChainSettings, ContractAddresses
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.deploy import DevnetContracts, deploy_devnet

TENANT, OTHER_TENANT = 4, 6
FUNDS = 10**24
SPEC = (
    "{n:ml,s:[{n:py,r:{i:1,c:{u:4000},m:{u:17179869184},"
    "g:{u:1,a:[{k:vendor/nvidia/model/h100,v:true}]}},c:1}]}"
)


def settings_for(node: Anvil, devnet: DevnetContracts) -> ChainSettings:
    return ChainSettings(
        chain_id=devnet.chain_id,
        rpc_urls=[node.url],
        confirmations=0,
        poll_interval_seconds=0.05,
        contracts=ContractAddresses(
            token_registry=devnet.token_registry,
            escrow_user=devnet.escrow_user,
            escrow_protocol=devnet.escrow_protocol,
            provider_registry=devnet.provider_registry,
            provider_attribute_registry=devnet.provider_attribute_registry,
            order_request=devnet.order_request,
            bid=devnet.bid,
            compute_lease=devnet.compute_lease,
        ),
    )


@pytest.fixture
def devnet(node: Anvil) -> DevnetContracts:
    deployer = Account.from_key(dev_key(0))
    w3 = Web3(HTTPProvider(node.url))
    return deploy_devnet(
        w3, deployer, mint={dev_address(TENANT): FUNDS, dev_address(OTHER_TENANT): FUNDS}
    )


def order(token: str, max_price: int, blocks: int = 100) -> tuple[Any, ...]:
    # (maxPrice per block, numOfBlocks, token, spec, version, mode Provider, tiers [One])
    return (max_price, blocks, token, SPEC, 1, 1, [0])


async def test_tenant_orders_reach_the_provider_decoded(
    node: Anvil, devnet: DevnetContracts
) -> None:
    settings = settings_for(node, devnet)
    w3 = await connect(settings)
    try:
        contracts = Contracts(w3, settings.contracts)
        timings = TxTimings(
            poll_interval=0.05, replace_after=30, receipt_timeout=30, confirmations=0
        )
        tenants = {
            index: TxManager.from_settings(
                w3,
                settings,
                Wallet.from_private_key(dev_key(index)),
                InMemoryIntentStore(),
                timings=timings,
                error_abis=contracts.error_abis(),
            )
            for index in (TENANT, OTHER_TENANT)
        }
        token = contracts.token(devnet.test_token)
        for index, txs in tenants.items():
            await txs.send("approve", TxRequest.call(token, "approve", devnet.escrow_user, FUNDS))
            await txs.send(
                "deposit",
                TxRequest.call(contracts.escrow_user, "deposit", devnet.test_token, FUNDS),
            )
            await txs.send(
                "order-1",
                TxRequest.call(
                    contracts.order_request, "createOrder", order(devnet.test_token, 10**15 + index)
                ),
            )

        with pytest.raises(TransactionReverted) as caught:
            await tenants[TENANT].send(
                "too-big",
                TxRequest.call(
                    contracts.order_request, "createOrder", order(devnet.test_token, FUNDS)
                ),
            )
        assert caught.value.error_name == "InsufficientBalance"

        stream = EventStream.from_settings(
            w3,
            settings,
            [
                contracts.event_source(
                    "OrderRequest",
                    ["OrderCreated"],
                    where={"OrderCreated": arg_equals("creator", dev_address(TENANT))},
                )
            ],
            Checkpoint.start_at(devnet.deploy_block),
        )
        (delivery,) = await take(stream, 1)
        event = delivery.event
        assert event is not None
        assert event.name == "OrderCreated"
        assert event.args["creator"] == dev_address(TENANT)
        assert event.args["specs"] == SPEC
        assert event.args["maxPrice"] == 10**15 + TENANT
        assert event.args["token"] == devnet.test_token
        assert event.address.lower() == devnet.order_request.lower()
        assert await contracts.order_request.functions.nextOrderId().call() > event.args["orderId"]
    finally:
        await w3.provider.disconnect()
