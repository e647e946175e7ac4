"""Every refusal a provider or a tenant can meet on the devnet comes back as Spheron's custom
error, decoded by the chain client into its name and arguments.

Each test is one user's mistakes, in the order they would make them; every refused call
leaves the chain as it was (`Market.refused` checks that no block was mined).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3

from e2e.chain.conftest import (
    BID_WINDOW,
    SPEC,
    STATUS_ACTIVE,
    TIER_FOUR,
    TOKEN,
    Market,
)
from gpu_provider.chain.artifacts import load_artifact
from gpu_provider.chain.contract_errors import marketplace_errors
from gpu_provider.chain.contracts import Contracts, bind
from gpu_provider.chain.errors import ContractRevert, TransactionReverted
from gpu_provider.chain.intents import InMemoryIntentStore
from gpu_provider.chain.revert_sentences import sentence_for
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.config import ContractAddresses
from gpu_provider.devnet.anvil import Anvil
from gpu_provider.devnet.deploy import REGISTRY_ADMIN_ROLE

pytestmark = pytest.mark.e2e

DEPOSIT = 1_000 * TOKEN
MAX_PRICE = 3 * 10**15
BID_PRICE = 2 * 10**15
BLOCKS = 100
ZERO = "0x0000000000000000000000000000000000000000"
GPU = "GPU"


def _active_provider(market: Market, provider: LocalAccount | None = None) -> LocalAccount:
    provider = provider or market.people.provider
    market.register_provider(provider, reward_wallet=market.people.reward_wallet)
    market.activate(provider)
    return provider


def _open_order(market: Market, max_price: int = MAX_PRICE) -> int:
    market.deposit(market.people.tenant, DEPOSIT)
    return market.create_order(market.people.tenant, max_price, BLOCKS)


def _second_token(market: Market) -> str:
    """A second listed token that the provider does not accept, minted to the tenant."""
    deployer, tenant = market.people.deployer, market.people.tenant
    artifact = load_artifact("TestToken")
    factory = market.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor("Other", "OTH", 18, 0).transact({"from": deployer.address})
    address = market.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
    registry = market.contract("TokenRegistry")
    market.send(registry.functions.addToken(["OTH"], [address], [18], [0], [False]), deployer)
    other = market.w3.eth.contract(address=address, abi=artifact.abi)
    market.send(other.functions.mint(tenant.address, DEPOSIT), deployer)
    market.send(other.functions.approve(market.addresses.escrow_user, DEPOSIT), tenant)
    market.send(market.escrow.functions.deposit(address, DEPOSIT), tenant)
    return str(address)


# -- provider ------------------------------------------------------------------------------


def test_provider_registration_mistakes(market: Market) -> None:
    provider, registry = market.people.provider, market.providers
    token = market.addresses.test_token
    params = (provider.address, [token], "{}", "gpu.example.net", "cert", provider.address)

    market.refused(registry.functions.updateProviderHostUri("h"), provider, "ProviderNotFound")
    market.refused(
        registry.functions.setProviderStatus(provider.address, STATUS_ACTIVE),
        provider,
        "ProviderNotFound",
    )
    market.refused(
        registry.functions.addProvider(params), market.people.stranger, "UnauthorizedRegistration"
    )
    market.refused(registry.functions.addProvider((*params[:5], ZERO)), provider, "InvalidAddress")
    market.send(registry.functions.addProvider(params), provider)
    market.refused(registry.functions.addProvider(params), provider, "ProviderAlreadyRegistered")
    market.refused(registry.functions.addAcceptedPayment(token), provider, "TokenAlreadyAccepted")
    market.refused(
        registry.functions.addAcceptedPayment(market.addresses.bid), provider, "UnregisteredToken"
    )
    market.refused(
        registry.functions.removeAcceptedPayment(market.addresses.bid), provider, "TokenNotFound"
    )
    market.activate(provider)
    market.refused(
        registry.functions.setProviderStatus(provider.address, STATUS_ACTIVE),
        provider,
        "StatusUnchanged",
    )
    market.refused(
        registry.functions.setProviderStatus(provider.address, 0),
        market.people.deployer,
        "InvalidStatus",
    )


def test_provider_attribute_mistakes(market: Market) -> None:
    provider, attributes = market.people.provider, market.attributes
    submit = attributes.functions.submitAttributes

    market.refused(submit(GPU, [51], [1]), provider, "ProviderNotFound")
    market.register_provider(provider)
    market.refused(submit(GPU, [], []), provider, "EmptyArray")
    market.refused(submit(GPU, [51, 36], [1]), provider, "ArrayMismatch")
    market.refused(submit(GPU, [51], [0]), provider, "InvalidUnit")
    market.refused(submit(GPU, [51, 51], [1, 1]), provider, "DuplicateId")
    market.refused(submit("TPU", [51], [1]), provider, "InvalidCategory")
    market.refused(
        attributes.functions.approveAttributes(provider.address, GPU),
        market.people.verifier,
        "NoPendingAttributes",
    )


def test_bid_mistakes(market: Market) -> None:
    provider, other = market.people.provider, market.people.other_provider
    bid = market.bids.functions.placeBid
    order_id = _open_order(market)

    market.refused(bid(order_id, BID_PRICE, 0), other, "ProviderNotActive")  # unregistered
    market.register_provider(provider)
    market.refused(bid(order_id, BID_PRICE, 0), provider, "ProviderNotActive")  # registered only
    market.activate(provider)
    market.refused(bid(999, BID_PRICE, 0), provider, "OrderNotFound")
    market.refused(bid(order_id, MAX_PRICE + 1, 0), provider, "BidPriceExceedsMaxPrice")
    market.refused(bid(order_id, 0, 0), provider, "InvalidAmount")
    market.refused(bid(order_id, BID_PRICE, 1), provider, "FizzNodeNotActive")
    market.bid(provider, order_id, BID_PRICE)
    market.refused(bid(order_id, BID_PRICE, 0), provider, "ProviderHasActiveBid")

    market.match(order_id, provider, BID_PRICE)
    market.refused(bid(order_id, BID_PRICE, 0), provider, "OrderNotActive")


def test_bid_in_a_token_the_provider_does_not_accept(market: Market) -> None:
    provider = _active_provider(market)
    token = _second_token(market)
    details = (MAX_PRICE, BLOCKS, token, SPEC, 1, 1, [TIER_FOUR])
    receipt = market.send(market.orders.functions.createOrder(details), market.people.tenant)
    (created,) = market.events(receipt, "OrderRequest", "OrderCreated")

    market.refused(
        market.bids.functions.placeBid(created["orderId"], BID_PRICE, 0),
        provider,
        "TokenNotAccepted",
    )


def test_bid_after_the_window(market: Market) -> None:
    provider = _active_provider(market)
    order_id = _open_order(market)
    created_at = market.orders.functions.orderCreatedBlock(order_id).call()
    market.mine(created_at + BID_WINDOW + 1 - market.block())

    market.refused(
        market.bids.functions.placeBid(order_id, BID_PRICE, 0), provider, "BiddingClosed"
    )


def test_lease_mistakes(market: Market) -> None:
    tenant, provider, stranger = (
        market.people.tenant,
        market.people.provider,
        market.people.stranger,
    )
    _active_provider(market)
    order_id = _open_order(market)
    market.bid(provider, order_id, BID_PRICE)
    market.match(order_id, provider, BID_PRICE)
    close, accept = market.leases.functions.closeLease, market.bids.functions.acceptUpdate

    market.refused(accept(order_id), provider, "InvalidOrderState")  # no update requested
    market.refused(close(999), tenant, "LeaseNotFound")
    market.refused(close(order_id), stranger, "OnlyTenantOrProvider")
    market.refused(
        market.orders.functions.updateOrderStateToClosed(order_id), tenant, "OrderNotOpened"
    )
    details = market.order_details(MAX_PRICE, BLOCKS)
    market.send(market.orders.functions.updateInitialOrder(order_id, details), tenant)
    market.refused(accept(order_id), stranger, "UnAuthourized")
    market.send(close(order_id), provider)
    market.refused(close(order_id), tenant, "LeaseAlreadyTerminated")
    market.refused(accept(order_id), provider, "LeaseNotActive")


def test_withdrawal_mistakes(market: Market) -> None:
    provider, token = market.people.provider, market.addresses.test_token
    withdraw = market.protocol.functions.withdrawEarnings

    market.refused(withdraw(provider.address, 0, token, 1), provider, "ProviderNotFound")
    _active_provider(market)
    order_id = _open_order(market)
    market.bid(provider, order_id, BID_PRICE)
    market.match(order_id, provider, BID_PRICE)
    market.mine(2)
    market.send(market.leases.functions.closeLease(order_id), provider)
    _, _, balance = market.earnings_of(provider)

    market.refused(
        withdraw(provider.address, 0, token, balance + 1),
        provider,
        "InsufficientBalance",
        available=balance,
        required=balance + 1,
    )
    market.refused(withdraw(provider.address, 0, token, 0), provider, "InvalidAmount")
    market.refused(withdraw(provider.address, 1, token, balance), provider, "FizzNodeNotActive")
    market.refused(
        withdraw(provider.address, 0, token, balance), market.people.stranger, "UnauthorizedAccess"
    )


# -- tenant --------------------------------------------------------------------------------


def test_tenant_escrow_mistakes(market: Market) -> None:
    tenant, escrow, token = market.people.tenant, market.escrow, market.addresses.test_token

    market.refused(
        escrow.functions.deposit(token, 5),
        tenant,
        "ERC20InsufficientAllowance",
        spender=market.addresses.escrow_user,
        allowance=0,
        needed=5,
    )
    market.refused(escrow.functions.deposit(market.addresses.bid, 5), tenant, "TokenNotAccepted")
    market.refused(escrow.functions.deposit(token, 0), tenant, "InvalidAmount")
    market.deposit(tenant, 10)
    market.refused(
        escrow.functions.withdraw(token, 11, ZERO),
        tenant,
        "InsufficientBalance",
        available=10,
        required=11,
    )
    market.refused(escrow.functions.withdraw(token, 0, ZERO), tenant, "InvalidAmount")
    market.refused(escrow.functions.withdraw(token, 1, tenant.address), tenant, "InvalidOperator")


def test_tenant_order_mistakes(market: Market) -> None:
    tenant, stranger = market.people.tenant, market.people.stranger
    create = market.orders.functions.createOrder
    details = market.order_details

    market.refused(create(details(MAX_PRICE, BLOCKS)), tenant, "InsufficientBalance")
    market.deposit(tenant, DEPOSIT)
    market.refused(create(details(0, BLOCKS)), tenant, "InvalidAmount")
    market.refused(create(details(MAX_PRICE, 0)), tenant, "InvalidBlockNumber")
    market.refused(create(details(MAX_PRICE, BLOCKS, spec="")), tenant, "EmptyOrderSpec")
    unlisted = (MAX_PRICE, BLOCKS, market.addresses.bid, SPEC, 1, 1, [TIER_FOUR])
    market.refused(create(unlisted), tenant, "TokenNotAccepted")

    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    close = market.orders.functions.updateOrderStateToClosed
    update = market.orders.functions.updateInitialOrder
    market.refused(close(order_id), stranger, "NotAuthorized")
    market.refused(close(999), tenant, "OrderNotFound")
    market.refused(update(order_id, details(MAX_PRICE, BLOCKS)), stranger, "NotAuthorized")
    market.refused(update(order_id, details(MAX_PRICE, BLOCKS)), tenant, "OrderNotMatched")

    provider = _active_provider(market)
    market.bid(provider, order_id, BID_PRICE)
    market.match(order_id, provider, BID_PRICE)
    other_token = (MAX_PRICE, BLOCKS, _second_token(market), SPEC, 1, 1, [TIER_FOUR])
    market.refused(update(order_id, other_token), tenant, "TokenCannotChange")


# -- tiers ---------------------------------------------------------------------------------


def test_new_providers_start_in_tier_four_and_a_registry_admin_moves_them(market: Market) -> None:
    provider, registry = market.people.provider, market.providers
    stranger, admin = market.people.stranger, market.people.deployer
    market.register_provider(provider)
    assert registry.functions.getProviderTrustTier(provider.address).call() == TIER_FOUR

    market.refused(
        registry.functions.updateProviderTier(provider.address, 0),
        stranger,
        "AccessControlUnauthorizedAccount",
        account=stranger.address,
        neededRole=REGISTRY_ADMIN_ROLE,
    )
    market.refused(
        registry.functions.setDefaultTier(0), provider, "AccessControlUnauthorizedAccount"
    )
    receipt = market.send(registry.functions.updateProviderTier(provider.address, 0), admin)
    assert market.events(receipt, "ProviderRegistry", "ProviderTierUpdated") == [
        {"provider": provider.address, "tier": 0}
    ]
    market.send(registry.functions.setDefaultTier(5), admin)
    market.register_provider(market.people.other_provider)

    assert registry.functions.getProviderTrustTier(provider.address).call() == 0
    assert registry.functions.getProviderTrustTier(market.people.other_provider.address).call() == 5


# -- through the chain client --------------------------------------------------------------


@pytest.fixture
async def async_w3(chain: Anvil) -> AsyncIterator[AsyncWeb3[AsyncHTTPProvider]]:
    w3 = AsyncWeb3(AsyncHTTPProvider(chain.url))
    try:
        yield w3
    finally:
        await w3.provider.disconnect()


def _manager(w3: AsyncWeb3[AsyncHTTPProvider], account: LocalAccount) -> TxManager:
    timings = TxTimings(poll_interval=0.05, replace_after=30, receipt_timeout=30, confirmations=0)
    return TxManager(
        w3,
        Wallet.from_private_key(account.key),
        InMemoryIntentStore(),
        chain_id=31337,
        timings=timings,
        error_abis=[load_artifact(name).abi for name in ("OrderRequest", "EscrowUser")],
    )


async def test_the_tx_manager_raises_the_decoded_error_before_and_after_mining(
    market: Market, async_w3: AsyncWeb3[AsyncHTTPProvider]
) -> None:
    provider = _active_provider(market)
    order_id = _open_order(market)
    bid = bind(async_w3, load_artifact("Bid").abi, market.addresses.bid)
    txs = _manager(async_w3, provider)

    # Estimated: refused before anything is sent, as a ContractRevert with a sentence.
    with pytest.raises(ContractRevert) as estimated:
        await txs.send("too-dear", TxRequest.call(bid, "placeBid", order_id, MAX_PRICE + 1, 0))
    assert (estimated.value.error_name, estimated.value.contract) == (
        "BidPriceExceedsMaxPrice",
        "Bid",
    )
    assert estimated.value.tx_hash is None
    assert estimated.value.sentence == sentence_for("BidPriceExceedsMaxPrice")

    # Estimated in the window's last block, mined in the first block after it.
    created_at = market.orders.functions.orderCreatedBlock(order_id).call()
    market.mine(created_at + BID_WINDOW - market.block())
    late = TxRequest.call(bid, "placeBid", order_id, BID_PRICE, 0, gas=500_000)
    with pytest.raises(ContractRevert) as mined:
        await txs.send("late", late)
    assert mined.value.tx_hash is not None
    assert (mined.value.error_name, mined.value.contract) == ("BiddingClosed", "Bid")
    assert mined.value.sentence == "the bidding window for this order has closed"

    # Sent again under the same key: the journal answers, nothing is sent twice.
    with pytest.raises(TransactionReverted) as again:
        await txs.send("late", late)
    assert again.value.tx_hash == mined.value.tx_hash


def test_every_error_the_tests_expect_is_declared_by_a_contract() -> None:
    names = {spec.name for spec in marketplace_errors().values()}
    assert {"BiddingClosed", "ProviderHasActiveBid", "InsufficientBalance"} <= names


async def test_a_registry_admin_sets_a_provider_tier_through_the_chain_client(
    market: Market, async_w3: AsyncWeb3[AsyncHTTPProvider]
) -> None:
    provider, deployer, stranger = (
        market.people.provider,
        market.people.deployer,
        market.people.stranger,
    )
    market.register_provider(provider)
    addresses = market.addresses
    contracts = Contracts(
        async_w3,
        ContractAddresses(
            token_registry=addresses.token_registry,
            escrow_user=addresses.escrow_user,
            escrow_protocol=addresses.escrow_protocol,
            provider_registry=addresses.provider_registry,
            provider_attribute_registry=addresses.provider_attribute_registry,
            order_request=addresses.order_request,
            bid=addresses.bid,
            compute_lease=addresses.compute_lease,
        ),
    )

    with pytest.raises(ContractRevert) as refused:
        await _manager(async_w3, stranger).send(
            "tier", contracts.update_provider_tier(provider.address, 1)
        )
    assert refused.value.error_name == "AccessControlUnauthorizedAccount"
    assert refused.value.error_args["account"] == stranger.address
    assert refused.value.sentence.endswith("lacks the role REGISTRY_ADMIN_ROLE")

    admin = _manager(async_w3, deployer)
    await admin.send("tier", contracts.update_provider_tier(provider.address, 1))
    await admin.send("default-tier", contracts.set_default_tier(6))
    market.register_provider(market.people.other_provider)

    tier = market.providers.functions.getProviderTrustTier
    assert tier(provider.address).call() == 0
    assert tier(market.people.other_provider.address).call() == 5
