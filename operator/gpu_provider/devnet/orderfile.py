"""A tenant's order as a person writes it (YAML) -> the marketplace's `OrderSpec` and terms.

The on-chain spec is the SDK's compressed notation (`{n:llm,s:[{n:vllm,r:{i:1,c:{u:4000}...`),
which nobody should write by hand. The YAML says the same in words and units (see
`manifests/examples/order.yaml`):

    name: llm
    duration: 1h                  # 90s, 45m, 1h30m, 2d, or seconds
    maxUsdPerHour: "3.50"         # for the whole order
    tiers: secured                # secured (1-3), community (4-7), any, or a list [1, 2]
    placement: {region: eu-west}
    services:
      - name: vllm
        cpu: 4                    # cores, or "500m"
        memory: 32Gi
        gpu: {units: 1, models: [h100, a100-80g], vram: ">=80"}

Unknown keys are errors (a typo must not silently drop a requirement), GPU models must be in
the GPU catalog, and every amount is exact (no float rounding). Pure: text in, models out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from gpu_provider.api.quantity import QuantityError, quantity_to_exact_int
from gpu_provider.api.quantity import parse_quantity as parse_quantity_exact
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.market import (
    Endpoint,
    EndpointKind,
    GpuModelRef,
    GpuRequest,
    OrderSpec,
    Placement,
    Service,
    StorageVolume,
    TokenTerms,
    VramRequirement,
    affordable_price_per_block,
    default_catalog,
    escrow_needed,
    seconds_to_blocks,
)
from gpu_provider.market.placement import split_list

__all__ = [
    "OrderTerms",
    "TenantOrder",
    "order_terms",
    "parse_duration",
    "parse_order_yaml",
    "parse_quantity",
]

TIER_GROUPS: Final[dict[str, tuple[int, ...]]] = {
    "secured": (1, 2, 3),
    "community": (4, 5, 6, 7),
    "any": (1, 2, 3, 4, 5, 6, 7),
}
_DURATION_PART: Final = re.compile(r"([0-9]+)\s*([smhd])")
_DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ENDPOINT_KINDS: Final = {
    "shared-http": EndpointKind.SHARED_HTTP,
    "random-port": EndpointKind.RANDOM_PORT,
    "leased-ip": EndpointKind.LEASED_IP,
}


def _exact(value: object, what: str) -> Decimal:
    """A Decimal from a YAML int, string or float (a float as written: YAML `3.5` is 3.5)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} must be a number")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative number")
    return number


def parse_quantity(value: object) -> int:
    """Bytes from `32Gi`, `512Mi`, `1G`, `1.5Gi` or a plain integer; must come out whole."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number or a quantity like 32Gi")
    try:
        text = value.strip() if isinstance(value, str) else value
        return quantity_to_exact_int(text, what="bytes")
    except QuantityError as error:
        raise ValueError(f"{value!r} is not a size: {error}") from None


def _millicores(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("cpu must be a number of cores (4, 0.5) or millicores (500m)")
    try:
        millicores = parse_quantity_exact(str(value).strip()) * 1000
    except QuantityError as error:
        raise ValueError(f"{value!r} is not a CPU amount: write 4, 0.5 or 500m ({error})") from None
    if millicores != millicores.to_integral_value():
        raise ValueError(f"cpu {value!r} is finer than a millicore")
    return int(millicores)


def parse_duration(value: object) -> int:
    """Seconds from `90s`, `45m`, `1h30m`, `2d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be seconds or text like 1h30m")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip().replace(" ", "")
        if text.isdigit():
            seconds = int(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration: write e.g. 90s, 45m, 1h30m or 2d")
            seconds = sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError("the duration must be longer than zero")
    return seconds


Bytes = Annotated[int, BeforeValidator(parse_quantity), Field(ge=1)]
Millicores = Annotated[int, BeforeValidator(_millicores), Field(ge=1)]
Seconds = Annotated[int, BeforeValidator(parse_duration)]
Usd = Annotated[Decimal, BeforeValidator(lambda value: _exact(value, "maxUsdPerHour"))]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class _Volume(_Model):
    name: str
    size: Bytes
    storage_class: str | None = Field(default=None, alias="class")
    persistent: bool | None = None


class _Gpu(_Model):
    units: int = Field(ge=0)
    models: tuple[str, ...] = ()
    vram: str | None = None

    @field_validator("models")
    @classmethod
    def _known(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        catalog = default_catalog()
        for name in models:
            if catalog.by_short_name(name) is None:
                known = ", ".join(model.short_name for model in catalog)
                raise ValueError(f"unknown GPU model {name!r}; the catalog has: {known}")
        return tuple(name.strip().casefold() for name in models)


class _Endpoint(_Model):
    kind: Literal["shared-http", "random-port", "leased-ip"] = "shared-http"
    sequence: int = Field(default=0, ge=0)


class _Service(_Model):
    name: str
    replicas: int = Field(default=1, ge=1)
    cpu: Millicores
    memory: Bytes
    storage: tuple[_Volume, ...] = ()
    gpu: _Gpu | None = None
    endpoints: tuple[_Endpoint, ...] = ()


def _value_list(value: object) -> object:
    """`a;b` or a YAML list -> a tuple of items, as the SDK splits `;`-joined placement values."""
    return split_list(value) if isinstance(value, str) else value


ValueList = Annotated[tuple[str, ...] | None, BeforeValidator(_value_list)]


class _Placement(_Model):
    region: str | None = None
    region_exclude: ValueList = None
    desired_provider: ValueList = None
    provider_exclude: ValueList = None
    desired_fizz: ValueList = None
    fizz_exclude: ValueList = None
    cpu_model: str | None = None
    bandwidth: str | None = None


class _OrderFile(_Model):
    name: str
    duration: Seconds
    max_usd_per_hour: Usd
    tiers: Literal["secured", "community", "any"] | tuple[int, ...] = "any"
    placement: _Placement = _Placement()
    services: tuple[_Service, ...] = Field(min_length=1)

    @field_validator("max_usd_per_hour")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("maxUsdPerHour must be more than zero")
        return value

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: str | tuple[int, ...]) -> str | tuple[int, ...]:
        if isinstance(value, tuple):
            if not value or any(not 1 <= tier <= 7 for tier in value):
                raise ValueError("trust tiers are numbers from 1 (most trusted) to 7")
            if len(set(value)) != len(value):
                raise ValueError("a trust tier is listed twice")
        return value


@dataclass(frozen=True, slots=True)
class TenantOrder:
    """An order read from YAML: the spec plus the tenant's money and time terms."""

    spec: OrderSpec
    duration_seconds: int
    max_usd_per_hour: Decimal
    tiers: tuple[int, ...]
    """Trust tiers 1..7 the order accepts (the chain stores them as enum values 0..6)."""


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What goes on chain: blocks, max price per block, escrow to lock (token base units)."""

    num_blocks: int
    max_price_per_block: int
    escrow: int


def parse_order_yaml(text: str, source: str = "the order") -> TenantOrder:
    """Read a tenant's order YAML; DevnetError naming the field and the problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DevnetError(f"{source} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DevnetError(f"{source} must be a YAML mapping with name, duration, services, ...")
    try:
        parsed = _OrderFile.model_validate(document)
        spec = OrderSpec(
            name=parsed.name,
            placement=Placement.model_validate(parsed.placement.model_dump()),
            services=tuple(
                _service(index, service) for index, service in enumerate(parsed.services)
            ),
        )
    except ValidationError as error:
        raise DevnetError(f"{source}: {_describe(error)}") from None
    except ValueError as error:
        raise DevnetError(f"{source}: {error}") from None
    tiers = TIER_GROUPS[parsed.tiers] if isinstance(parsed.tiers, str) else parsed.tiers
    return TenantOrder(
        spec=spec,
        duration_seconds=parsed.duration,
        max_usd_per_hour=parsed.max_usd_per_hour,
        tiers=tuple(sorted(tiers)),
    )


def order_terms(order: TenantOrder, terms: TokenTerms) -> OrderTerms:
    """Blocks for the duration (rounded up) and the per-block budget (rounded down)."""
    num_blocks = seconds_to_blocks(order.duration_seconds, terms.blocks_per_hour)
    max_price = affordable_price_per_block(order.max_usd_per_hour, terms)
    if max_price == 0:
        raise DevnetError(
            f"maxUsdPerHour {order.max_usd_per_hour} is less than one token base unit per block"
        )
    return OrderTerms(
        num_blocks=num_blocks,
        max_price_per_block=max_price,
        escrow=escrow_needed(max_price, num_blocks),
    )


def _service(index: int, service: _Service) -> Service:
    gpu = service.gpu
    return Service(
        name=service.name,
        # The SDK numbers resources 1, 2, ... in service order.
        resource_id=index + 1,
        replicas=service.replicas,
        cpu_millicores=service.cpu,
        memory_bytes=service.memory,
        storage=tuple(
            StorageVolume(
                name=volume.name,
                size_bytes=volume.size,
                storage_class=volume.storage_class,
                persistent=volume.persistent,
            )
            for volume in service.storage
        ),
        gpu=GpuRequest(units=0)
        if gpu is None
        else GpuRequest(
            units=gpu.units,
            models=tuple(GpuModelRef(vendor="nvidia", model=model) for model in gpu.models),
            vram=None if gpu.vram is None else VramRequirement.parse(gpu.vram),
        ),
        endpoints=tuple(
            Endpoint(kind=_ENDPOINT_KINDS[endpoint.kind], sequence_number=endpoint.sequence)
            for endpoint in service.endpoints
        ),
    )


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
