"""Orders, providers and clusters for the bid engine's unit tests, written as a user sees them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from gpu_provider.market import encode
from gpu_provider.market.capacity import Capacity, GpuPool, NodeCapacity
from gpu_provider.market.eligibility import AcceptedToken, BiddingLimits, OrderFacts, ProviderFacts
from gpu_provider.market.pricing import PriceTable, TokenTerms
from gpu_provider.market.spec import (
    GpuModelRef,
    GpuRequest,
    OrderSpec,
    Placement,
    Service,
    StorageVolume,
    VramRequirement,
)

GIB: Final = 2**30
TOKEN: Final = 10**18
USDT: Final = "0x00000000000000000000000000000000000000a1"
OTHER_TOKEN: Final = "0x00000000000000000000000000000000000000b2"
ME: Final = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SOMEONE: Final = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
H100_MIB: Final = 81559
A100_MIB: Final = 81920
PRICES: Final = PriceTable(
    gpu_usd_per_hour={"h100": Decimal("2.50"), "a100-80g": Decimal("1.50")},
    cpu_core_usd_per_hour=Decimal("0.01"),
    memory_gib_usd_per_hour=Decimal("0.001"),
)


def node(
    name: str, *pools: tuple[str, int, int], cpu: int = 64_000, memory: int = 512
) -> NodeCapacity:
    """A node with (model, free GPUs, VRAM MiB) pools, `cpu` millicores and `memory` GiB free."""
    return NodeCapacity(
        name, tuple(GpuPool(m, free, vram, vram) for m, free, vram in pools), cpu, memory * GIB
    )


def cluster() -> Capacity:
    """e2e/topology.yaml's offered GPU nodes: two 8 x H100, two 4 x A100 80 GB."""
    return Capacity.of(
        [
            node("gpu-h100-0", ("h100", 8, H100_MIB), cpu=192_000, memory=2048),
            node("gpu-h100-1", ("h100", 8, H100_MIB), cpu=192_000, memory=2048),
            node("gpu-a100-0", ("a100-80g", 4, A100_MIB), cpu=96_000, memory=1024),
            node("gpu-a100-1", ("a100-80g", 4, A100_MIB), cpu=96_000, memory=1024),
        ]
    )


def provider(**changes: Any) -> ProviderFacts:
    facts: dict[str, Any] = {
        "address": ME,
        "tier": 4,
        "region": "us-east",
        "tokens": (AcceptedToken(USDT, "USDT", TokenTerms(decimals=18, blocks_per_hour=1800)),),
        "prices": PRICES,
        "limits": BiddingLimits(),
    }
    facts.update(changes)
    return ProviderFacts(**facts)


def gpu(units: int, *models: str, vram: str | None = None) -> GpuRequest:
    return GpuRequest(
        units=units,
        models=tuple(GpuModelRef(vendor="nvidia", model=m) for m in models),
        vram=None if vram is None else VramRequirement.parse(vram),
    )


def service(
    name: str = "py",
    *,
    gpus: GpuRequest | None = None,
    replicas: int = 1,
    cpu: int = 4000,
    memory: int = 16 * GIB,
    storage: tuple[StorageVolume, ...] = (),
) -> Service:
    return Service(
        name=name,
        resource_id=1,
        replicas=replicas,
        cpu_millicores=cpu,
        memory_bytes=memory,
        storage=storage,
        gpu=gpus if gpus is not None else gpu(1, "h100"),
    )


def spec(*services: Service, placement: Placement | None = None) -> OrderSpec:
    return OrderSpec(
        name="ml", placement=placement or Placement(), services=services or (service(),)
    )


def order(
    the_spec: OrderSpec | str | None = None, *, max_price: int = TOKEN, **changes: Any
) -> OrderFacts:
    text = the_spec if isinstance(the_spec, str) else encode(the_spec or spec())
    facts: dict[str, Any] = {
        "order_id": 7,
        "max_price": max_price,
        "num_blocks": 1800,
        "token": USDT,
        "spec": text,
        "mode": 1,
        "tiers": (3, 4, 5, 6),
        "creator": SOMEONE,
        "created_block": 100,
    }
    facts.update(changes)
    return OrderFacts(**facts)
