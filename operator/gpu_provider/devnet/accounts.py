"""Well-known devnet accounts: which of anvil's mnemonic accounts plays which role.

anvil derives its funded accounts from one mnemonic (`m/44'/60'/0'/0/<index>`); every devnet
gives each role the same index, so scripts, docs and the demo can say "the tenant" and mean
the same address every time. These keys are public knowledge: they hold nothing outside a
local devnet and must never be used anywhere else.

| index | role            | what it does on the devnet                                        |
|-------|-----------------|-------------------------------------------------------------------|
| 0     | `deployer`      | deploys the contracts; admin of every contract and registry admin; |
|       |                 | owns the test token (mints)                                        |
| 1     | `provider`      | the provider's wallet (the demo's ProviderNode); gets test tokens  |
| 2     | `tenant`        | `gpu-provider devnet tenant` signs with it; gets test tokens       |
| 3     | `matchmaker`    | holds MATCHMAKER_ROLE; `gpu-provider devnet matchmaker` signs      |
| 4     | `verifier`      | holds VERIFIER_ROLE: approves providers' GPU/CPU attributes        |
| 5     | `treasury`      | receives the protocol fee                                          |
| 6     | `provider-2`    | a second provider, to see bids compete; gets test tokens           |
| 7     | `tenant-2`      | a second tenant; gets test tokens                                  |
| 8     | `reward-wallet` | where the provider's earnings can be withdrawn to                  |

Index 9 is left free for experiments.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from eth_account import Account
from eth_account.signers.local import LocalAccount

__all__ = [
    "DEFAULT_ROLE_INDEXES",
    "FUNDED_ROLES",
    "Role",
    "derivation_path",
    "derive_account",
]


class Role(StrEnum):
    DEPLOYER = "deployer"
    PROVIDER = "provider"
    TENANT = "tenant"
    MATCHMAKER = "matchmaker"
    VERIFIER = "verifier"
    TREASURY = "treasury"
    PROVIDER_2 = "provider-2"
    TENANT_2 = "tenant-2"
    REWARD_WALLET = "reward-wallet"


DEFAULT_ROLE_INDEXES: Final[Mapping[Role, int]] = MappingProxyType(
    {
        Role.DEPLOYER: 0,
        Role.PROVIDER: 1,
        Role.TENANT: 2,
        Role.MATCHMAKER: 3,
        Role.VERIFIER: 4,
        Role.TREASURY: 5,
        Role.PROVIDER_2: 6,
        Role.TENANT_2: 7,
        Role.REWARD_WALLET: 8,
    }
)
"""Role -> account index under anvil's mnemonic (see the module docstring)."""

FUNDED_ROLES: Final = (Role.PROVIDER, Role.TENANT, Role.PROVIDER_2, Role.TENANT_2)
"""Roles that `devnet up` mints test tokens to (every account already holds native ETH)."""

# Deriving from a mnemonic is what anvil itself does; eth-account keeps it behind a flag.
Account.enable_unaudited_hdwallet_features()


def derivation_path(index: int) -> str:
    """The BIP-44 path anvil uses for its `index`-th account."""
    if index < 0:
        raise ValueError("an account index is non-negative")
    return f"m/44'/60'/0'/0/{index}"


def derive_account(mnemonic: str, index: int) -> LocalAccount:
    """The account at `index` under `mnemonic`, exactly as anvil funds it."""
    account: LocalAccount = Account.from_mnemonic(mnemonic, account_path=derivation_path(index))
    return account
