"""`ProviderNode` status: what the operator found and did (inventory, chain progress, intents).

Split from `providernode.py` (the spec) because the two change for different reasons: the spec
is the provider's contract, the status is the operator's record.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, StringConstraints

from gpu_provider.api.v1alpha1.common import Condition, WireModel, list_map
from gpu_provider.api.validators import EvmAddress

MAX_PENDING_TXS: Final = 64
"""Intents `status.pendingTxs` holds; the oldest finished ones are pruned first."""
MAX_TX_ATTEMPTS: Final = 32
"""Signed versions of one transaction `status.pendingTxs[].attempts` can hold."""
MAX_CALLDATA_HEX: Final = 16_384
"""Calldata kept per intent, as 0x-hex characters (8 KiB): 64 intents stay under 1 MiB."""
_HASH_PATTERN: Final = r"^0x[0-9a-f]{64}$"
_WEI_PATTERN: Final = r"^(0|[1-9][0-9]{0,77})$"


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
