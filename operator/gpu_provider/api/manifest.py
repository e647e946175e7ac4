"""The deployment manifest, exactly as Spheron's SDK PUTs it to the provider: one model.

The body is a JSON array of groups `[{name, services: [...]}]` in the Akash-derived shape.
The SDK's quirks are accepted, not "fixed" (see "Manifest" in Spheron's protocol notes):

- every service carries one storage entry named `default`, sized from its first volume,
  even when the order lists several, so `params.storage[].name` may name none of them;
- the GPU section has no `req_vram`;
- `expose` entries may carry `portRange`, `portRangeAs` and `usePublicPort`; `hosts`,
  `params`, `command`, `args`, `env` and the attribute lists may be `null`;
- `count` is the real number of replicas (the order's `ReplicaCount` is always 1);
- amounts are strings: `cpu.units.val` in millicores, sizes in bytes, possibly with a
  fraction the SDK's floating point left (rounded up here, as the order spec decoder does).

The gateway, the GpuLease's `spec.manifest` (built from this by `lease_manifest`) and the
devnet tenant all read manifests through this module. Pure: data in, models or
`ManifestError` out.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    model_validator,
)

MAX_GROUPS: Final = 8
MAX_SERVICES: Final = 32
MAX_COMMAND: Final = 64
MAX_ARGS: Final = 256
MAX_ENV: Final = 256
MAX_EXPOSE: Final = 32
MAX_MOUNTS: Final = 16
MAX_ATTRIBUTES: Final = 64
MAX_BODY_BYTES: Final = 1024 * 1024
"""A manifest larger than this is refused before it is parsed."""
SERVICE_NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
ENV_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
_ENV_NAME: Final = re.compile(ENV_NAME_PATTERN)
_AMOUNT: Final = re.compile(r"^[0-9]{1,24}(\.[0-9]{1,24})?$")
_PORT_RANGE: Final = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?$")
_UNKNOWN_FIELD: Final = (
    "unknown field: Spheron's manifest has no such field, and nothing that would ask for "
    "privileged containers, host namespaces (network, PID, IPC), host ports or host paths "
    "is accepted"
)


class ManifestError(ValueError):
    """A manifest that cannot be deployed; the message names the field and the rule."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _amount_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _AMOUNT.match(value):
        return value
    raise ValueError(
        f"must be a non-negative number written as a string, e.g. '8000', not {value!r}"
    )


AmountText = Annotated[str, BeforeValidator(_amount_text)]


def _none_to_empty(value: object) -> object:
    return [] if value is None else value


NULLABLE: Final = BeforeValidator(_none_to_empty)
"""The SDK sends `null` for an empty list; read it as empty."""


class ResourceValue(_Wire):
    """`{"val": "8000"}`: an amount as the SDK writes it, a decimal string."""

    val: AmountText

    @property
    def amount(self) -> int:
        """The whole amount, a fraction rounded up (never serve less than was paid for)."""
        return int(Decimal(self.val).to_integral_value(rounding=ROUND_CEILING))


class Attribute(_Wire):
    key: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=256)


class Cpu(_Wire):
    units: ResourceValue
    """Millicores."""
    attributes: Annotated[list[Attribute], NULLABLE] = Field(
        default_factory=list, max_length=MAX_ATTRIBUTES
    )


class Memory(_Wire):
    size: ResourceValue
    """Bytes."""
    attributes: Annotated[list[Attribute], NULLABLE] = Field(
        default_factory=list, max_length=MAX_ATTRIBUTES
    )


class Storage(_Wire):
    """A volume; the SDK sends one, named `default`, whatever the order's volumes are."""

    name: str = Field(min_length=1, max_length=63)
    size: ResourceValue
    attributes: Annotated[list[Attribute], NULLABLE] = Field(
        default_factory=list, max_length=MAX_ATTRIBUTES
    )


class Gpu(_Wire):
    units: ResourceValue
    attributes: Annotated[list[Attribute], NULLABLE] = Field(
        default_factory=list, max_length=MAX_ATTRIBUTES
    )

    def models(self) -> list[str]:
        """The catalog short names in `vendor/<vendor>/model/<m>` attributes valued true."""
        found = []
        for attribute in self.attributes:
            parts = attribute.key.split("/")
            shaped = len(parts) == 4 and parts[0] == "vendor" and parts[2] == "model"
            if shaped and attribute.value.casefold() == "true":
                found.append(parts[3])
        return found


class ResourceEndpoint(_Wire):
    kind: int = Field(ge=0, le=16)
    sequence_number: int = Field(default=0, ge=0)


class Resources(_Wire):
    id: int = Field(ge=0)
    cpu: Cpu
    memory: Memory
    storage: Annotated[list[Storage], NULLABLE] = Field(default_factory=list, max_length=MAX_MOUNTS)
    gpu: Gpu | None = None
    endpoints: Annotated[list[ResourceEndpoint], NULLABLE] = Field(
        default_factory=list, max_length=MAX_EXPOSE
    )


class HttpOptions(_Wire):
    max_body_size: int | None = Field(default=None, alias="maxBodySize", ge=0)
    read_timeout: int | None = Field(default=None, alias="readTimeout", ge=0)
    send_timeout: int | None = Field(default=None, alias="sendTimeout", ge=0)
    next_tries: int | None = Field(default=None, alias="nextTries", ge=0)
    next_timeout: int | None = Field(default=None, alias="nextTimeout", ge=0)
    next_cases: Annotated[list[str], NULLABLE] = Field(
        default_factory=list, max_length=16, alias="nextCases"
    )


def _port_range(value: object) -> object:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and (value == "" or _PORT_RANGE.match(value)):
        return value
    raise ValueError(f"must be a port or a range such as '8000-8010', not {value!r}")


PortRange = Annotated[int | str | None, BeforeValidator(_port_range)]


class Expose(_Wire):
    port: int = Field(ge=1, le=65535)
    external_port: int = Field(default=0, alias="externalPort", ge=0, le=65535)
    """0 means the same as `port`."""
    proto: Literal["TCP", "UDP"] = "TCP"
    service: str = Field(default="", max_length=63)
    global_: bool = Field(default=False, alias="global")
    hosts: Annotated[list[str], NULLABLE] = Field(default_factory=list, max_length=16)
    http_options: HttpOptions | None = Field(default=None, alias="httpOptions")
    ip: str = Field(default="", max_length=63)
    endpoint_sequence_number: int = Field(default=0, alias="endpointSequenceNumber", ge=0)
    port_range: PortRange = Field(default=None, alias="portRange")
    port_range_as: PortRange = Field(default=None, alias="portRangeAs")
    use_public_port: bool | None = Field(default=None, alias="usePublicPort")


class StorageParams(_Wire):
    name: str = Field(pattern=SERVICE_NAME_PATTERN, max_length=63)
    mount: str = Field(pattern=r"^/", max_length=1024)
    read_only: bool = Field(default=False, alias="readOnly")


class Params(_Wire):
    storage: Annotated[list[StorageParams], NULLABLE] = Field(
        default_factory=list, max_length=MAX_MOUNTS
    )


class Credentials(_Wire):
    """A private registry login; copied into a pull Secret, never into the GpuLease."""

    host: str = Field(min_length=1, max_length=253)
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)
    email: str = Field(default="", max_length=256)


def _env_entry(value: object) -> object:
    if not isinstance(value, str) or "=" not in value:
        raise ValueError(f"an env entry must be KEY=value, not {value!r}")
    if not _ENV_NAME.match(value.partition("=")[0]):
        raise ValueError(f"env name {value.partition('=')[0]!r} must match {ENV_NAME_PATTERN}")
    return value


EnvEntry = Annotated[str, BeforeValidator(_env_entry), Field(max_length=32768)]


class Service(_Wire):
    name: str = Field(pattern=SERVICE_NAME_PATTERN, max_length=63)
    image: str = Field(min_length=1, max_length=512, pattern=r"^\S+$")
    command: Annotated[list[str], NULLABLE] = Field(default_factory=list, max_length=MAX_COMMAND)
    args: Annotated[list[str], NULLABLE] = Field(default_factory=list, max_length=MAX_ARGS)
    env: Annotated[list[EnvEntry], NULLABLE] = Field(default_factory=list, max_length=MAX_ENV)
    credentials: Credentials | None = None
    pull_policy: Literal["Always", "IfNotPresent", "Never", ""] | None = None
    resources: Resources
    count: int = Field(ge=1, le=1000)
    """The real number of replicas (the order's ReplicaCount says 1)."""
    expose: Annotated[list[Expose], NULLABLE] = Field(default_factory=list, max_length=MAX_EXPOSE)
    params: Params | None = None

    def env_pairs(self) -> list[tuple[str, str]]:
        return [(entry.partition("=")[0], entry.partition("=")[2]) for entry in self.env]


class Group(_Wire):
    name: str = Field(min_length=1, max_length=256)
    """The order's placement name."""
    services: list[Service] = Field(min_length=1, max_length=MAX_SERVICES)


class Manifest(RootModel[list[Group]]):
    """The whole body: a non-empty list of groups, service names unique across them."""

    model_config = ConfigDict(frozen=True)
    root: list[Group] = Field(min_length=1, max_length=MAX_GROUPS)

    @model_validator(mode="after")
    def _unique_services(self) -> Manifest:
        names = [service.name for service in self.services()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"service names must be unique across groups: {repeated}")
        if len(names) > MAX_SERVICES:
            raise ValueError(f"has {len(names)} services; the limit is {MAX_SERVICES}")
        return self

    def services(self) -> list[Service]:
        return [service for group in self.root for service in group.services]

    def to_wire(self) -> list[dict[str, Any]]:
        """JSON-ready data in the SDK's field names (what the tenant PUTs)."""
        data: list[dict[str, Any]] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return data


def manifest_sha256(manifest: Manifest) -> str:
    """The manifest's identity: sha256 of its canonical JSON (sorted keys, no spaces), so
    the same manifest re-sent with other whitespace or key order is the same manifest. It
    covers the registry credentials too: a changed password is a changed manifest."""
    canonical = json.dumps(manifest.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_errors(error: ValidationError, limit: int = 5) -> str:
    """`[0].services[1].image: String should have at least 1 character; ...` for a person."""
    parts = []
    for problem in error.errors()[:limit]:
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}"
            for part in problem["loc"]
            if part != "root"
        ).removeprefix(".")
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = _UNKNOWN_FIELD
        parts.append(f"{where}: {message}" if where else message)
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_manifest(data: object) -> Manifest:
    """Validate a manifest from parsed JSON/YAML data, or from the raw body (bytes or str)."""
    if isinstance(data, bytes | str):
        if len(data) > MAX_BODY_BYTES:
            raise ManifestError(f"is {len(data)} bytes long; the limit is {MAX_BODY_BYTES}")
        try:
            data = json.loads(data)
        except ValueError as error:
            raise ManifestError(f"is not valid JSON: {error}") from None
    if not isinstance(data, list) or not data:
        raise ManifestError(
            "must be a non-empty list of groups [{name, services: [...]}], "
            f"not {json.dumps(data)[:40] if isinstance(data, list) else type(data).__name__}"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise ManifestError(describe_errors(error)) from None
