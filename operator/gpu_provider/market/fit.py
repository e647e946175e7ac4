"""Where an order's replicas would run: every replica on one node, after what is promised.

A deterministic greedy search, not an exhaustive one: services that need the most GPUs per
replica go first; for each, the GPU models it accepts are tried from our cheapest price up
(the cheapest bid is the one the matchmaker picks), and each replica goes to the node where it
leaves the fewest GPUs of that model free (best fit, ties by node name), so whole nodes stay
free for large replicas. All replicas of a service get the same model, because the quote
prices one model per service. The search never takes more than a node has; it may decline a
packing that a cleverer search would find, which costs a bid, never a double booking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from gpu_provider.market.capacity import Capacity, GpuPool, OrderPlacement, ReplicaPlacement
from gpu_provider.market.catalog import GpuCatalog
from gpu_provider.market.eligibility import SkipReason
from gpu_provider.market.pricing import PriceTable
from gpu_provider.market.spec import OrderSpec, Service


@dataclass(frozen=True, slots=True)
class Miss:
    """Why the order does not fit: a reason and a sentence naming the service."""

    reason: SkipReason
    message: str


def memory_need(service: Service) -> int:
    """Memory per replica: its memory plus RAM-backed volumes (a shm takes node RAM)."""
    return service.memory_bytes + sum(v.size_bytes for v in service.storage if v.is_ram)


def candidate_models(
    service: Service, capacity: Capacity, prices: PriceTable, catalog: GpuCatalog
) -> tuple[str, ...] | Miss:
    """The catalog models we could give this GPU service, cheapest first; or why none."""
    requested = service.gpu.models
    known = [m for m in catalog if any(ref.matches(m.short_name, m.vendor) for ref in requested)]
    if requested and not known:
        names = ", ".join(ref.model for ref in requested)
        return Miss(
            SkipReason.UNKNOWN_GPU_MODEL,
            f"service {service.name!r} asks for GPU model(s) {names} the catalog does not know",
        )
    ours = capacity.models
    usable = [
        m.short_name
        for m in (known or list(catalog))
        if m.short_name in ours and m.short_name in prices.gpu_usd_per_hour
    ]
    if not usable:
        what = ", ".join(m.short_name for m in known) if known else "any GPU"
        return Miss(
            SkipReason.GPU_MODEL_NOT_OFFERED,
            f"service {service.name!r} asks for {what}; we offer and price none of them",
        )
    return tuple(sorted(usable, key=lambda name: (prices.gpu_usd_per_hour[name], name)))


@dataclass
class _Node:
    name: str
    gpus: dict[str, GpuPool]
    cpu: int
    memory: int


def _vram_ok(service: Service, pool: GpuPool) -> bool:
    need = service.gpu.vram
    return need is None or need.satisfied_by(pool.free_vram_mib, pool.vram_mib)


def _place_service(
    service: Service, model: str | None, nodes: Sequence[_Node]
) -> list[ReplicaPlacement] | None:
    """Place every replica of `service` (taking from `nodes` in place), or None with `nodes`
    untouched when one replica does not fit."""
    units, cpu, memory = service.gpu.units, service.cpu_millicores, memory_need(service)
    taken: list[tuple[_Node, ReplicaPlacement]] = []
    for replica in range(service.replicas):
        fits = [
            n
            for n in nodes
            if n.cpu >= cpu
            and n.memory >= memory
            and (
                model is None
                or (
                    model in n.gpus
                    and n.gpus[model].free >= units
                    and _vram_ok(service, n.gpus[model])
                )
            )
        ]
        if not fits:
            for node, placed in taken:  # give back what the earlier replicas took
                _give(node, placed, +1)
            return None
        node = min(
            fits,
            key=lambda n: (n.gpus[model].free - units if model else 0, n.cpu - cpu, n.name),
        )
        placed = ReplicaPlacement(
            service.name, replica, node.name, model, units if model else 0, cpu, memory
        )
        _give(node, placed, -1)
        taken.append((node, placed))
    return [placed for _, placed in taken]


def _give(node: _Node, placed: ReplicaPlacement, sign: int) -> None:
    node.cpu += sign * placed.cpu_millis
    node.memory += sign * placed.memory_bytes
    if placed.gpu_model is not None and placed.gpus:
        pool = node.gpus[placed.gpu_model]
        node.gpus[placed.gpu_model] = replace(pool, free=pool.free + sign * placed.gpus)


def place_order(
    spec: OrderSpec,
    capacity: Capacity,
    candidates: Mapping[str, tuple[str, ...]],
) -> OrderPlacement | Miss:
    """Place every replica of every service; `candidates`: models per GPU service (cheapest
    first, from `candidate_models`)."""
    nodes = [
        _Node(n.name, {p.model: p for p in n.gpus}, n.cpu_millis, n.memory_bytes)
        for n in capacity.nodes
    ]
    order = sorted(
        spec.services, key=lambda s: (-s.gpu.units, -s.replicas, -s.cpu_millicores, s.name)
    )
    placed: list[ReplicaPlacement] = []
    for service in order:
        models: tuple[str | None, ...] = candidates[service.name] if service.gpu.units else (None,)
        for model in models:
            replicas = _place_service(service, model, nodes)
            if replicas is not None:
                placed.extend(replicas)
                break
        else:
            return _miss(service, models, nodes)
    by_spec = {s.name: i for i, s in enumerate(spec.services)}
    return OrderPlacement(tuple(sorted(placed, key=lambda r: (by_spec[r.service], r.replica))))


def _miss(service: Service, models: tuple[str | None, ...], nodes: Sequence[_Node]) -> Miss:
    where = f"service {service.name!r}"
    gpu_models = [m for m in models if m is not None]
    pools = [n.gpus[m] for n in nodes for m in gpu_models if m in n.gpus]
    if service.gpu.vram is not None and pools and not any(_vram_ok(service, p) for p in pools):
        return Miss(
            SkipReason.NOT_ENOUGH_VRAM,
            f"{where} needs req_vram {service.gpu.vram.text()} of each GPU free; none of our "
            f"{', '.join(gpu_models)} has that",
        )
    need = f"{service.gpu.units} x {'/'.join(gpu_models)}, " if gpu_models else ""
    return Miss(
        SkipReason.NO_NODE_FITS,
        f"{where}: no node has {need}{service.cpu_millicores}m CPU and "
        f"{memory_need(service)} B memory free for each of its {service.replicas} replica(s)",
    )
