"""Fixtures for advertising on anvil: the provider's Advertiser over a status-like journal.

The chain, the deployment and the per-test snapshot come from `e2e/devnet/conftest.py`
(automining anvil: one block per transaction). The provider's intents live where the
operator keeps them, a `StatusIntentStore`, whose `persist` writes into `Status` here instead
of a ProviderNode; a "restart" builds a new store and TxManager from what `Status` holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

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
from gpu_provider.chain.advertiser import Advertiser
from gpu_provider.chain.registry import resolve_tokens
from gpu_provider.chain.statusstore import StatusIntentStore
from gpu_provider.chain.tx import TxManager
from gpu_provider.chain.wallet import Wallet
from gpu_provider.devnet.session import DevnetChain, devnet_timings
from gpu_provider.devnet.verifier import Verifier
from gpu_provider.market.advertise import DesiredProvider, build_desired

H100, RTX4090, CPU_ID = 51, 36, 1
CERT = "-----BEGIN CERTIFICATE-----\nMIIBdevnet\n-----END CERTIFICATE-----"


@dataclass
class Status:
    """What `ProviderNode.status.pendingTxs` would hold."""

    pending_txs: list[PendingTx] = field(default_factory=list)
    writes: int = 0


@dataclass
class Provider:
    """The provider as the operator runs it: desired facts in, transactions out."""

    devnet: DevnetChain
    market: Market
    status: Status
    token: str
    advertiser: Advertiser
    restarts: int = 0

    @property
    def address(self) -> str:
        return str(self.market.people.provider.address)

    def desired(self, **changes: Any) -> DesiredProvider:
        facts: dict[str, Any] = {
            "wallet": self.address,
            "reward_wallet": self.market.people.reward_wallet.address,
            "name": "gpu-provider-devnet",
            "region": "eu-west",
            "host_uri": "provider.devnet.example",
            "certificate": CERT,
            "tokens": [self.token],
            "maintenance": False,
            "gpu_offer": {H100: 8, RTX4090: 2},
            "cpu_offer": {CPU_ID: 64},
        }
        facts.update(changes)
        return build_desired(**facts)

    def nonce(self) -> int:
        """Transactions the provider's wallet has had mined."""
        return int(self.market.w3.eth.get_transaction_count(self.market.people.provider.address))

    async def restart(self, persist: Callable[[list[PendingTx]], Any] | None = None) -> Advertiser:
        """A new TxManager and store from what status holds, as a restarted operator has."""
        self.restarts += 1
        await self.advertiser.tx.aclose()
        self.advertiser = make_advertiser(self.devnet, self.market, self.status, persist)
        return self.advertiser


def make_advertiser(
    devnet: DevnetChain,  # noqa: F811 - a parameter, not the fixture
    market: Market,  # noqa: F811
    status: Status,
    persist: Callable[[list[PendingTx]], Any] | None = None,
) -> Advertiser:
    async def write(records: list[PendingTx]) -> None:
        status.pending_txs = list(records)
        status.writes += 1

    store = StatusIntentStore(persist or write, status.pending_txs)
    tx = TxManager.from_settings(
        devnet.w3,
        devnet.settings,
        Wallet(market.people.provider),
        store,
        timings=devnet_timings(0),
        error_abis=devnet.marketplace.error_abis(),
    )
    return Advertiser(devnet.marketplace, tx, store)


@pytest.fixture
async def provider(
    market: Market,  # noqa: F811
    devnet: DevnetChain,  # noqa: F811
) -> AsyncIterator[Provider]:
    (token,) = (await resolve_tokens(devnet.marketplace, ["USDT"])).values()
    status = Status()
    running = Provider(devnet, market, status, token, make_advertiser(devnet, market, status))
    try:
        yield running
    finally:
        await running.advertiser.tx.aclose()


@pytest.fixture
def verifier(market: Market, devnet: DevnetChain) -> Callable[..., Verifier]:  # noqa: F811
    """A devnet verifier that sees every submission of the test: `verifier(delay=0)`."""
    start = market.block()

    def make(delay: float = 0.0, reject: bool = False) -> Verifier:
        return Verifier(
            chain=devnet,
            account=market.people.verifier,
            delay=delay,
            reject=reject,
            from_block=start,
            poll_interval=0.05,
        )

    return make
