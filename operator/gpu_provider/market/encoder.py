"""Order spec encoder: `OrderSpec` -> the SDK's compressed spec string.

It writes exactly what the SDK's `compressOrderSpec` writes for the same order (key order,
placement attributes in the SDK's order, storage attributes sorted by key), so the SDK's test
vectors round-trip byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpu_provider.market.errors import OrderSpecError
from gpu_provider.market.spec import (
    MAX_SPEC_CHARS,
    REQ_VRAM_KEY,
    STORAGE_CLASS_KEY,
    STORAGE_PERSISTENT_KEY,
    Endpoint,
    GpuRequest,
    OrderSpec,
    Placement,
    Service,
    StorageVolume,
)


def encode(spec: OrderSpec) -> str:
    """Write an order spec in the SDK's compressed format (key order and all)."""
    text = _obj(
        ("n", spec.name),
        ("pr", _placement(spec.placement)),
        ("s", _arr(_service(service) for service in spec.services)),
    )
    if len(text) > MAX_SPEC_CHARS:
        raise OrderSpecError(
            f"the encoded spec is {len(text)} characters long; the limit is {MAX_SPEC_CHARS}"
        )
    return text


def _obj(*pairs: tuple[str, str]) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


def _arr(items: Iterable[str]) -> str:
    return "[" + ",".join(items) + "]"


def _attrs(pairs: tuple[tuple[str, str], ...]) -> str:
    return _arr(_obj(("k", key), ("v", value)) for key, value in pairs)


def _placement(placement: Placement) -> str:
    attrs = _attrs(placement.known_attributes() + placement.extra_attributes)
    if placement.provider_wallets:
        return _obj(("pw", _arr(placement.provider_wallets)), ("a", attrs))
    return _obj(("a", attrs))


def _service(service: Service) -> str:
    resources = _obj(
        ("i", str(service.resource_id)),
        ("c", _obj(("u", str(service.cpu_millicores)), ("a", _attrs(service.cpu_attributes)))),
        ("m", _obj(("u", str(service.memory_bytes)), ("a", _attrs(service.memory_attributes)))),
        ("s", _arr(_volume(volume) for volume in service.storage)),
        ("g", _gpu(service.gpu)),
        ("e", _arr(_endpoint(endpoint) for endpoint in service.endpoints)),
    )
    return _obj(("n", service.name), ("r", resources), ("c", str(service.replicas)))


def _endpoint(endpoint: Endpoint) -> str:
    return _obj(("k", str(endpoint.kind.value)), ("s", str(endpoint.sequence_number)))


def _volume(volume: StorageVolume) -> str:
    pairs: list[tuple[str, str]] = []
    if volume.storage_class is not None:
        pairs.append((STORAGE_CLASS_KEY, volume.storage_class))
    if volume.persistent is not None:
        pairs.append((STORAGE_PERSISTENT_KEY, "true" if volume.persistent else "false"))
    pairs.extend(volume.extra_attributes)
    pairs.sort(key=lambda pair: pair[0])
    return _obj(("n", volume.name), ("a", _attrs(tuple(pairs))), ("u", str(volume.size_bytes)))


def _gpu(gpu: GpuRequest) -> str:
    pairs = [(ref.key, "true") for ref in gpu.models]
    if gpu.vram is not None:
        pairs.append((REQ_VRAM_KEY, gpu.vram.text()))
    pairs.extend(gpu.extra_attributes)
    if gpu.units == 0 and not pairs:
        # The SDK's default for a service without a GPU section is `{Units: 0, Attributes: []}`,
        # while a GPU section becomes `{Attributes, Units}`: the key order differs.
        return _obj(("u", str(gpu.units)), ("a", "[]"))
    return _obj(("a", _attrs(tuple(pairs))), ("u", str(gpu.units)))
