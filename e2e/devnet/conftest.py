"""Fixtures for the devnet tooling: the contract tests' automining chain, described as devnet.json.

The chain, accounts and per-test snapshots come from `e2e/chain/conftest.py` (one block per
transaction, so each test decides when bid windows close). `devnet` is the same deployment as
the tools see it: a `DevnetState` whose roles are that fixture's people, and a `DevnetChain`
(the operator's chain client) on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
from gpu_provider.devnet.accounts import Role
from gpu_provider.devnet.anvil import DEFAULT_MNEMONIC, Anvil
from gpu_provider.devnet.deploy import DevnetContracts
from gpu_provider.devnet.session import DevnetChain, open_devnet
from gpu_provider.devnet.state import DevnetAccount, DevnetState
from gpu_provider.devnet.up import build_state

# The contract tests' people, by their account index under anvil's mnemonic.
ROLE_INDEXES = {
    Role.DEPLOYER: 0,
    Role.MATCHMAKER: 1,
    Role.VERIFIER: 2,
    Role.TENANT: 3,
    Role.PROVIDER: 4,
    Role.REWARD_WALLET: 5,
    Role.TENANT_2: 6,
    Role.TREASURY: 7,
    Role.PROVIDER_2: 8,
}


@pytest.fixture(scope="session")
def devnet_state(chain: Anvil, deployed: DevnetContracts, people: People) -> DevnetState:  # noqa: F811
    by_index = [
        people.deployer,
        people.matchmaker,
        people.verifier,
        people.tenant,
        people.provider,
        people.reward_wallet,
        people.stranger,
        people.treasury,
        people.other_provider,
    ]
    return build_state(
        deployed,
        rpc_url=chain.url,
        block_time=0,
        mnemonic=DEFAULT_MNEMONIC,
        accounts={
            role: DevnetAccount(index=index, address=by_index[index].address)
            for role, index in ROLE_INDEXES.items()
        },
    )


@pytest.fixture
async def devnet(market: Market, devnet_state: DevnetState) -> AsyncIterator[DevnetChain]:  # noqa: F811
    """The devnet on the snapshot the `market` fixture reverts after the test."""
    async with await open_devnet(devnet_state) as session:
        yield session
