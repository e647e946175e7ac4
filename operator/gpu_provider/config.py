"""Operator settings: environment variables first, then an optional YAML file, then defaults.

Every process (`run`, `gateway`, `node-agent`, `devnet`) reads the same model so a value is
spelled the same way everywhere. Environment variables use the prefix `GPU_PROVIDER_` and `__`
between nested fields, e.g. `GPU_PROVIDER_CHAIN__CHAIN_ID=84532`. A bad value fails at start
with the field named (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gpu_provider.api.validators import DecimalString, EvmAddress

CONFIG_FILE_ENV = "GPU_PROVIDER_CONFIG"
ENV_PREFIX = "GPU_PROVIDER_"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class ContractAddresses(BaseModel):
    """Addresses of the marketplace contracts. None means "not deployed on this network"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_registry: EvmAddress | None = None
    escrow_user: EvmAddress | None = None
    escrow_protocol: EvmAddress | None = None
    provider_registry: EvmAddress | None = None
    provider_attribute_registry: EvmAddress | None = None
    order_request: EvmAddress | None = None
    bid: EvmAddress | None = None
    compute_lease: EvmAddress | None = None


class TransactionSettings(BaseModel):
    """How the provider's transactions are priced and chased. Fees are in gwei, as strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_fee_per_gas_gwei: DecimalString = Field(
        default="200", description="refuse to send above this max fee per gas (the cap)"
    )
    priority_fee_gwei: DecimalString | None = Field(
        default=None, description="fixed tip; unset: the node's suggestion, clamped below"
    )
    min_priority_fee_gwei: DecimalString = "0.001"
    max_priority_fee_gwei: DecimalString = "5"
    base_fee_multiplier: float = Field(default=2.0, ge=1, le=10)
    gas_margin: float = Field(default=1.2, ge=1, le=5)
    replace_after_seconds: float = Field(
        default=60, gt=0, le=3600, description="re-price a transaction not mined by then"
    )
    receipt_timeout_seconds: float = Field(default=900, gt=0, le=86_400)
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=32,
        description="signed versions of one transaction (replacements included) before the "
        "newest is only re-broadcast",
    )

    @model_validator(mode="after")
    def _tip_bounds(self) -> TransactionSettings:
        if Decimal(self.min_priority_fee_gwei) > Decimal(self.max_priority_fee_gwei):
            raise ValueError("min_priority_fee_gwei must not exceed max_priority_fee_gwei")
        return self


class ChainSettings(BaseModel):
    """Which chain the operator speaks to. Production values come from the Helm chart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str = Field(default="devnet", min_length=1, description="free-form network name")
    chain_id: int = Field(default=31337, ge=1, description="EIP-155 chain id; checked at start")
    rpc_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8545"],
        min_length=1,
        description="RPC endpoints in order of preference; later ones are failovers",
    )
    contracts: ContractAddresses = Field(default_factory=ContractAddresses)
    confirmations: int = Field(
        default=2, ge=0, le=1000, description="blocks an event must be buried under before use"
    )
    blocks_per_hour: int = Field(default=1800, ge=1, description="1800 = 2 s blocks")
    bid_window_blocks: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="blocks after an order's creation that accept bids (Spheron: 1-2; the "
        "devnet's Bid.bidWindow()); Spheron's ABI does not expose it, so it is configured",
    )
    poll_interval_seconds: float = Field(default=2.0, gt=0, le=600)
    log_range: int = Field(default=2000, ge=1, le=100_000, description="eth_getLogs block span")
    request_timeout_seconds: float = Field(default=30, gt=0, le=600)
    retry_preferred_after_seconds: float = Field(
        default=30, gt=0, le=3600, description="how soon a failed-over RPC tries its first URL"
    )
    rpc_probe_timeout_seconds: float = Field(
        default=3, gt=0, le=60, description="timeout of eth_chainId probes of a failed endpoint"
    )
    transactions: TransactionSettings = Field(default_factory=TransactionSettings)

    @field_validator("rpc_urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        checked: list[str] = []
        for url in urls:
            scheme, sep, rest = url.partition("://")
            # Only scheme and host are shown: the path of a hosted RPC URL is its API key.
            shown = f"{scheme}://{rest.split('/', 1)[0].rpartition('@')[2]}"
            if sep and scheme in ("ws", "wss"):
                raise ValueError(
                    f"{shown} is a websocket URL: the chain client polls over http(s), so list "
                    "the provider's https:// endpoint instead"
                )
            if not sep or scheme not in ("http", "https") or not rest:
                raise ValueError(f"{shown if sep else 'an RPC URL'} is not an http(s):// URL")
            checked.append(url)
        return checked


class OperatorSettings(BaseModel):
    """How `gpu-provider run` paces itself and elects its one active instance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reconcile_interval_seconds: float = Field(
        default=60, gt=0, le=3600, description="re-read the cluster and the chain this often"
    )
    debounce_seconds: float = Field(
        default=2, ge=0, le=60, description="wait this long after a change for more to come"
    )
    probe_port: int = Field(default=8080, ge=1, le=65535, description="liveness (/healthz)")
    lease_name: str = Field(
        default="gpu-provider-operator",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="coordination.k8s.io Lease that elects the one active operator",
    )
    lease_duration_seconds: float = Field(
        default=15, ge=2, le=600, description="a standby takes over this long after renewals stop"
    )
    lease_renew_seconds: float = Field(
        default=5, gt=0, le=300, description="how often the active instance renews its Lease"
    )
    watch_server_timeout_seconds: float = Field(default=300, gt=0, le=3600)
    watch_client_timeout_seconds: float = Field(default=330, gt=0, le=3600)
    watch_connect_timeout_seconds: float = Field(default=30, gt=0, le=600)
    stop_timeout_seconds: float = Field(
        default=30, gt=0, le=600, description="how long SIGTERM waits for a reconcile to finish"
    )
    lease_check_interval_seconds: float = Field(
        default=10, gt=0, le=3600, description="the chain daemon checks each lease's close reasons"
    )
    escrow_check_interval_seconds: float = Field(
        default=300, gt=0, le=86_400, description="the tenants' escrow is read this often"
    )
    earnings_interval_seconds: float = Field(
        default=300, gt=0, le=86_400, description="earnings are read (and withdrawn) this often"
    )
    service_cidrs: tuple[str, ...] = Field(
        default=("10.96.0.0/12",),
        min_length=1,
        description="the cluster's Service CIDRs (kube-apiserver --service-cluster-ip-range; "
        "kubeadm's default): lease Pods may not reach them",
    )
    pod_cidrs: tuple[str, ...] = Field(
        default=("10.244.0.0/16",),
        min_length=1,
        description="the cluster's Pod CIDRs (kube-controller-manager --cluster-cidr): lease "
        "Pods may not reach other leases' Pods",
    )
    ingress_namespace: str | None = Field(
        default=None, description="where the ingress controller runs (its Pods reach HTTP ports)"
    )
    workload_failure_deadline_seconds: float = Field(
        default=600,
        ge=10,
        le=86_400,
        description="an image pull error, crash loop or unschedulable Pod this long is recorded "
        "as the lease's WorkloadFailure, and the lease is closed",
    )
    closed_lease_retention_seconds: float = Field(
        default=7 * 86_400,
        ge=0,
        le=365 * 86_400,
        description="a Closed GpuLease is kept this long as a record, then deleted",
    )

    @field_validator("service_cidrs", "pod_cidrs")
    @classmethod
    def _check_cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return cidrs

    @model_validator(mode="after")
    def _renew_within_duration(self) -> OperatorSettings:
        if self.lease_renew_seconds >= self.lease_duration_seconds:
            raise ValueError("lease_renew_seconds must be shorter than lease_duration_seconds")
        return self


class Settings(BaseSettings):
    """Settings shared by every `gpu-provider` process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    namespace: str = Field(
        default="gpu-provider-system",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="namespace the operator runs in and keeps its Secrets in",
    )
    chain: ChainSettings = Field(default_factory=ChainSettings)
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (the YAML file) win over nothing; environment wins over the file,
        # which is what an operator expects from `env:` overrides in a Deployment.
        return (env_settings, init_settings)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names each bad field."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        parts = [str(part) for part in item["loc"]]
        field = ".".join(parts) or "(root)"
        env = ENV_PREFIX + "__".join(p.upper() for p in parts if not p.isdigit())
        lines.append(f"{field}: {item['msg']} (file key {field!r} or env {env})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping at the top level")
    return data


def load_settings(config_file: Path | str | None = None) -> Settings:
    """Load settings from the environment and an optional YAML file.

    The file is `config_file`, else `$GPU_PROVIDER_CONFIG`, else none. Raises `SettingsError`
    naming every bad field, so a process fails at start instead of misbehaving later.
    """
    path = config_file if config_file is not None else os.environ.get(CONFIG_FILE_ENV)
    values = _read_yaml(Path(path)) if path else {}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
