"""The devnet marketplace on a real EVM node: order → bid → match → lease → close → withdraw.

Every amount is checked to the wei: a tenant pays acceptedPrice for each block its lease ran
(never more than the blocks it ordered), the provider earns exactly that, and whatever the
tenant locked and did not spend comes back unlocked.
"""

from __future__ import annotations

import pytest
from web3.exceptions import ContractLogicError

from e2e.chain.conftest import (
    BID_WINDOW,
    FUNDS,
    LEASE_ACTIVE,
    LEASE_TERMINATED,
    ORDER_CLOSED,
    ORDER_MATCHED,
    ORDER_OPEN,
    SPEC,
    STATUS_ACTIVE,
    STATUS_MAINTENANCE,
    STATUS_REGISTERED,
    STATUS_SUSPENDED,
    TIER_FOUR,
    TOKEN,
    Market,
)
from gpu_provider.chain.decoding import decode_revert
from gpu_provider.devnet.deploy import REGISTRY_ADMIN_ROLE, VERIFIER_ROLE

pytestmark = pytest.mark.e2e

DEPOSIT = 1_000 * TOKEN
MAX_PRICE = 3 * 10**15  # per block
BID_PRICE = 2 * 10**15
BLOCKS = 100
NO_OPERATOR = "0x0000000000000000000000000000000000000000"  # escrow of the caller itself


def _matched_lease(market: Market, blocks: int = BLOCKS) -> int:
    """A tenant with escrow, an active provider, an order, a bid and a match: the lease id."""
    tenant, provider = market.people.tenant, market.people.provider
    market.deposit(tenant, DEPOSIT)
    market.register_provider(provider, reward_wallet=market.people.reward_wallet)
    market.activate(provider)
    order_id = market.create_order(tenant, MAX_PRICE, blocks)
    market.bid(provider, order_id, BID_PRICE)
    market.match(order_id, provider, BID_PRICE)
    return order_id


def test_tenant_order_is_bid_on_matched_leased_closed_and_paid_to_the_wei(market: Market) -> None:
    tenant, provider, reward = (
        market.people.tenant,
        market.people.provider,
        market.people.reward_wallet,
    )
    token = market.addresses.test_token

    # Tenant funds escrow.
    receipt = market.deposit(tenant, DEPOSIT)
    (moved,) = market.events(receipt, "TestToken", "Transfer")
    assert moved == {"from": tenant.address, "to": market.addresses.escrow_user, "value": DEPOSIT}
    assert market.escrow_of(tenant) == (0, DEPOSIT)

    # Provider registers, is Registered, then goes Active.
    receipt = market.register_provider(provider, reward_wallet=reward)
    (added,) = market.events(receipt, "ProviderRegistry", "ProviderAdded")
    assert (added["providerId"], added["walletAddress"], added["status"]) == (
        1,
        provider.address,
        STATUS_REGISTERED,
    )
    market.activate(provider)
    assert market.providers.functions.isActiveProvider(provider.address).call()

    # Tenant orders BLOCKS blocks at up to MAX_PRICE per block: that much escrow is locked.
    receipt = market.send(
        market.orders.functions.createOrder(market.order_details(MAX_PRICE, BLOCKS)), tenant
    )
    (created,) = market.events(receipt, "OrderRequest", "OrderCreated")
    order_id = created["orderId"]
    assert created == {
        "orderId": order_id,
        "creator": tenant.address,
        "maxPrice": MAX_PRICE,
        "numOfBlocks": BLOCKS,
        "token": token,
        "specs": SPEC,
        "version": 1,
        "mode": 1,
    }
    assert market.escrow_of(tenant) == (MAX_PRICE * BLOCKS, DEPOSIT - MAX_PRICE * BLOCKS)
    assert market.order_state(order_id) == ORDER_OPEN

    # Provider bids within the window.
    receipt = market.bid(provider, order_id, BID_PRICE)
    (placed,) = market.events(receipt, "Bid", "BidPlaced")
    assert placed == {
        "orderId": order_id,
        "bidPrice": BID_PRICE,
        "provider": provider.address,
        "fizz": 0,
    }

    # Matchmaker matches at the bid: the lease (id = order id) starts, the lock shrinks.
    receipt = market.match(order_id, provider, BID_PRICE)
    (matched,) = market.events(receipt, "Bid", "OrderMatched")
    assert matched == {
        "orderId": order_id,
        "providerAddress": provider.address,
        "fizzId": 0,
        "providerId": 1,
        "acceptedPrice": BID_PRICE,
        "creator": tenant.address,
    }
    (leased,) = market.events(receipt, "ComputeLease", "LeaseCreated")
    start_block = receipt["blockNumber"]
    assert leased["leaseId"] == order_id
    assert leased["requestId"] == order_id
    assert leased["acceptedPrice"] == BID_PRICE
    assert (leased["providerAddress"], leased["tenantAddress"]) == (
        provider.address,
        tenant.address,
    )
    assert (leased["startBlock"], leased["state"]) == (start_block, LEASE_ACTIVE)
    assert market.order_state(order_id) == ORDER_MATCHED
    assert market.escrow_of(tenant) == (BID_PRICE * BLOCKS, DEPOSIT - BID_PRICE * BLOCKS)
    assert market.leases.functions.getProviderLeases(provider.address).call() == [
        [order_id],
        [order_id],
    ]

    # 17 blocks pass; the tenant closes the lease and pays for the blocks it ran.
    market.mine(17)
    receipt = market.send(market.leases.functions.closeLease(order_id), tenant)
    elapsed = receipt["blockNumber"] - start_block
    assert elapsed == 18
    paid = BID_PRICE * elapsed
    (closed,) = market.events(receipt, "ComputeLease", "LeaseClosed")
    assert (closed["leaseId"], closed["state"]) == (order_id, LEASE_TERMINATED)
    assert (closed["providerAddress"], closed["tenantAddress"]) == (
        provider.address,
        tenant.address,
    )
    assert market.escrow_of(tenant) == (0, DEPOSIT - paid)
    assert market.earnings_of(provider) == (paid, 0, paid)
    assert market.order_state(order_id) == ORDER_CLOSED
    assert market.lease(order_id)["state"] == LEASE_TERMINATED
    assert market.leases.functions.getLeaseDetails(order_id).call() == [
        provider.address,
        tenant.address,
        LEASE_TERMINATED,
    ]
    assert market.leases.functions.getProviderLeases(provider.address).call() == [[], [order_id]]

    # Provider withdraws its earnings: they land in its reward wallet.
    market.send(
        market.protocol.functions.withdrawEarnings(provider.address, 0, token, paid), provider
    )
    assert market.earnings_of(provider) == (paid, paid, 0)
    assert market.tokens_of(reward) == paid

    # Tenant takes back what it did not spend; the escrow holds nothing more.
    market.send(market.escrow.functions.withdraw(token, DEPOSIT - paid, NO_OPERATOR), tenant)
    assert market.tokens_of(tenant) == FUNDS - paid
    assert market.tokens_of(market.addresses.escrow_user) == 0


def test_lease_left_running_past_its_end_costs_only_the_ordered_blocks(market: Market) -> None:
    lease_id = _matched_lease(market, blocks=10)
    market.mine(50)
    market.send(market.leases.functions.closeLease(lease_id), market.people.provider)
    paid = BID_PRICE * 10
    assert market.earnings_of(market.people.provider) == (paid, 0, paid)
    assert market.escrow_of(market.people.tenant) == (0, DEPOSIT - paid)


def test_settling_midway_pays_the_provider_without_double_counting(market: Market) -> None:
    lease_id = _matched_lease(market)
    start = market.lease(lease_id)["startBlock"]
    market.mine(9)
    settled = market.send(market.leases.functions.settleLease(lease_id), market.people.stranger)
    first = BID_PRICE * (settled["blockNumber"] - start)
    assert market.earnings_of(market.people.provider) == (first, 0, first)
    assert market.escrow_of(market.people.tenant) == (
        BID_PRICE * BLOCKS - first,
        DEPOSIT - BID_PRICE * BLOCKS,
    )
    market.mine(4)
    closed = market.send(market.leases.functions.closeLease(lease_id), market.people.tenant)
    total = BID_PRICE * (closed["blockNumber"] - start)
    assert market.earnings_of(market.people.provider) == (total, 0, total)
    assert market.escrow_of(market.people.tenant) == (0, DEPOSIT - total)


def test_protocol_fee_is_taken_from_the_provider_side_and_paid_to_the_treasury(
    market: Market,
) -> None:
    market.send(market.protocol.functions.setPercentages(250, 0, 0), market.people.deployer)
    lease_id = _matched_lease(market)
    start = market.lease(lease_id)["startBlock"]
    market.mine(6)
    closed = market.send(market.leases.functions.closeLease(lease_id), market.people.tenant)
    paid = BID_PRICE * (closed["blockNumber"] - start)
    fee = paid * 250 // 10_000
    assert market.escrow_of(market.people.tenant) == (0, DEPOSIT - paid)
    assert market.earnings_of(market.people.provider) == (paid - fee, 0, paid - fee)
    token = market.addresses.test_token
    assert market.protocol.functions.fees(token).call() == fee
    market.send(market.protocol.functions.withdrawFees(token, fee), market.people.deployer)
    assert market.tokens_of(market.people.treasury) == fee


def test_provider_accepts_an_update_that_extends_the_lease(market: Market) -> None:
    tenant, provider = market.people.tenant, market.people.provider
    lease_id = _matched_lease(market)
    start = market.lease(lease_id)["startBlock"]
    market.mine(4)
    longer = market.order_details(MAX_PRICE, 300)
    receipt = market.send(market.orders.functions.updateInitialOrder(lease_id, longer), tenant)
    (requested,) = market.events(receipt, "OrderRequest", "OrderUpdateRequested")
    assert (requested["_orderId"], requested["numOfBlocks"]) == (lease_id, 300)
    # The update's escrow is locked on request, next to the running lease's.
    assert market.escrow_of(tenant) == (
        BID_PRICE * BLOCKS + MAX_PRICE * 300,
        DEPOSIT - BID_PRICE * BLOCKS - MAX_PRICE * 300,
    )

    receipt = market.send(market.bids.functions.acceptUpdate(lease_id), provider)
    old_terms_paid = BID_PRICE * (receipt["blockNumber"] - start)
    (accepted,) = market.events(receipt, "Bid", "UpdateRequestAccepted")
    assert accepted == {
        "orderId": lease_id,
        "providerAddress": provider.address,
        "tenant": tenant.address,
    }
    (updated,) = market.events(receipt, "ComputeLease", "LeaseUpdated")
    assert (updated["leaseId"], updated["acceptedPrice"]) == (lease_id, BID_PRICE)
    assert updated["startBlock"] == receipt["blockNumber"]
    assert market.earnings_of(provider) == (old_terms_paid, 0, old_terms_paid)
    assert market.escrow_of(tenant) == (BID_PRICE * 300, DEPOSIT - old_terms_paid - BID_PRICE * 300)
    assert market.orders.functions.getOrderById(lease_id).call()[2] == 300
    assert market.lease(lease_id)["state"] == LEASE_ACTIVE

    market.mine(2)
    closed = market.send(market.leases.functions.closeLease(lease_id), tenant)
    total = old_terms_paid + BID_PRICE * (closed["blockNumber"] - receipt["blockNumber"])
    assert market.earnings_of(provider) == (total, 0, total)
    assert market.escrow_of(tenant) == (0, DEPOSIT - total)


def test_closing_a_lease_with_an_unaccepted_update_unlocks_both(market: Market) -> None:
    tenant = market.people.tenant
    lease_id = _matched_lease(market)
    start = market.lease(lease_id)["startBlock"]
    update = market.order_details(MAX_PRICE, 50)
    market.send(market.orders.functions.updateInitialOrder(lease_id, update), tenant)
    closed = market.send(market.leases.functions.closeLease(lease_id), tenant)
    paid = BID_PRICE * (closed["blockNumber"] - start)
    assert market.escrow_of(tenant) == (0, DEPOSIT - paid)


def test_tenant_cancels_an_open_order_and_gets_its_escrow_back(market: Market) -> None:
    tenant = market.people.tenant
    market.deposit(tenant, DEPOSIT)
    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    receipt = market.send(market.orders.functions.updateOrderStateToClosed(order_id), tenant)
    assert market.events(receipt, "OrderRequest", "OrderMarkedAsClosed") == [{"_orderId": order_id}]
    assert market.order_state(order_id) == ORDER_CLOSED
    assert market.escrow_of(tenant) == (0, DEPOSIT)


def test_provider_updates_its_registration_and_goes_into_maintenance(market: Market) -> None:
    provider, registry = market.people.provider, market.providers
    market.register_provider(provider)
    market.activate(provider)
    market.send(registry.functions.updateProviderHostUri("gpu.example.net"), provider)
    market.send(registry.functions.updateProviderSpec('{"Name":"p","Region":"us-east"}'), provider)
    market.send(registry.functions.updateProviderCertificate("cert-2"), provider)
    receipt = market.send(
        registry.functions.setProviderStatus(provider.address, STATUS_MAINTENANCE), provider
    )
    assert market.events(receipt, "ProviderRegistry", "ProviderStatusUpdated") == [
        {"providerId": 1, "status": STATUS_MAINTENANCE}
    ]
    spec, host_uri, cert, tokens, status, tier, _, reward = registry.functions.getProviderByAddress(
        provider.address
    ).call()
    assert (spec, host_uri, cert) == (
        '{"Name":"p","Region":"us-east"}',
        "gpu.example.net",
        "cert-2",
    )
    assert (tokens, status, tier, reward) == (
        [market.addresses.test_token],
        STATUS_MAINTENANCE,
        TIER_FOUR,
        provider.address,
    )

    # A provider in maintenance does not get new work.
    market.deposit(market.people.tenant, DEPOSIT)
    order_id = market.create_order(market.people.tenant, MAX_PRICE, BLOCKS)
    market.refused(
        market.bids.functions.placeBid(order_id, BID_PRICE, 0), provider, "ProviderNotActive"
    )

    # Only a registry admin may suspend; the provider cannot lift a suspension itself.
    suspend = registry.functions.setProviderStatus(provider.address, STATUS_SUSPENDED)
    stranger = market.people.stranger
    market.refused(
        suspend,
        stranger,
        "AccessControlUnauthorizedAccount",
        account=stranger.address,
        neededRole=REGISTRY_ADMIN_ROLE,
    )
    market.send(suspend, market.people.deployer)
    market.refused(
        registry.functions.setProviderStatus(provider.address, STATUS_ACTIVE),
        provider,
        "AccessControlUnauthorizedAccount",
        account=provider.address,
    )
    assert registry.functions.getProviderStatus(provider.address).call() == STATUS_SUSPENDED


def test_gpu_attributes_stay_pending_until_a_verifier_approves_them(market: Market) -> None:
    provider, attributes = market.people.provider, market.attributes
    market.register_provider(provider)
    receipt = market.send(attributes.functions.submitAttributes("GPU", [51, 36], [8, 2]), provider)
    assert market.events(receipt, "ProviderAttributeRegistry", "ProviderAttributesSubmitted") == [
        {"provider": provider.address, "category": "GPU", "ids": [51, 36], "units": [8, 2]}
    ]
    assert attributes.functions.getPendingAttributes(provider.address, "GPU").call() == [
        (51, 8),
        (36, 2),
    ]
    assert attributes.functions.getAttributes(provider.address, "GPU").call() == []

    market.refused(
        attributes.functions.approveAttributes(provider.address, "GPU"),
        market.people.stranger,
        "AccessControlUnauthorizedAccount",
        neededRole=VERIFIER_ROLE,
    )
    market.send(
        attributes.functions.approveAttributes(provider.address, "GPU"), market.people.verifier
    )
    assert attributes.functions.getAttributes(provider.address, "GPU").call() == [(51, 8), (36, 2)]
    assert attributes.functions.getPendingAttributes(provider.address, "GPU").call() == []
    market.refused(
        attributes.functions.submitAttributes("GPU", [51, 51], [1, 1]),
        provider,
        "DuplicateId",
    )
    market.refused(
        attributes.functions.submitAttributes("TPU", [1], [1]),
        provider,
        "InvalidCategory",
    )


# Misuse: every wrong call is refused with Spheron's custom error (see also test_reverts.py).


def test_bid_after_the_window_is_refused(market: Market) -> None:
    tenant, provider = market.people.tenant, market.people.provider
    market.deposit(tenant, DEPOSIT)
    market.register_provider(provider)
    market.activate(provider)
    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    created_at = market.orders.functions.orderCreatedBlock(order_id).call()
    market.mine(created_at + BID_WINDOW - market.block())
    call = market.bids.functions.placeBid(order_id, BID_PRICE, 0)
    # Sent without a gas estimate (estimates run in the latest block, where the window is
    # still open), the bid lands in the first block after the window and reverts there.
    tx_hash = call.transact({"from": provider.address, "gas": 500_000})
    receipt = market.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert (receipt["status"], receipt["blockNumber"]) == (0, created_at + BID_WINDOW + 1)
    with pytest.raises(ContractLogicError) as refusal:
        call.call({"from": provider.address}, block_identifier=receipt["blockNumber"])
    assert decode_revert(str(refusal.value.data)).error_name == "BiddingClosed"
    assert market.bids.functions.getAllBidsForOrder(order_id).call() == []
    market.refused(call, provider, "BiddingClosed")


def test_bid_on_the_last_block_of_the_window_is_accepted(market: Market) -> None:
    tenant, provider = market.people.tenant, market.people.provider
    market.deposit(tenant, DEPOSIT)
    market.register_provider(provider)
    market.activate(provider)
    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    created_at = market.orders.functions.orderCreatedBlock(order_id).call()
    market.mine(created_at + BID_WINDOW - 1 - market.block())
    receipt = market.bid(provider, order_id, BID_PRICE)
    assert receipt["blockNumber"] == created_at + BID_WINDOW


def test_bids_must_respect_price_registration_and_uniqueness(market: Market) -> None:
    tenant, provider, other = (
        market.people.tenant,
        market.people.provider,
        market.people.other_provider,
    )
    market.deposit(tenant, DEPOSIT)
    market.register_provider(provider)
    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    bid = market.bids.functions.placeBid
    market.refused(bid(order_id, BID_PRICE, 0), provider, "ProviderNotActive")
    market.refused(bid(order_id, BID_PRICE, 0), other, "ProviderNotActive")
    market.activate(provider)
    market.refused(bid(order_id, MAX_PRICE + 1, 0), provider, "BidPriceExceedsMaxPrice")
    market.refused(bid(order_id, BID_PRICE, 7), provider, "FizzNodeNotActive")
    market.refused(bid(999, BID_PRICE, 0), provider, "OrderNotFound")
    market.bid(provider, order_id, BID_PRICE)
    market.refused(bid(order_id, BID_PRICE, 0), provider, "ProviderHasActiveBid")


def test_only_the_matchmaker_matches_and_only_a_bidder(market: Market) -> None:
    tenant, provider = market.people.tenant, market.people.provider
    market.deposit(tenant, DEPOSIT)
    market.register_provider(provider)
    market.activate(provider)
    order_id = market.create_order(tenant, MAX_PRICE, BLOCKS)
    match = market.bids.functions.matchOrder
    matchmaker = market.people.matchmaker
    market.refused(match(order_id, provider.address, BID_PRICE), tenant, "UnAuthourized")
    market.refused(match(order_id, provider.address, BID_PRICE), matchmaker, "ProviderHasNoBid")
    market.bid(provider, order_id, BID_PRICE)
    market.refused(
        match(order_id, provider.address, BID_PRICE - 1), matchmaker, "AcceptedPriceBelowBid"
    )
    market.refused(
        match(order_id, provider.address, MAX_PRICE + 1), matchmaker, "BidPriceExceedsMaxPrice"
    )
    market.match(order_id, provider, BID_PRICE)
    market.refused(match(order_id, provider.address, BID_PRICE), matchmaker, "OrderNotActive")


def test_a_stranger_cannot_close_a_lease_and_nobody_closes_it_twice(market: Market) -> None:
    lease_id = _matched_lease(market)
    close = market.leases.functions.closeLease(lease_id)
    market.refused(close, market.people.stranger, "OnlyTenantOrProvider")
    market.send(close, market.people.tenant)
    market.refused(close, market.people.provider, "LeaseAlreadyTerminated")
    market.refused(market.leases.functions.closeLease(999), market.people.tenant, "LeaseNotFound")


def test_earnings_cannot_be_overdrawn_or_taken_by_someone_else(market: Market) -> None:
    provider, token = market.people.provider, market.addresses.test_token
    lease_id = _matched_lease(market)
    market.mine(3)
    market.send(market.leases.functions.closeLease(lease_id), provider)
    _, _, balance = market.earnings_of(provider)
    withdraw = market.protocol.functions.withdrawEarnings
    market.refused(
        withdraw(provider.address, 0, token, balance + 1),
        provider,
        "InsufficientBalance",
        available=balance,
        required=balance + 1,
    )
    market.refused(
        withdraw(provider.address, 0, token, balance), market.people.stranger, "UnauthorizedAccess"
    )
    # The reward wallet may pull the earnings itself.
    market.send(withdraw(provider.address, 0, token, balance), market.people.reward_wallet)
    assert market.tokens_of(market.people.reward_wallet) == balance


def test_orders_need_escrow_and_escrow_moves_only_through_the_market(market: Market) -> None:
    tenant, token = market.people.tenant, market.addresses.test_token
    create = market.orders.functions.createOrder
    market.refused(create(market.order_details(MAX_PRICE, BLOCKS)), tenant, "InsufficientBalance")
    market.deposit(tenant, MAX_PRICE * BLOCKS - 1)
    market.refused(create(market.order_details(MAX_PRICE, BLOCKS)), tenant, "InsufficientBalance")
    market.refused(create(market.order_details(MAX_PRICE, 0)), tenant, "InvalidBlockNumber")
    market.refused(
        market.escrow.functions.lockTokens(tenant.address, token, 1, False),
        market.people.stranger,
        "UnauthorizedAccess",
    )
    market.refused(
        market.escrow.functions.withdraw(token, MAX_PRICE * BLOCKS, market.people.stranger.address),
        tenant,
        "InvalidOperator",
    )
    market.refused(
        market.escrow.functions.withdraw(token, MAX_PRICE * BLOCKS, NO_OPERATOR),
        tenant,
        "InsufficientBalance",
        available=MAX_PRICE * BLOCKS - 1,
        required=MAX_PRICE * BLOCKS,
    )
