"""Deploying the devnet: every contract is live, wired to its peers, roles and token in place."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from e2e.chain.conftest import BID_WINDOW, FUNDS, Market, People
from gpu_provider.chain.artifacts import CONTRACT_NAMES, load_artifact
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.deploy import (
    MATCHMAKER_ROLE,
    REGISTRY_ADMIN_ROLE,
    VERIFIER_ROLE,
    DevnetContracts,
    TestTokenConfig,
    deploy_devnet,
)

pytestmark = pytest.mark.e2e


def test_deploy_wires_every_contract_and_funds_the_accounts(market: Market) -> None:
    deployed, w3 = market.addresses, market.w3
    for name, address in deployed.by_contract().items():
        assert Web3.is_checksum_address(address)
        assert w3.eth.get_code(address), f"{name} has no code"
    assert list(deployed.by_contract()) == list(CONTRACT_NAMES)
    escrow = market.escrow.functions
    assert escrow.orderRequest().call() == deployed.order_request
    assert escrow.computeLease().call() == deployed.compute_lease
    assert escrow.escrowProtocol().call() == deployed.escrow_protocol
    assert market.orders.functions.bid().call() == deployed.bid
    assert market.orders.functions.lease().call() == deployed.compute_lease
    assert market.leases.functions.bid().call() == deployed.bid
    assert market.protocol.functions.computeLease().call() == deployed.compute_lease
    assert market.bids.functions.bidWindow().call() == BID_WINDOW
    access = market.contract("AccessControlManager").functions
    people = market.people
    assert access.hasRole(MATCHMAKER_ROLE, people.matchmaker.address).call()
    assert access.hasRole(VERIFIER_ROLE, people.verifier.address).call()
    assert access.hasRole(REGISTRY_ADMIN_ROLE, people.deployer.address).call()
    assert not access.hasRole(MATCHMAKER_ROLE, people.stranger.address).call()
    registry = market.contract("TokenRegistry").functions
    assert registry.isAcceptedToken(deployed.test_token).call()
    assert registry.getTokenAddress("USDT").call() == deployed.test_token
    assert registry.getTokenDetails(deployed.test_token).call() == (
        "USDT",
        18,
        deployed.test_token,
        0,
        True,
    )
    assert market.tokens_of(people.tenant) == FUNDS
    assert market.tokens_of(people.provider) == FUNDS


def test_deploy_on_a_chain_with_block_time_takes_two_blocks(people: People) -> None:
    deployer: LocalAccount = people.deployer
    with Anvil(block_time=1.0) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        before = w3.eth.block_number
        deployed = deploy_devnet(
            w3,
            deployer,
            token=TestTokenConfig(name="Devnet USD Coin", symbol="USDC", decimals=6),
            mint={people.tenant.address: 5 * 10**6},
        )
        assert w3.eth.block_number - before <= 3
        assert deployed.deploy_block > before
        token = w3.eth.contract(address=deployed.test_token, abi=load_artifact("TestToken").abi)
        assert token.functions.symbol().call() == "USDC"
        assert token.functions.decimals().call() == 6
        assert token.functions.balanceOf(people.tenant.address).call() == 5 * 10**6
    # The addresses file round-trips (the devnet CLI writes it as JSON).
    assert DevnetContracts.model_validate_json(deployed.model_dump_json()) == deployed


def test_deploy_refuses_parameters_the_contracts_would_reject(w3: Web3, people: People) -> None:
    with pytest.raises(ValueError, match="protocol_fee_bps"):
        deploy_devnet(w3, people.deployer, protocol_fee_bps=1_001)
    with pytest.raises(ValueError, match="bid_window_blocks"):
        deploy_devnet(w3, people.deployer, bid_window_blocks=0)
    with pytest.raises(ValueError, match="min_order_blocks"):
        deploy_devnet(w3, people.deployer, min_order_blocks=10, max_order_blocks=5)
