"""Bid engines on the devnet: real anvil, the devnet contracts, the devnet tenant and matchmaker.

A provider here is what the operator's chain daemon will run: a `BidEngine` with its own
`TxManager` (intents in a store the test keeps, so a restart can reuse it), following the
marketplace from the head with confirmations 0, and a static `Capacity` that the real
inventory computes from e2e/topology.yaml's Nodes (no cluster needed: nothing is scheduled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from e2e.chain.conftest import (  # noqa: F401 - fixtures shared with the contract tests
    BID_WINDOW,
    Market,
    chain,
    deployed,
    market,
    people,
    w3,
)
from e2e.devnet.conftest import devnet, devnet_state  # noqa: F401
from e2e.harness.topology import build_nodes
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.chain.bidding import BidEngine
from gpu_provider.chain.bidfacts import capacity_of, price_table
from gpu_provider.chain.bidstream import bid_event_sources
from gpu_provider.chain.events import EventStream
from gpu_provider.chain.intents import InMemoryIntentStore, IntentStore
from gpu_provider.chain.records import Checkpoint
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.session import DevnetChain, devnet_timings
from gpu_provider.inventory import build_inventory
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.eligibility import AcceptedToken, ProviderFacts
from gpu_provider.market.reservations import ReservationBook

REGION = "us-east"
TIER = 4  # what the devnet registry gives a new provider
POLL = 0.05


def provider_spec(token: str, h100: str = "2.50", a100: str = "1.50") -> ProviderNodeSpec:
    return ProviderNodeSpec.model_validate(
        {
            "wallet": {"secretName": "provider-wallet", "privateKeyKey": "key"},
            "region": REGION,
            "hostUri": "provider.devnet.example",
            "acceptedTokens": [{"symbol": "USDT", "address": token}],
            "pricing": {
                "token": "USDT",
                "gpu": [
                    {"model": "h100", "usdPerHour": h100},
                    {"model": "a100-80g", "usdPerHour": a100},
                ],
                "cpuCoreUsdPerHour": "0.01",
                "memoryGiBUsdPerHour": "0.001",
            },
            "reservedPerNode": {"cpu": "0", "memory": "0", "ephemeralStorage": "0"},
        }
    )


def topology_capacity(spec: ProviderNodeSpec) -> Capacity:
    """e2e/topology.yaml's Nodes through the real inventory, nothing running on them, each
    Ready as kwok's kubelets report it (two 8 x H100 and two 4 x A100 80 GB nodes offered)."""
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
    nodes = [{**n, "status": {**n["status"], "conditions": [ready]}} for n in build_nodes()]
    return capacity_of(build_inventory(nodes, [], spec))


async def until(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within:.0f} s: {what}")
        await asyncio.sleep(0.02)


@dataclass
class Provider:
    """One provider's bid engine, running (or not) against the devnet."""

    devnet: DevnetChain
    account: LocalAccount
    spec: ProviderNodeSpec
    store: IntentStore = field(default_factory=InMemoryIntentStore)
    engine: BidEngine | None = None
    task: asyncio.Task[None] | None = None
    capacity: Capacity = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = topology_capacity(self.spec)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def facts(self) -> ProviderFacts:
        token = self.spec.accepted_tokens[0]
        return ProviderFacts(
            address=self.address,
            tier=TIER,
            region=self.spec.region,
            tokens=(AcceptedToken(token.address, token.symbol, self.devnet.state.token_terms()),),
            prices=price_table(self.spec),
        )

    async def start(self, from_block: int, window: int = BID_WINDOW) -> BidEngine:
        """A new engine (a fresh process: new TxManager, new book) on the same intent store;
        `window`: the bid window it believes the chain has."""
        await self.stop()
        tx = TxManager(
            self.devnet.w3,
            Wallet(self.account),
            self.store,
            chain_id=self.devnet.state.chain_id,
            timings=devnet_timings(0),
            error_abis=self.devnet.marketplace.error_abis(),
        )
        contracts = self.devnet.marketplace
        engine = BidEngine(
            contracts,
            tx,
            facts=self.facts,
            capacity=lambda: self.capacity,
            book=ReservationBook(300),
            bid_window_blocks=window,
        )

        def open_stream(checkpoint: Checkpoint) -> EventStream:
            sources = bid_event_sources(contracts, self.address)
            return EventStream(
                self.devnet.w3, sources, checkpoint, confirmations=0, poll_interval=POLL
            )

        self.engine = engine
        self.task = asyncio.create_task(engine.follow(open_stream, Checkpoint.start_at(from_block)))
        return engine

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.engine is not None:
            await self.engine.aclose()


def active_provider(on: Market, who: LocalAccount) -> None:
    on.register_provider(who)
    on.activate(who)


@pytest.fixture
async def providers(
    market: Market,  # noqa: F811
    devnet: DevnetChain,  # noqa: F811
) -> AsyncIterator[Callable[..., Awaitable[Provider]]]:
    """Make registered, Active providers; their engines stop after the test."""
    made: list[Provider] = []

    async def make(who: LocalAccount, **prices: Any) -> Provider:
        active_provider(market, who)
        provider = Provider(devnet, who, provider_spec(devnet.state.payment_token, **prices))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.stop()


DEPOSIT = Decimal(1000)
