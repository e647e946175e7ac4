"""RPC failover: the chain id is checked before an endpoint is used, requests move to the
next endpoint when one stops answering, and RPC URLs (which carry API keys) stay redacted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import AsyncWeb3

from e2e.chain_client.conftest import CHAIN_ID, Devchain, RpcProxy, dev_address, eventually
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import ChainIdMismatch, ContractNotConfigured, RpcUnavailable
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.rpc import FailoverProvider, connect
from gpu_provider.config import ChainSettings, ContractAddresses
from gpu_provider.devnet.anvil import Anvil, free_port


@pytest.fixture
def other_chain() -> Iterator[Anvil]:
    with Anvil(block_time=None, chain_id=84532) as anvil:
        yield anvil


def settings(*urls: str, chain_id: int = CHAIN_ID, **contracts: Any) -> ChainSettings:
    return ChainSettings(
        chain_id=chain_id, rpc_urls=list(urls), contracts=ContractAddresses(**contracts)
    )


async def test_connect_checks_the_chain_and_binds_contracts(
    devchain: Devchain, node: Anvil
) -> None:
    w3 = await connect(settings(node.url))
    try:
        assert await w3.eth.chain_id == CHAIN_ID
        token = Contracts(w3, ContractAddresses()).token(devchain.token)
        assert await token.functions.balanceOf(dev_address(9)).call() == 0
        assert await token.functions.symbol().call() == "TUSD"
    finally:
        await w3.provider.disconnect()


async def test_an_endpoint_on_another_chain_fails_connect_with_a_clear_error(
    node: Anvil, other_chain: Anvil
) -> None:
    behind_key = RpcProxy(other_chain.url)  # its URL has an API key in the path
    await behind_key.start()
    try:
        with pytest.raises(ChainIdMismatch) as caught:
            await connect(settings(node.url, behind_key.url))
    finally:
        await behind_key.close()

    message = str(caught.value)
    assert f"http://127.0.0.1:{behind_key.port} serves chain id 84532" in message
    assert "chain.chain_id is 31337" in message
    assert "secret-api-key" not in message


async def test_an_endpoint_on_another_chain_is_skipped_at_runtime(
    node: Anvil, other_chain: Anvil
) -> None:
    provider = FailoverProvider([other_chain.url, node.url], chain_id=CHAIN_ID)
    try:
        assert await Rpc(provider).chain_id() == CHAIN_ID
        assert provider.active_endpoint == node.url
    finally:
        await provider.disconnect()


async def test_http_errors_fail_over(node: Anvil, proxy: RpcProxy) -> None:
    proxy_label = f"http://127.0.0.1:{proxy.port}"
    provider = FailoverProvider([proxy.url, node.url], chain_id=CHAIN_ID, retry_preferred_after=60)
    rpc = Rpc(provider)
    try:
        await rpc.block_number()
        assert provider.active_endpoint == proxy_label

        proxy.http_status = 502
        await rpc.block_number()
        assert provider.active_endpoint == node.url
    finally:
        await provider.disconnect()


async def test_a_rate_limited_endpoint_is_not_failed_over_for_long(
    node: Anvil, proxy: RpcProxy
) -> None:
    """A 429 without Retry-After leaves the preferred endpoint alone for a second, not for
    `retry_preferred_after`: it was never dead."""
    proxy_label = f"http://127.0.0.1:{proxy.port}"
    provider = FailoverProvider([proxy.url, node.url], chain_id=CHAIN_ID, retry_preferred_after=60)
    rpc = Rpc(provider)
    try:
        await rpc.block_number()
        proxy.http_status = 429
        await rpc.block_number()
        assert provider.active_endpoint == node.url
        proxy.http_status = None

        async def back_on_the_proxy() -> bool:
            await rpc.block_number()
            return provider.active_endpoint == proxy_label

        await eventually(back_on_the_proxy, within=10)
    finally:
        await provider.disconnect()


async def test_when_no_endpoint_answers_the_error_names_them_redacted(node: Anvil) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v3/secret-api-key?token=also-secret"
    provider = FailoverProvider([dead], chain_id=CHAIN_ID)
    try:
        with pytest.raises(RpcUnavailable) as caught:
            await Rpc(provider).block_number()
        assert "no RPC endpoint answered" in str(caught.value)
        assert "secret" not in str(caught.value)
        assert not await provider.is_connected()
    finally:
        await provider.disconnect()


def test_websocket_urls_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="websocket endpoints are not supported"):
        FailoverProvider(["wss://example.invalid/v1/key"])


async def test_an_unconfigured_contract_says_which_setting_to_fill(node: Anvil) -> None:
    provider = FailoverProvider([node.url], chain_id=CHAIN_ID)
    try:
        contracts = Contracts(AsyncWeb3(provider), ContractAddresses())
        with pytest.raises(ContractNotConfigured, match=r"chain\.contracts\.bid is not set"):
            _ = contracts.bid
    finally:
        await provider.disconnect()
