"""Fixtures for lease intake, close and earnings on anvil: a real tenant (the devnet tenant
tool), the real devnet matchmaker, and a provider that bids with plain `TxManager` calls.

The chain, the deployment and the per-test snapshot come from `e2e/chain/conftest.py`
(automining anvil: one block per transaction, so a test decides when blocks pass). The
provider's intents live where the operator keeps them, a `StatusIntentStore` whose `persist`
writes into `Status` here instead of a ProviderNode; a "restart" builds a new store and
`TxManager` from what `Status` holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from e2e.chain.conftest import (  # noqa: F401 - fixtures shared with the contract tests
    Market,
    People,
    chain,
    deployed,
    market,
    people,
    w3,
)
from e2e.devnet.conftest import devnet, devnet_state  # noqa: F401
from gpu_provider.api.v1alpha1.providernode import PendingTx
from gpu_provider.chain.statusstore import StatusIntentStore
from gpu_provider.chain.tx import TxManager, TxRequest, TxTimings
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.matchmaker import Matchmaker
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.devnet.session import DevnetChain, devnet_timings
from gpu_provider.devnet.tenant import PlacedOrder, Tenant

EXAMPLE_ORDER = Path(__file__).parents[2] / "manifests/examples/order.yaml"


async def eventually(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Wait until `check()` holds, polling; fail naming `what` did not happen."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within:.0f} s: {what} did not happen")
        await asyncio.sleep(0.05)


@dataclass
class Status:
    """What `ProviderNode.status.pendingTxs` would hold."""

    pending_txs: list[PendingTx] = field(default_factory=list)


@dataclass
class Provider:
    """The provider's chain side as the operator runs it: one TxManager over status."""

    devnet: DevnetChain
    market: Market
    status: Status
    tx: TxManager
    store: StatusIntentStore

    @property
    def address(self) -> str:
        return str(self.market.people.provider.address)

    def nonce(self) -> int:
        """Transactions of the provider's wallet mined so far."""
        return int(self.market.w3.eth.get_transaction_count(self.market.people.provider.address))

    async def bid(self, order_id: int, price: int) -> None:
        request = TxRequest.call(self.devnet.marketplace.bid, "placeBid", order_id, price, 0)
        await self.tx.send(f"bid:{order_id}", request)

    async def restart(self, timings: TxTimings | None = None) -> None:
        """A new journal and TxManager from what status holds, as a restarted operator has;
        open intents are driven to an end first, as `ChainSession.open` does."""
        await self.tx.aclose()
        self.tx, self.store = manager(self.devnet, self.market, self.status, timings)


def manager(
    devnet: DevnetChain,  # noqa: F811 - a parameter, not the fixture
    market: Market,  # noqa: F811
    status: Status,
    timings: TxTimings | None = None,
) -> tuple[TxManager, StatusIntentStore]:
    async def persist(records: list[PendingTx]) -> None:
        status.pending_txs = list(records)

    store = StatusIntentStore(persist, status.pending_txs)
    tx = TxManager.from_settings(
        devnet.w3,
        devnet.settings,
        Wallet(market.people.provider),
        store,
        timings=timings or devnet_timings(0),
        error_abis=devnet.marketplace.error_abis(),
    )
    return tx, store


@pytest.fixture
async def provider(
    market: Market,  # noqa: F811
    devnet: DevnetChain,  # noqa: F811
) -> AsyncIterator[Provider]:
    """Registered with its reward wallet, Active, in tier 1 (the example order is secured)."""
    roles = market.people
    for who in (roles.provider, roles.other_provider):
        market.register_provider(
            who, reward_wallet=roles.reward_wallet if who is roles.provider else None
        )
        market.activate(who)
        market.send(market.providers.functions.updateProviderTier(who.address, 0), roles.deployer)
    status = Status()
    tx, store = manager(devnet, market, status)
    running = Provider(devnet, market, status, tx, store)
    try:
        yield running
    finally:
        await running.tx.aclose()


@dataclass
class Marketplace:
    """The tenant and the matchmaker, both the devnet's real tools."""

    market: Market
    tenant: Tenant
    matchmaker: Matchmaker

    async def order(self, duration: str = "1h") -> PlacedOrder:
        text = EXAMPLE_ORDER.read_text().replace("duration: 1h", f"duration: {duration}")
        return await self.tenant.create_order(parse_order_yaml(text, "order.yaml"))

    async def match(self, order: PlacedOrder) -> int:
        """Close the order's bid window and let the matchmaker pick; the lease id."""
        created = self.market.orders.functions.orderCreatedBlock(order.order_id).call()
        window = self.market.bids.functions.bidWindow().call()
        if self.market.block() < created + window:
            self.market.mine(created + window - self.market.block())
        decisions = await self.matchmaker.poll_once()
        (decision,) = [d for d in decisions if d.order_id == order.order_id]
        assert decision.matched, decision
        assert decision.lease_id is not None
        return decision.lease_id


@pytest.fixture
async def marketplace(
    market: Market,  # noqa: F811
    devnet: DevnetChain,  # noqa: F811
) -> Marketplace:
    tenant = Tenant(chain=devnet, account=market.people.tenant)
    await tenant.deposit(Decimal(50))
    matchmaker = Matchmaker(
        chain=devnet,
        account=market.people.matchmaker,
        from_block=market.block(),
        poll_interval=0.05,
    )
    return Marketplace(market, tenant, matchmaker)
