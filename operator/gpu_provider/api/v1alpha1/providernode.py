"""`ProviderNode`: one on-chain provider identity and the cluster capacity it sells."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from gpu_provider.api.v1alpha1.common import (
    Condition,
    LabelSelector,
    SecretReference,
    WireModel,
    cel,
    list_map,
    validations,
)
from gpu_provider.api.validators import (
    DecimalString,
    DnsSubdomainName,
    EvmAddress,
    HostUri,
    Quantity,
)

PROVIDER_NODE_KIND: Final = "ProviderNode"
PROVIDER_NODE_PLURAL: Final = "providernodes"

_SHORT_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,31}$"
_TOKEN_SYMBOL_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9.]{0,15}$"  # noqa: S105 - not a secret
_REGION_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
MAX_PENDING_TXS: Final = 64
"""Intents `status.pendingTxs` holds; the oldest finished ones are pruned first."""
MAX_TX_ATTEMPTS: Final = 32
"""Signed versions of one transaction `status.pendingTxs[].attempts` can hold."""
MAX_CALLDATA_HEX: Final = 16_384
"""Calldata kept per intent, as 0x-hex characters (8 KiB): 64 intents stay under 1 MiB."""
_HASH_PATTERN: Final = r"^0x[0-9a-f]{64}$"
_WEI_PATTERN: Final = r"^(0|[1-9][0-9]{0,77})$"


class ProviderConditionType(StrEnum):
    READY = "Ready"
    REGISTERED = "Registered"
    INVENTORY_READY = "InventoryReady"
    CHAIN_SYNCED = "ChainSynced"
    BIDDING = "Bidding"


class WalletSource(WireModel):
    """The provider's signing key, from a Secret in the operator's namespace.

    Either `privateKeyKey` (a hex key), or `keystoreKey` with `passwordKey` (a keystore JSON
    and its password). The key never leaves the Secret except into the signer's memory.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.privateKeyKey) != has(self.keystoreKey)",
                "set exactly one of privateKeyKey or keystoreKey",
            ),
            cel(
                "has(self.keystoreKey) == has(self.passwordKey)",
                "keystoreKey and passwordKey go together",
            ),
        )
    )

    secret_name: DnsSubdomainName = Field(description="Secret in the operator's namespace")
    private_key_key: str | None = Field(default=None, min_length=1, max_length=253)
    keystore_key: str | None = Field(default=None, min_length=1, max_length=253)
    password_key: str | None = Field(default=None, min_length=1, max_length=253)

    @model_validator(mode="after")
    def _one_source(self) -> WalletSource:
        if (self.private_key_key is None) == (self.keystore_key is None):
            raise ValueError("set exactly one of privateKeyKey or keystoreKey")
        if (self.keystore_key is None) != (self.password_key is None):
            raise ValueError("keystoreKey and passwordKey go together")
        return self


class AcceptedToken(WireModel):
    """An ERC-20 the provider takes as payment, with what one whole token is worth in USD."""

    symbol: str = Field(pattern=_TOKEN_SYMBOL_PATTERN, max_length=16)
    address: EvmAddress
    decimals: int = Field(default=18, ge=0, le=36)
    usd_price: DecimalString = Field(
        default="1", description="USD per whole token, used to turn USD/hour into token/block"
    )
    withdraw_threshold: DecimalString = Field(
        default="10",
        description="earnings in this token are withdrawn to the reward wallet once the "
        "balance reaches this many whole tokens (small balances wait, saving gas)",
    )


class GpuPrice(WireModel):
    """Price of one GPU of a catalog model (short name such as `h100`, `a100-80g`)."""

    model: str = Field(pattern=_SHORT_NAME_PATTERN, max_length=32)
    usd_per_hour: DecimalString


class Pricing(WireModel):
    """What the provider charges, in USD per hour, summed over an order's resources."""

    token: str = Field(
        pattern=_TOKEN_SYMBOL_PATTERN,
        max_length=16,
        description="symbol of an acceptedTokens entry bids are priced in",
    )
    gpu: list[GpuPrice] = Field(min_length=1, max_length=64, json_schema_extra=list_map("model"))
    cpu_core_usd_per_hour: DecimalString = "0"
    memory_gib_usd_per_hour: DecimalString = Field(default="0", alias="memoryGiBUsdPerHour")
    storage_gib_usd_per_hour: DecimalString = Field(default="0", alias="storageGiBUsdPerHour")

    @field_validator("gpu")
    @classmethod
    def _unique_models(cls, prices: list[GpuPrice]) -> list[GpuPrice]:
        seen: set[str] = set()
        for price in prices:
            if price.model in seen:
                raise ValueError(f"GPU model {price.model!r} is priced twice")
            seen.add(price.model)
        return prices


class Bidding(WireModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.maxLeaseBlocks) || self.minLeaseBlocks <= self.maxLeaseBlocks",
                "minLeaseBlocks must not exceed maxLeaseBlocks",
            )
        )
    )

    enabled: bool = True
    max_concurrent_leases: int | None = Field(default=None, ge=1, le=100_000)
    min_lease_blocks: int = Field(default=1, ge=1)
    max_lease_blocks: int | None = Field(default=None, ge=1)
    reservation_timeout_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="how long GPUs stay reserved for a bid that has not been matched",
    )

    @model_validator(mode="after")
    def _block_range(self) -> Bidding:
        if self.max_lease_blocks is not None and self.min_lease_blocks > self.max_lease_blocks:
            raise ValueError("minLeaseBlocks must not exceed maxLeaseBlocks")
        return self


class Maintenance(WireModel):
    """In maintenance the provider stops bidding and is reported as Maintenance on-chain."""

    enabled: bool = False
    reason: str = Field(default="", max_length=256)


class PortRange(WireModel):
    model_config = ConfigDict(
        json_schema_extra=validations(cel("self.min <= self.max", "min must not exceed max"))
    )

    min: int = Field(default=30000, ge=1, le=65535)
    max: int = Field(default=32767, ge=1, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class ImagePolicy(WireModel):
    allowed_registries: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="registry hosts tenants may pull from; empty allows any",
    )
    deny_latest_tag: bool = False


class LeaseDefaults(WireModel):
    """How tenant workloads are run on this cluster."""

    runtime_class_name: DnsSubdomainName | None = Field(
        default=None, description="e.g. `nvidia`, or a sandboxed runtime such as `kata-nvidia`"
    )
    storage_class_name: DnsSubdomainName | None = None
    ingress_class_name: DnsSubdomainName | None = None
    ingress_domain: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$",
        description="HTTP endpoints get <service>-<lease>.<ingressDomain>",
    )
    node_port_range: PortRange = Field(default_factory=PortRange)
    image_policy: ImagePolicy = Field(default_factory=ImagePolicy)
    manifest_deadline_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="a lease whose manifest has not arrived this long after it was taken in "
        "is closed (reason ManifestDeadlinePassed)",
    )


class NodeReservation(WireModel):
    """Resources kept back on every offered Node for the kubelet and system daemons; not sold."""

    cpu: Quantity = "1"
    memory: Quantity = "4Gi"
    ephemeral_storage: Quantity = "20Gi"


class ProviderNodeSpec(WireModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.acceptedTokens.exists(t, t.symbol == self.pricing.token)",
                "pricing.token must name one of acceptedTokens",
                fieldPath=".pricing.token",
            )
        )
    )

    wallet: WalletSource
    reward_wallet: EvmAddress | None = Field(
        default=None, description="where earnings go; defaults to the wallet's address"
    )
    region: str = Field(pattern=_REGION_PATTERN, max_length=63)
    host_uri: HostUri
    certificate_secret_ref: SecretReference | None = None
    accepted_tokens: list[AcceptedToken] = Field(
        min_length=1, max_length=16, json_schema_extra=list_map("symbol")
    )
    node_selector: LabelSelector = Field(default_factory=LabelSelector)
    reserved_per_node: NodeReservation = Field(default_factory=NodeReservation)
    pricing: Pricing
    bidding: Bidding = Field(default_factory=Bidding)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    lease_defaults: LeaseDefaults = Field(default_factory=LeaseDefaults)

    @model_validator(mode="after")
    def _priced_token_is_accepted(self) -> ProviderNodeSpec:
        if not any(t.symbol == self.pricing.token for t in self.accepted_tokens):
            raise ValueError("pricing.token must name one of acceptedTokens")
        return self


# --- status -------------------------------------------------------------------------------


class OnChainStatus(StrEnum):
    UNREGISTERED = "Unregistered"
    REGISTERED = "Registered"
    ACTIVE = "Active"
    MAINTENANCE = "Maintenance"
    SUSPENDED = "Suspended"
    DEACTIVATED = "Deactivated"


class OnChain(WireModel):
    status: OnChainStatus = OnChainStatus.UNREGISTERED
    tier: int | None = Field(default=None, ge=1, le=7)
    attributes_submitted: bool = False
    attributes_approved: bool = False


MAX_INVENTORY_NODE_ROWS: Final = 200
"""Per-node rows `status.inventory.nodes` holds; the rest are counted in `nodesLeftOut`."""
MAX_INVENTORY_MODELS: Final = 128
MAX_UNKNOWN_PRODUCTS: Final = 32
_REASON_PATTERN: Final = r"^[A-Z][A-Za-z0-9]*$"


class ModelInventory(WireModel):
    """GPUs of one catalog model across the selected Nodes (excluded Nodes count in `total`)."""

    model: str = Field(max_length=32, description="catalog short name, e.g. h100")
    resource_id: int = Field(ge=1, description="catalog id: the on-chain GPU attribute id")
    vram_mib: int | None = Field(default=None, ge=0, alias="vramMiB")
    nodes: int = Field(default=0, ge=0)
    total: int = Field(ge=0)
    allocatable: int = Field(ge=0)
    allocated: int = Field(ge=0)
    unhealthy: int = Field(default=0, ge=0)
    reserved: int = Field(default=0, ge=0, description="held for bids not matched yet")
    excluded: int = Field(default=0, ge=0, description="on NotReady, cordoned or tainted Nodes")
    offered: int = Field(ge=0)


class NodeInventory(WireModel):
    """A Node that offers less than it has, and why (Nodes offering everything have no row)."""

    name: str = Field(max_length=253)
    model: str | None = Field(
        default=None, max_length=96, description="catalog short names, or the raw product"
    )
    total: int = Field(ge=0)
    allocatable: int = Field(ge=0)
    allocated: int = Field(ge=0)
    unhealthy: int = Field(default=0, ge=0)
    offered: int = Field(ge=0)
    reason: str | None = Field(
        default=None,
        max_length=64,
        pattern=_REASON_PATTERN,
        description="why this Node offers less than it has: NotReady, Cordoned, "
        "UntoleratedTaint, DevicePluginMissing, UnhealthyGpus, UnknownProduct, SharedGpus, "
        "MigNotOffered, AgentFactsInvalid, AgentFactsMismatch, Reserved, Allocated",
    )
    message: str | None = Field(default=None, max_length=512)


class UnknownGpuProduct(WireModel):
    """GPUs the catalog cannot name: reported with what identifies them, never offered."""

    product: str = Field(max_length=96, description="GFD product label or NVML name")
    pci_id: str | None = Field(default=None, max_length=8)
    memory_mib: int | None = Field(default=None, ge=0, alias="memoryMiB")
    gpus: int = Field(ge=0)
    nodes: int = Field(ge=0)
    example_node: str = Field(max_length=253)


class MigInventory(WireModel):
    """MIG slices of one profile across the selected Nodes; not offered (see docs)."""

    profile: str = Field(max_length=64)
    total: int = Field(ge=0)
    allocated: int = Field(ge=0)


class Inventory(WireModel):
    """What the selected Nodes hold and offer: totals, plus rows only for Nodes that deviate.

    Bounded so that status stays far below the 1.5 MiB object limit at thousands of Nodes.
    """

    total_gpus: int = Field(default=0, ge=0)
    offered_gpus: int = Field(default=0, ge=0)
    allocated_gpus: int = Field(default=0, ge=0)
    unhealthy_gpus: int = Field(default=0, ge=0)
    offered_cpu_cores: int = Field(default=0, ge=0)
    nodes_selected: int = Field(default=0, ge=0)
    nodes_offered: int = Field(default=0, ge=0)
    nodes_excluded: int = Field(default=0, ge=0)
    models: list[ModelInventory] = Field(
        default_factory=list, max_length=MAX_INVENTORY_MODELS, json_schema_extra=list_map("model")
    )
    nodes: list[NodeInventory] = Field(
        default_factory=list,
        max_length=MAX_INVENTORY_NODE_ROWS,
        json_schema_extra=list_map("name"),
    )
    nodes_left_out: int = Field(
        default=0, ge=0, description="deviating Nodes without a row (the list is bounded)"
    )
    unknown_products: list[UnknownGpuProduct] = Field(
        default_factory=list,
        max_length=MAX_UNKNOWN_PRODUCTS,
        description="GPU products not in the catalog: reported, not sold",
    )
    mig: list[MigInventory] = Field(default_factory=list, max_length=64)


class ChainProgress(WireModel):
    """The event stream's checkpoint: every event up to (block, log index) was handled.

    `lastProcessedLogIndex` unset means the whole block is done; the block hash lets a
    restart notice that the block was reorganised away while the operator was down.
    """

    head: int | None = Field(default=None, ge=0)
    last_processed_block: int | None = Field(
        default=None, ge=-1, description="-1: nothing processed yet (start at block 0)"
    )
    last_processed_block_hash: str | None = Field(default=None, pattern=_HASH_PATTERN)
    last_processed_log_index: int | None = Field(default=None, ge=0)


class Earnings(WireModel):
    """Amounts in the token's base units, as decimal strings (uint256 does not fit int64)."""

    token: str
    address: EvmAddress | None = None
    earned: str = "0"
    withdrawn: str = "0"
    balance: str = "0"


class TxStatus(StrEnum):
    """Where a recorded transaction stands (the chain client's `IntentStatus`)."""

    SIGNED = "Signed"
    PENDING = "Pending"
    MINED = "Mined"
    REVERTED = "Reverted"
    FAILED = "Failed"


WeiString = Annotated[str, StringConstraints(pattern=_WEI_PATTERN)]
"""An amount of wei as a decimal string: uint256 does not fit a JSON/CRD integer."""


class TxAttemptRecord(WireModel):
    """One signed version of the transaction (a replacement has the same nonce, higher fees)."""

    tx_hash: str = Field(pattern=_HASH_PATTERN)
    nonce: int = Field(ge=0)
    max_fee_per_gas: WeiString
    max_priority_fee_per_gas: WeiString
    rejected: bool = Field(
        default=False, description="the node refused it; still looked up, never re-sent"
    )


class PendingTx(WireModel):
    """A transaction intent, recorded before it is broadcast so a restart never sends it
    twice. It holds all a restart needs to look the transaction up, broadcast it again or
    re-sign it with higher fees (the calldata, gas, value, chain id), never the key."""

    key: str = Field(min_length=1, max_length=253, description="the idempotency key")
    purpose: str = Field(default="", max_length=64, description="e.g. the contract function")
    sender: EvmAddress
    chain_id: int = Field(ge=1)
    to: EvmAddress | None = Field(default=None, description="unset: a contract creation")
    data: str = Field(
        pattern=r"^0x([0-9a-f]{2})*$",
        max_length=MAX_CALLDATA_HEX,
        description="the calldata, kept to re-sign a replacement after a restart",
    )
    data_hash: str = Field(pattern=_HASH_PATTERN, description="keccak256 of the calldata")
    value: WeiString = "0"
    gas: int = Field(ge=0)
    nonce: int = Field(ge=0)
    status: TxStatus
    attempts: list[TxAttemptRecord] = Field(default_factory=list, max_length=MAX_TX_ATTEMPTS)
    tx_hash: str | None = Field(default=None, pattern=_HASH_PATTERN, description="the mined one")
    block_number: int | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=1024)
    created_at: datetime
    updated_at: datetime


class ProviderNodeStatus(WireModel):
    provider_id: int | None = None
    address: EvmAddress | None = None
    on_chain: OnChain | None = None
    inventory: Inventory | None = None
    chain: ChainProgress | None = None
    earnings: list[Earnings] = Field(default_factory=list)
    pending_txs: list[PendingTx] = Field(
        default_factory=list, max_length=MAX_PENDING_TXS, json_schema_extra=list_map("key")
    )
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    observed_generation: int | None = None


__all__ = [
    "MAX_INVENTORY_NODE_ROWS",
    "MAX_PENDING_TXS",
    "MAX_TX_ATTEMPTS",
    "PROVIDER_NODE_KIND",
    "PROVIDER_NODE_PLURAL",
    "AcceptedToken",
    "Bidding",
    "ChainProgress",
    "GpuPrice",
    "ImagePolicy",
    "Inventory",
    "LeaseDefaults",
    "Maintenance",
    "MigInventory",
    "ModelInventory",
    "NodeInventory",
    "OnChain",
    "OnChainStatus",
    "PendingTx",
    "PortRange",
    "Pricing",
    "ProviderConditionType",
    "ProviderNodeSpec",
    "ProviderNodeStatus",
    "TxAttemptRecord",
    "TxStatus",
    "UnknownGpuProduct",
    "WalletSource",
]
