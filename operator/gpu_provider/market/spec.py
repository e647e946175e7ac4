"""Typed model of a Spheron order spec: what a tenant asked for, decoded and validated.

The on-chain `spec` string is decoded into these frozen models (see `codec`); everything
downstream (eligibility, pricing, the GpuLease resources) works on them and never sees the
compressed text. Limits below reject absurd orders at the boundary instead of letting them
reach the scheduler or the bid math.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Field, model_validator

from gpu_provider.market.placement import MAX_ATTRIBUTES as MAX_ATTRIBUTES
from gpu_provider.market.placement import PLACEMENT_KEYS as PLACEMENT_KEYS
from gpu_provider.market.placement import Placement as Placement
from gpu_provider.market.text import MAX_TEXT_CHARS as MAX_TEXT_CHARS
from gpu_provider.market.text import STRUCTURAL_CHARS as STRUCTURAL_CHARS
from gpu_provider.market.text import Attributes, Name, PathSegment
from gpu_provider.market.text import FrozenModel as _Model
from gpu_provider.market.text import check_text as check_text
from gpu_provider.market.text import unique_keys as _unique_keys

MAX_SPEC_CHARS: Final = 64 * 1024
"""Longest spec string we decode; SDK specs are a few hundred characters."""
MAX_DEPTH: Final = 16
"""Deepest nesting of `{}`/`[]` we accept; the SDK's layout nests 7 levels."""
MAX_SERVICES: Final = 64
MAX_REPLICAS: Final = 1_000
MAX_GPU_UNITS: Final = 64
"""GPUs per replica; one replica runs on one node, and no node has more."""
MAX_CPU_MILLICORES: Final = 1_024_000
MAX_MEMORY_BYTES: Final = 2**44
"""16 TiB per replica."""
MAX_STORAGE_BYTES: Final = 2**50
"""1 PiB per volume."""
MAX_VOLUMES: Final = 32
MAX_ENDPOINTS: Final = 64
MAX_ID: Final = 2**32 - 1

REQ_VRAM_KEY: Final = "req_vram"
STORAGE_CLASS_KEY: Final = "class"
STORAGE_PERSISTENT_KEY: Final = "persistent"


class VramComparison(StrEnum):
    """Operators a `req_vram` value may start with; two-character ones are matched first."""

    AT_LEAST = ">="
    AT_MOST = "<="
    MORE_THAN = ">"
    LESS_THAN = "<"
    EQUAL = "="


class VramRequirement(_Model):
    """`req_vram`: how much of a GPU's VRAM, in percent, must be free (`>=80`: 80 % or more)."""

    op: VramComparison
    percent: int = Field(ge=0, le=100)

    @classmethod
    def parse(cls, text: str) -> VramRequirement:
        """Parse `>=80`, `>50`, ...; raise ValueError saying what a valid value looks like."""
        for op in VramComparison:
            if text.startswith(op.value):
                digits = text[len(op.value) :]
                if digits.isascii() and digits.isdigit() and len(digits) <= 3:
                    percent = int(digits)
                    if percent <= 100:
                        return cls(op=op, percent=percent)
                break
        raise ValueError(
            f"req_vram {text!r} must be a comparison and a percentage from 0 to 100, e.g. '>=80'"
        )

    def text(self) -> str:
        return f"{self.op.value}{self.percent}"

    def satisfied_by(self, free_mib: int, total_mib: int) -> bool:
        """Whether a GPU with `free_mib` of `total_mib` VRAM free meets the requirement.

        Compares `free * 100` with `percent * total` so no float rounding can flip a bid.
        """
        if total_mib <= 0:
            return False
        free, need = free_mib * 100, self.percent * total_mib
        match self.op:
            case VramComparison.AT_LEAST:
                return free >= need
            case VramComparison.AT_MOST:
                return free <= need
            case VramComparison.MORE_THAN:
                return free > need
            case VramComparison.LESS_THAN:
                return free < need
            case VramComparison.EQUAL:
                return free == need


class GpuModelRef(_Model):
    """One acceptable GPU, from the attribute key `vendor/<vendor>/model/<model>`."""

    vendor: PathSegment
    model: PathSegment

    @property
    def key(self) -> str:
        return f"vendor/{self.vendor}/model/{self.model}"

    @classmethod
    def from_key(cls, key: str) -> GpuModelRef | None:
        """The reference a key names, or None when the key is not of that shape."""
        parts = key.split("/")
        shaped = len(parts) == 4 and parts[0] == "vendor" and parts[2] == "model"
        if shaped and parts[1] and parts[3]:
            return cls(vendor=parts[1], model=parts[3])
        return None

    def matches(self, short_name: str, vendor: str = "nvidia") -> bool:
        """Case-insensitive: SDK examples write `rtx3090Ti` for the catalog's `rtx3090ti`."""
        return (
            self.vendor.casefold() == vendor.casefold()
            and self.model.casefold() == short_name.casefold()
        )


def _check_gpu_extra(pairs: Attributes) -> Attributes:
    for key, _ in pairs:
        if key == REQ_VRAM_KEY or GpuModelRef.from_key(key) is not None:
            raise ValueError(f"GPU attribute {key!r} has its own field")
    return pairs


class GpuRequest(_Model):
    """GPUs per replica (`g`). No models listed means any GPU will do.

    `extra_attributes` holds constraints we do not understand; a careful bidder declines an
    order that has any rather than risk serving it wrongly.
    """

    units: int = Field(ge=0, le=MAX_GPU_UNITS)
    models: tuple[GpuModelRef, ...] = Field(default=(), max_length=MAX_ATTRIBUTES)
    vram: VramRequirement | None = None
    extra_attributes: Annotated[Attributes, AfterValidator(_check_gpu_extra)] = Field(
        default=(), max_length=MAX_ATTRIBUTES
    )

    @model_validator(mode="after")
    def _unique(self) -> GpuRequest:
        _unique_keys(self.extra_attributes, frozenset(), "GPU")
        keys = [ref.key for ref in self.models]
        if len(set(keys)) != len(keys):
            raise ValueError("a GPU model is listed twice")
        return self

    def accepts(self, short_name: str, vendor: str = "nvidia") -> bool:
        """Whether this request can be served with GPUs of the given catalog model."""
        if self.units == 0:
            return False
        return not self.models or any(ref.matches(short_name, vendor) for ref in self.models)


def _sorted_by_key(pairs: Attributes) -> Attributes:
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


class StorageVolume(_Model):
    """A volume (`r.s[]`): `storage_class` `ram` is a memory-backed shm, `beta3` persistent.

    The SDK writes a volume's attributes sorted by key, so unknown ones are kept sorted too.
    A size of 0 decodes (the SDK can write it); `servable` says why such an order is skipped.
    """

    name: Name
    size_bytes: int = Field(ge=0, le=MAX_STORAGE_BYTES)
    storage_class: Name | None = None
    persistent: bool | None = None
    extra_attributes: Annotated[Attributes, AfterValidator(_sorted_by_key)] = Field(
        default=(), max_length=MAX_ATTRIBUTES
    )

    @model_validator(mode="after")
    def _extras_are_unknown(self) -> StorageVolume:
        reserved = frozenset({STORAGE_CLASS_KEY, STORAGE_PERSISTENT_KEY})
        _unique_keys(self.extra_attributes, reserved, "storage")
        return self

    @property
    def is_ram(self) -> bool:
        """A RAM-backed volume consumes node memory, not disk."""
        return self.storage_class == "ram"


class EndpointKind(IntEnum):
    """Endpoint kinds, numbered as in the Akash-derived SDK."""

    SHARED_HTTP = 0
    RANDOM_PORT = 1
    LEASED_IP = 2


class Endpoint(_Model):
    kind: EndpointKind
    sequence_number: int = Field(ge=0, le=MAX_ID)


class Service(_Model):
    """One service of the order: `replicas` copies, each needing the resources below.

    Zero CPU or memory decodes (the SDK writes `c:{u:0}` for a service without a CPU figure);
    `servable` gives the reason a bid engine skips such an order.
    """

    name: Name
    resource_id: int = Field(ge=0, le=MAX_ID)
    replicas: int = Field(ge=1, le=MAX_REPLICAS)
    cpu_millicores: int = Field(ge=0, le=MAX_CPU_MILLICORES)
    memory_bytes: int = Field(ge=0, le=MAX_MEMORY_BYTES)
    storage: tuple[StorageVolume, ...] = Field(default=(), max_length=MAX_VOLUMES)
    gpu: GpuRequest = GpuRequest(units=0)
    endpoints: tuple[Endpoint, ...] = Field(default=(), max_length=MAX_ENDPOINTS)
    cpu_attributes: Attributes = Field(default=(), max_length=MAX_ATTRIBUTES)
    memory_attributes: Attributes = Field(default=(), max_length=MAX_ATTRIBUTES)

    @model_validator(mode="after")
    def _unique_attributes(self) -> Service:
        _unique_keys(self.cpu_attributes, frozenset(), "CPU")
        _unique_keys(self.memory_attributes, frozenset(), "memory")
        return self


class GpuNeed(_Model):
    """What one service needs in GPUs: `units_per_replica` on each of `replicas` nodes."""

    service: str
    units_per_replica: int
    replicas: int
    models: tuple[GpuModelRef, ...]
    vram: VramRequirement | None

    @property
    def total(self) -> int:
        return self.units_per_replica * self.replicas


class OrderSpec(_Model):
    """A decoded order: a placement name, placement requirements and the services to run."""

    name: Name
    placement: Placement = Placement()
    services: tuple[Service, ...] = Field(min_length=1, max_length=MAX_SERVICES)

    @model_validator(mode="after")
    def _unique_service_names(self) -> OrderSpec:
        names = [service.name for service in self.services]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"service name {name!r} is used twice")
        return self

    @property
    def total_gpus(self) -> int:
        """GPUs the whole order occupies (units per replica times replicas, summed)."""
        return sum(service.gpu.units * service.replicas for service in self.services)

    @property
    def total_cpu_millicores(self) -> int:
        return sum(service.cpu_millicores * service.replicas for service in self.services)

    @property
    def total_memory_bytes(self) -> int:
        return sum(service.memory_bytes * service.replicas for service in self.services)

    @property
    def total_storage_bytes(self) -> int:
        return sum(
            volume.size_bytes * service.replicas
            for service in self.services
            for volume in service.storage
        )

    def service(self, name: str) -> Service | None:
        return next((service for service in self.services if service.name == name), None)

    def gpu_needs(self) -> tuple[GpuNeed, ...]:
        """Per GPU-using service, what it needs; services without GPUs are left out."""
        return tuple(
            GpuNeed(
                service=service.name,
                units_per_replica=service.gpu.units,
                replicas=service.replicas,
                models=service.gpu.models,
                vram=service.gpu.vram,
            )
            for service in self.services
            if service.gpu.units > 0
        )

    def accepts_model(self, short_name: str, vendor: str = "nvidia") -> bool:
        """Whether every GPU-using service accepts this model (and at least one uses GPUs).

        That is the question a provider offering a single model asks before bidding.
        """
        users = [service.gpu for service in self.services if service.gpu.units > 0]
        return bool(users) and all(gpu.accepts(short_name, vendor) for gpu in users)
