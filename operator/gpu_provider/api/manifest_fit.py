"""Does a manifest fit the order it is for? One comparison for the gateway and the devnet tenant.

`order_mismatch` compares with a decoded order spec (the devnet tenant checks before it
sends); the gateway compares with the GpuLease's copy of the order through
`api.manifest_policy.lease_ordered_services`. Both end in `services_mismatch`. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpu_provider.api.manifest import Manifest, Service
from gpu_provider.market import OrderSpec
from gpu_provider.market import Service as OrderService

__all__ = ["OrderedService", "order_mismatch", "ordered_services", "services_mismatch"]


@dataclass(frozen=True, slots=True)
class OrderedService:
    """One service as the order paid for it, per replica (from the order spec or a GpuLease)."""

    name: str
    replicas: int
    cpu_millicores: int
    memory_bytes: int
    storage_bytes: int
    """All the service's volumes together (shm and persistent), per replica."""
    gpu_units: int
    gpu_models: frozenset[str]
    """Catalog short names, lower case; empty means any model."""


def ordered_services(spec: OrderSpec) -> list[OrderedService]:
    return [_ordered(service) for service in spec.services]


def _ordered(paid: OrderService) -> OrderedService:
    return OrderedService(
        name=paid.name,
        replicas=paid.replicas,
        cpu_millicores=paid.cpu_millicores,
        memory_bytes=paid.memory_bytes,
        storage_bytes=sum(volume.size_bytes for volume in paid.storage),
        gpu_units=paid.gpu.units,
        gpu_models=frozenset(ref.model.casefold() for ref in paid.gpu.models),
    )


def order_mismatch(manifest: Manifest, spec: OrderSpec) -> str | None:
    """Why a provider refuses this manifest for a lease of `spec`, or None when it fits."""
    return services_mismatch(manifest, ordered_services(spec))


def services_mismatch(manifest: Manifest, ordered: list[OrderedService]) -> str | None:
    """Why the manifest asks for more than was ordered, or None when it fits.

    Services are matched by name; a manifest may leave an ordered service out, never add one.
    Per replica, each service may ask for no more CPU, memory, storage or GPUs than ordered,
    and only GPU models the order names. Replicas are compared through totals: the SDK's
    order says `ReplicaCount` 1 while the manifest's `count` carries the real number, so
    `count` x per-replica amount must fit in the order's replicas x per-replica amount. The
    provider reserved exactly the order's totals, so a manifest that fits them never takes a
    GPU (or a byte) that was not paid for. Storage is compared as each replica's sum of
    volumes: the SDK sends one `default` volume sized from the first of the order's.
    """
    by_name = {service.name: service for service in ordered}
    extra = sorted(s.name for s in manifest.services() if s.name not in by_name)
    if extra:
        return (
            f"the manifest's services {extra} are not in the order "
            f"(it has {', '.join(sorted(by_name))})"
        )
    for service in manifest.services():
        problem = _resource_mismatch(service, by_name[service.name])
        if problem:
            return f"service {service.name!r} {problem}"
    return None


def _resource_mismatch(service: Service, paid: OrderedService) -> str | None:
    resources = service.resources
    gpu = resources.gpu
    # GPUs first: the scarcest resource, and the reason a tenant most likely sees.
    asked = {
        "GPUs": 0 if gpu is None else gpu.units.amount,
        "millicores of CPU": resources.cpu.units.amount,
        "bytes of memory": resources.memory.size.amount,
        "bytes of storage": sum(volume.size.amount for volume in resources.storage),
    }
    budget = {
        "GPUs": paid.gpu_units,
        "millicores of CPU": paid.cpu_millicores,
        "bytes of memory": paid.memory_bytes,
        "bytes of storage": paid.storage_bytes,
    }
    for what, amount in asked.items():
        if amount > budget[what]:
            return f"asks for {amount} {what} per replica; the order has {budget[what]}"
    for what, amount in asked.items():
        total, paid_total = amount * service.count, budget[what] * paid.replicas
        if total > paid_total:
            return (
                f"asks for {service.count} replicas x {amount} = {total} {what}; the order "
                f"has {paid.replicas} x {budget[what]} = {paid_total}"
            )
    models = set() if gpu is None else {m.casefold() for m in gpu.models()}
    if paid.gpu_models and not models <= paid.gpu_models:
        return (
            f"names the GPU models {sorted(models)}; the order allows only "
            f"{sorted(paid.gpu_models)}"
        )
    return None
