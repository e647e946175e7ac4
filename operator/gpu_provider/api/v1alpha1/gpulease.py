"""`GpuLease`: one on-chain lease matched to this provider, and the workload that serves it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from gpu_provider.api.manifest import (
    ENV_NAME_PATTERN,
    MAX_ARGS,
    MAX_COMMAND,
    MAX_ENV,
    MAX_EXPOSE,
    MAX_MOUNTS,
    MAX_SERVICES,
    SERVICE_NAME_PATTERN,
    Manifest,
)
from gpu_provider.api.manifest import Service as SdkService
from gpu_provider.api.v1alpha1.common import Condition, WireModel, cel, list_map, validations
from gpu_provider.api.validators import DnsSubdomainName, EvmAddress

GPU_LEASE_KIND: Final = "GpuLease"
GPU_LEASE_PLURAL: Final = "gpuleases"

# uint256 as a decimal string: at most 78 digits, no leading zeros.
UINT256_PATTERN: Final = r"^(0|[1-9][0-9]{0,77})$"
_SERVICE_NAME_PATTERN: Final = SERVICE_NAME_PATTERN
GpuModelName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", max_length=32)
]


class LeasePhase(StrEnum):
    AWAITING_MANIFEST = "AwaitingManifest"
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    CLOSING = "Closing"
    CLOSED = "Closed"
    FAILED = "Failed"


class LeaseConditionType(StrEnum):
    READY = "Ready"
    MANIFEST_RECEIVED = "ManifestReceived"
    DEPLOYED = "Deployed"
    CLOSED = "Closed"


class ChainLeaseState(StrEnum):
    ACTIVE = "Active"
    TERMINATED = "Terminated"


def _immutable(field: str) -> JsonDict:
    return validations(cel("self == oldSelf", f"{field} is immutable"))


class StorageRequest(WireModel):
    name: str = Field(pattern=_SERVICE_NAME_PATTERN, max_length=63)
    size_bytes: int = Field(ge=1)
    storage_class: str | None = Field(
        default=None, max_length=63, description="`ram` for shared memory, `beta3` persistent"
    )
    persistent: bool = False


class GpuRequest(WireModel):
    units: int = Field(default=0, ge=0, le=64)
    models: list[GpuModelName] = Field(
        default_factory=list,
        max_length=32,
        description="acceptable catalog models (any of them); empty means any model",
    )
    min_free_vram_percent: int | None = Field(default=None, ge=0, le=100)


class EndpointRequest(WireModel):
    kind: int = Field(ge=0, le=16)
    sequence_number: int = Field(default=0, ge=0)


class ServiceResources(WireModel):
    """One service of the order, as the tenant paid for it."""

    name: str = Field(pattern=_SERVICE_NAME_PATTERN, max_length=63)
    replicas: int = Field(default=1, ge=1, le=1000)
    cpu_millis: int = Field(ge=1)
    memory_bytes: int = Field(ge=1)
    storage: list[StorageRequest] = Field(default_factory=list, max_length=16)
    gpu: GpuRequest = Field(default_factory=GpuRequest)
    endpoints: list[EndpointRequest] = Field(default_factory=list, max_length=32)


class LeaseResources(WireModel):
    """The decoded order spec the lease came from."""

    total_gpus: int = Field(
        ge=1, description="GPUs over all services and replicas; a GpuLease has at least one"
    )
    services: list[ServiceResources] = Field(
        min_length=1, max_length=32, json_schema_extra=list_map("name")
    )

    @model_validator(mode="after")
    def _consistent(self) -> LeaseResources:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError("service names must be unique")
        counted = sum(s.gpu.units * s.replicas for s in self.services)
        if counted != self.total_gpus:
            raise ValueError(f"totalGpus is {self.total_gpus} but the services ask for {counted}")
        return self


class ExposedPort(WireModel):
    port: int = Field(ge=1, le=65535)
    external_port: int | None = Field(default=None, ge=1, le=65535)
    proto: str = Field(default="TCP", pattern=r"^(TCP|UDP)$")
    global_: bool = Field(default=False, alias="global")
    hosts: list[str] = Field(default_factory=list, max_length=16)


class EnvVar(WireModel):
    name: str = Field(pattern=ENV_NAME_PATTERN, max_length=256)
    value: str = Field(default="", max_length=32768)


class VolumeMount(WireModel):
    volume: str = Field(pattern=_SERVICE_NAME_PATTERN, max_length=63)
    path: str = Field(pattern=r"^/", max_length=1024)
    read_only: bool = False


class ManifestService(WireModel):
    name: str = Field(pattern=_SERVICE_NAME_PATTERN, max_length=63)
    image: str = Field(min_length=1, max_length=512)
    replicas: int = Field(
        default=1, ge=1, le=1000, description="the manifest's `count` (the order says 1)"
    )
    command: list[str] = Field(default_factory=list, max_length=MAX_COMMAND)
    args: list[str] = Field(default_factory=list, max_length=MAX_ARGS)
    env: list[EnvVar] = Field(default_factory=list, max_length=MAX_ENV)
    expose: list[ExposedPort] = Field(default_factory=list, max_length=MAX_EXPOSE)
    mounts: list[VolumeMount] = Field(default_factory=list, max_length=MAX_MOUNTS)
    image_pull_secret: DnsSubdomainName | None = Field(
        default=None, description="Secret in the lease namespace made from the tenant's credentials"
    )


# The upload itself is parsed by `gpu_provider.api.manifest`, the one manifest model;
# `LeaseManifest.from_sdk` keeps the part the workload needs, in Kubernetes' terms.
class LeaseManifest(WireModel):
    """What to run, from the tenant's uploaded manifest (credentials are never stored here)."""

    services: list[ManifestService] = Field(
        min_length=1, max_length=MAX_SERVICES, json_schema_extra=list_map("name")
    )
    received_at: datetime | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def from_sdk(
        cls,
        manifest: Manifest,
        *,
        received_at: datetime | None = None,
        sha256: str | None = None,
        pull_secrets: Mapping[str, str] | None = None,
    ) -> LeaseManifest:
        """The lease's view of an uploaded manifest (all groups' services, one list).

        `pull_secrets` names, per service, the Secret its registry credentials went to."""
        secrets = pull_secrets or {}
        return cls(
            services=[
                _lease_service(service, secrets.get(service.name))
                for service in manifest.services()
            ],
            received_at=received_at,
            sha256=sha256,
        )


def _lease_service(service: SdkService, pull_secret: str | None) -> ManifestService:
    mounts = [] if service.params is None else service.params.storage
    return ManifestService(
        name=service.name,
        image=service.image,
        replicas=service.count,
        image_pull_secret=pull_secret,
        command=list(service.command),
        args=list(service.args),
        env=[EnvVar(name=name, value=value) for name, value in service.env_pairs()],
        expose=[
            ExposedPort(
                port=port.port,
                external_port=port.external_port or None,
                proto=port.proto,
                global_=port.global_,
                hosts=list(port.hosts),
            )
            for port in service.expose
        ],
        mounts=[
            VolumeMount(volume=mount.name, path=mount.mount, read_only=mount.read_only)
            for mount in mounts
        ],
    )


class GpuLeaseSpec(WireModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.manifest) || self.manifest.services.all(m, "
                "self.resources.services.exists(s, s.name == m.name))",
                "every manifest service must be a service of the order",
                fieldPath=".manifest.services",
            )
        )
    )

    lease_id: str = Field(
        pattern=UINT256_PATTERN, max_length=78, json_schema_extra=_immutable("leaseId")
    )
    order_id: str = Field(
        pattern=UINT256_PATTERN, max_length=78, json_schema_extra=_immutable("orderId")
    )
    provider_node: DnsSubdomainName
    tenant: EvmAddress = Field(json_schema_extra=_immutable("tenant"))
    token: EvmAddress
    accepted_price: str = Field(
        pattern=UINT256_PATTERN, max_length=78, description="token base units per block"
    )
    start_block: int = Field(ge=0)
    start_time: datetime | None = None
    num_of_blocks: int = Field(ge=1)
    resources: LeaseResources
    manifest: LeaseManifest | None = None

    @model_validator(mode="after")
    def _manifest_matches_order(self) -> GpuLeaseSpec:
        if self.manifest is not None:
            ordered = {s.name for s in self.resources.services}
            extra = [m.name for m in self.manifest.services if m.name not in ordered]
            if extra:
                raise ValueError(f"manifest.services {extra} are not services of the order")
        return self


# --- status -------------------------------------------------------------------------------


class ForwardedPort(WireModel):
    port: int
    external_port: int
    proto: str = "TCP"
    host: str | None = None


class ServiceStatus(WireModel):
    name: str
    replicas: int = Field(default=0, description="replicas the manifest asks for")
    ready_replicas: int = 0
    available_replicas: int = 0
    uris: list[str] = Field(default_factory=list)
    forwarded_ports: list[ForwardedPort] = Field(default_factory=list)


class Placement(WireModel):
    node: str | None = None
    gpus: int = Field(default=0, ge=0)
    model: str | None = None


class WorkloadFailureRecord(WireModel):
    """A failure the workload controller gave up on (`market.closing.WorkloadFailure`): the
    close path reads it from here and closes the lease with reason `WorkloadFailed`."""

    reason: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=64)
    message: str = Field(default="", max_length=4096)
    since: datetime | None = Field(default=None, description="when the failure was first seen")


class GpuLeaseStatus(WireModel):
    phase: LeasePhase | None = None
    namespace: str | None = None
    services: list[ServiceStatus] = Field(default_factory=list)
    placement: Placement | None = None
    chain_state: ChainLeaseState | None = None
    close_reason: str | None = None
    matched_at: datetime | None = None
    manifest_at: datetime | None = None
    running_at: datetime | None = None
    closed_at: datetime | None = None
    applied_manifest_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="the manifest the workload runs"
    )
    failure: WorkloadFailureRecord | None = None
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    observed_generation: int | None = None


__all__ = [
    "GPU_LEASE_KIND",
    "GPU_LEASE_PLURAL",
    "ChainLeaseState",
    "GpuLeaseSpec",
    "GpuLeaseStatus",
    "GpuRequest",
    "LeaseConditionType",
    "LeaseManifest",
    "LeasePhase",
    "LeaseResources",
    "ManifestService",
    "Placement",
    "ServiceResources",
    "ServiceStatus",
    "WorkloadFailureRecord",
]
