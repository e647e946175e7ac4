"""AsyncContract bindings for the marketplace, from the devnet artifacts' ABIs and the
addresses in `ChainSettings.contracts`.

The artifacts are imported on first use, not at import time, so this module loads (and the
rest of the chain client works) in a tree where they have not been generated yet.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, cast

from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.contract import AsyncContract

from gpu_provider.chain.decoding import Abi
from gpu_provider.chain.errors import ContractNotConfigured
from gpu_provider.chain.records import EventSource, Predicate
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.config import ContractAddresses

ContractName = Literal[
    "TokenRegistry",
    "EscrowUser",
    "EscrowProtocol",
    "ProviderRegistry",
    "ProviderAttributeRegistry",
    "OrderRequest",
    "Bid",
    "ComputeLease",
]

SETTINGS_FIELD: Final[Mapping[ContractName, str]] = {
    "TokenRegistry": "token_registry",
    "EscrowUser": "escrow_user",
    "EscrowProtocol": "escrow_protocol",
    "ProviderRegistry": "provider_registry",
    "ProviderAttributeRegistry": "provider_attribute_registry",
    "OrderRequest": "order_request",
    "Bid": "bid",
    "ComputeLease": "compute_lease",
}
"""Marketplace contract name -> its field in `ContractAddresses`."""

ERC20_ARTIFACT: Final = "TestToken"
"""The ERC-20 artifact whose ABI binds payment tokens."""

TRUST_TIERS: Final = range(1, 8)
"""Trust tiers 1 (most trusted) .. 7; on chain a tier is its enum index, tier - 1."""


def tier_index(tier: int) -> int:
    """The on-chain enum value of trust tier `tier` (1..7): `tier - 1`."""
    if tier not in TRUST_TIERS:
        raise ValueError(f"a trust tier is 1..7, not {tier}")
    return tier - 1


def load_abi(name: str) -> list[dict[str, Any]]:
    """The ABI of artifact `name` (imports `gpu_provider.chain.artifacts` on first use)."""
    artifacts = importlib.import_module("gpu_provider.chain.artifacts")
    return cast(list[dict[str, Any]], artifacts.load_artifact(name).abi)


def bind(w3: AsyncWeb3[Any], abi: Abi, address: str) -> AsyncContract:
    """An AsyncContract at `address` with `abi`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=list(abi))


class Contracts:
    """The marketplace contracts of one network, bound lazily and cached per instance."""

    def __init__(self, w3: AsyncWeb3[Any], addresses: ContractAddresses) -> None:
        self.w3 = w3
        self.addresses = addresses
        self._bound: dict[str, AsyncContract] = {}

    def address(self, name: ContractName) -> str:
        address = getattr(self.addresses, SETTINGS_FIELD[name])
        if address is None:
            raise ContractNotConfigured(
                f"chain.contracts.{SETTINGS_FIELD[name]} is not set: configure the {name} "
                "contract address for this network"
            )
        return str(address)

    def get(self, name: ContractName) -> AsyncContract:
        if name not in self._bound:
            self._bound[name] = bind(self.w3, load_abi(name), self.address(name))
        return self._bound[name]

    def token(self, address: str) -> AsyncContract:
        """An ERC-20 payment token at `address`."""
        key = f"{ERC20_ARTIFACT}@{address.lower()}"
        if key not in self._bound:
            self._bound[key] = bind(self.w3, load_abi(ERC20_ARTIFACT), address)
        return self._bound[key]

    def event_source(
        self,
        name: ContractName,
        events: Sequence[str] | None = None,
        where: Mapping[str, Predicate] | None = None,
    ) -> EventSource:
        """What `EventStream` needs to follow `events` of contract `name`."""
        return EventSource(self.address(name), load_abi(name), events, where or {})

    def update_provider_tier(self, provider: str, tier: int) -> TxRequest:
        """`ProviderRegistry.updateProviderTier`: move a registered provider to trust tier
        `tier` (1..7). Only a registry admin may send it (`AccessControlUnauthorizedAccount`
        otherwise)."""
        return TxRequest.call(
            self.provider_registry,
            "updateProviderTier",
            to_checksum_address(provider),
            tier_index(tier),
        )

    def set_default_tier(self, tier: int) -> TxRequest:
        """`ProviderRegistry.setDefaultTier` (devnet only): the tier (1..7) that providers
        registering from now on start in. Only a registry admin may send it."""
        return TxRequest.call(self.provider_registry, "setDefaultTier", tier_index(tier))

    def error_abis(self) -> list[Abi]:
        """ABIs of every configured contract, for decoding custom errors in reverts."""
        abis: list[Abi] = []
        for name in SETTINGS_FIELD:
            if getattr(self.addresses, SETTINGS_FIELD[name]) is not None:
                abis.append(load_abi(name))
        return abis

    @property
    def token_registry(self) -> AsyncContract:
        return self.get("TokenRegistry")

    @property
    def escrow_user(self) -> AsyncContract:
        return self.get("EscrowUser")

    @property
    def escrow_protocol(self) -> AsyncContract:
        return self.get("EscrowProtocol")

    @property
    def provider_registry(self) -> AsyncContract:
        return self.get("ProviderRegistry")

    @property
    def provider_attribute_registry(self) -> AsyncContract:
        return self.get("ProviderAttributeRegistry")

    @property
    def order_request(self) -> AsyncContract:
        return self.get("OrderRequest")

    @property
    def bid(self) -> AsyncContract:
        return self.get("Bid")

    @property
    def compute_lease(self) -> AsyncContract:
        return self.get("ComputeLease")
