"""`ProviderNode`: one on-chain provider identity and the cluster capacity it sells."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import ConfigDict, Field, field_validator, model_validator

from gpu_provider.api.v1alpha1.common import (
    LabelSelector,
    SecretReference,
    WireModel,
    cel,
    list_map,
    validations,
)
from gpu_provider.api.v1alpha1.providernode_status import (
    MAX_CALLDATA_HEX,
    MAX_INVENTORY_MODELS,
    MAX_INVENTORY_NODE_ROWS,
    MAX_PENDING_TXS,
    MAX_TX_ATTEMPTS,
    MAX_UNKNOWN_PRODUCTS,
    ChainProgress,
    Earnings,
    Inventory,
    MigInventory,
    ModelInventory,
    NodeInventory,
    OnChain,
    OnChainStatus,
    PendingTx,
    ProviderNodeStatus,
    TxAttemptRecord,
    TxStatus,
    UnknownGpuProduct,
    WeiString,
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


class RootImages(StrEnum):
    """What a tenant image whose user is root (most GPU images) is run as."""

    REFUSE = "Refuse"
    """`runAsNonRoot` under `restricted` Pod Security: such an image does not start, and the
    lease reports `ContainerConfigError` to the tenant."""
    RUN_AS_USER = "RunAsUser"
    """Every container runs as uid/gid 1000 (`runAsUser`, `runAsGroup`, `fsGroup`), whatever
    the image's user, still under `restricted`: root images start, without root."""
    ALLOW = "Allow"
    """The image's own user, root included; the namespace enforces `baseline`. Pair it with a
    sandboxed runtime (`runtimeClassName`): root in a container is root on the host kernel."""


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
    root_images: RootImages = Field(
        default=RootImages.REFUSE,
        description="images whose user is root: Refuse (they do not start), RunAsUser (run "
        "as uid 1000 under restricted Pod Security) or Allow (as root, baseline Pod Security)",
    )
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


__all__ = [
    "MAX_CALLDATA_HEX",
    "MAX_INVENTORY_MODELS",
    "MAX_INVENTORY_NODE_ROWS",
    "MAX_PENDING_TXS",
    "MAX_TX_ATTEMPTS",
    "MAX_UNKNOWN_PRODUCTS",
    "PROVIDER_NODE_KIND",
    "PROVIDER_NODE_PLURAL",
    "AcceptedToken",
    "Bidding",
    "ChainProgress",
    "Earnings",
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
    "WeiString",
]
