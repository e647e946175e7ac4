"""Reading a provider from the registries, and the transactions that advertise it.

Reads use the getters Spheron's ABI and the devnet share: `ProviderRegistry.
addressToProviderId` (0: not registered), `getProviderByAddress` (spec, hostUri,
certificate, accepted tokens, status, tier, reward wallet), `ProviderAttributeRegistry.
getAttributes` (approved) and `getPendingAttributes` (submitted, awaiting the verifier) per
category, and `TokenRegistry.getTokenAddress` to resolve a symbol. All reads of one
`read_provider` are pinned to one block, so they describe one state of the chain.

`advertise_request` maps a planned `AdvertiseAction` to its contract call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from eth_utils.address import to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError
from web3.types import BlockIdentifier

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import ChainError
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.market.advertise import (
    ABSENT,
    CATEGORIES,
    ActionKind,
    ActualProvider,
    AdvertiseAction,
    ProviderStatus,
)

__all__ = [
    "RegistryUnreadable",
    "UnknownToken",
    "advertise_request",
    "read_attributes",
    "read_provider",
    "resolve_tokens",
]

ZERO_ADDRESS: Final = "0x" + "00" * 20


class UnknownToken(ChainError):
    """A token symbol the TokenRegistry does not know."""


class RegistryUnreadable(ChainError):
    """A registry getter reverted or returned nothing: a wrong contract address, most often."""


async def read_attributes(
    contracts: Contracts, wallet: str, category: str, *, pending: bool, block: BlockIdentifier
) -> tuple[tuple[int, int], ...]:
    """Approved (or, with `pending`, submitted) (resource id, units) pairs of `category`."""
    function = "getPendingAttributes" if pending else "getAttributes"
    registry = contracts.provider_attribute_registry
    raw = await registry.functions[function](to_checksum_address(wallet), category).call(
        block_identifier=block
    )
    return tuple(sorted((int(entry[0]), int(entry[1])) for entry in raw))


async def read_provider(
    contracts: Contracts, wallet: str, *, block: BlockIdentifier = "latest"
) -> ActualProvider:
    """What the registries say about `wallet` at `block`; `ABSENT` if it never registered.

    Raises `RegistryUnreadable` when a getter reverts or answers nothing (no contract at the
    configured address), `RpcUnavailable` when no endpoint answers."""
    try:
        return await _read_provider(contracts, wallet, block)
    except (ContractLogicError, BadFunctionCallOutput) as error:
        raise RegistryUnreadable(
            f"reading provider {wallet} from ProviderRegistry "
            f"{contracts.address('ProviderRegistry')} and ProviderAttributeRegistry "
            f"{contracts.address('ProviderAttributeRegistry')} failed ({error}): check "
            "chain.contracts for this network"
        ) from None


async def _read_provider(
    contracts: Contracts, wallet: str, block: BlockIdentifier
) -> ActualProvider:
    address = to_checksum_address(wallet)
    registry = contracts.provider_registry
    provider_id = await registry.functions.addressToProviderId(address).call(block_identifier=block)
    if int(provider_id) == 0:
        return ABSENT
    (
        spec,
        host_uri,
        certificate,
        tokens,
        status,
        tier,
        _joined,
        reward,
    ) = await registry.functions.getProviderByAddress(address).call(block_identifier=block)
    approved: dict[str, tuple[tuple[int, int], ...]] = {}
    pending: dict[str, tuple[tuple[int, int], ...]] = {}
    for category in CATEGORIES:
        approved[category] = await read_attributes(
            contracts, address, category, pending=False, block=block
        )
        pending[category] = await read_attributes(
            contracts, address, category, pending=True, block=block
        )
    return ActualProvider(
        registered=True,
        status=ProviderStatus(int(status)),
        tier=int(tier) + 1,
        spec=str(spec),
        host_uri=str(host_uri),
        certificate=str(certificate),
        tokens=tuple(str(t) for t in tokens),
        reward_wallet=str(reward),
        approved=approved,
        pending=pending,
    )


async def resolve_tokens(contracts: Contracts, symbols: Iterable[str]) -> dict[str, str]:
    """Symbol -> token address from the TokenRegistry; `UnknownToken` names the first
    symbol it does not know."""
    resolved: dict[str, str] = {}
    registry = contracts.token_registry
    for symbol in symbols:
        try:
            address = str(await registry.functions.getTokenAddress(symbol).call())
        except ContractLogicError:
            address = ZERO_ADDRESS
        if int(address, 16) == 0:
            raise UnknownToken(
                f"the TokenRegistry at {contracts.address('TokenRegistry')} has no token "
                f"{symbol!r}: accept one it lists"
            )
        resolved[symbol] = to_checksum_address(address)
    return resolved


_PROVIDER_CALLS: Final[Mapping[ActionKind, str]] = {
    ActionKind.SPEC: "updateProviderSpec",
    ActionKind.HOST_URI: "updateProviderHostUri",
    ActionKind.CERTIFICATE: "updateProviderCertificate",
    ActionKind.REWARD_WALLET: "updateProviderRewardAddress",
    ActionKind.ADD_TOKEN: "addAcceptedPayment",
    ActionKind.REMOVE_TOKEN: "removeAcceptedPayment",
}


def _address_arg(value: Any) -> Any:
    return (
        to_checksum_address(value) if isinstance(value, str) and value.startswith("0x") else value
    )


def advertise_request(contracts: Contracts, wallet: str, action: AdvertiseAction) -> TxRequest:
    """The transaction that carries out `action` for `wallet`."""
    kind = action.kind
    if kind is ActionKind.REGISTER:
        owner, tokens, spec, host_uri, certificate, reward = action.args
        params = (
            to_checksum_address(owner),
            [to_checksum_address(t) for t in tokens],
            spec,
            host_uri,
            certificate,
            to_checksum_address(reward),
        )
        return TxRequest.call(contracts.provider_registry, "addProvider", params)
    if kind is ActionKind.STATUS:
        (status,) = action.args
        return TxRequest.call(
            contracts.provider_registry,
            "setProviderStatus",
            to_checksum_address(wallet),
            int(status),
        )
    if kind is ActionKind.ATTRIBUTES:
        category, ids, units = action.args
        return TxRequest.call(
            contracts.provider_attribute_registry,
            "submitAttributes",
            category,
            list(ids),
            list(units),
        )
    if kind is ActionKind.REMOVE_ATTRIBUTES:
        (category,) = action.args
        return TxRequest.call(contracts.provider_attribute_registry, "removeAttributes", category)
    function = _PROVIDER_CALLS[kind]
    return TxRequest.call(
        contracts.provider_registry, function, *(_address_arg(a) for a in action.args)
    )
