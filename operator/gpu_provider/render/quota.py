"""What each replica of a lease may use, and the ResourceQuota and LimitRange that hold the
whole namespace to exactly the order.

One rule for both the Pods and the quota (`ReplicaBudget`), so they cannot disagree:

- CPU and memory: requests equal limits (Guaranteed QoS: a paid-for lease is never the first
  to be evicted). The order's `ram` volumes (the `/dev/shm` of the Pod) count as memory: the
  kernel charges shared memory to the container's cgroup, so the limit is memory + shm.
- ephemeral storage: the order's volumes that are neither `ram` nor persistent, with a floor
  of `MIN_EPHEMERAL_BYTES` for the container's writable layer and logs.
- GPUs: `nvidia.com/gpu` requests = limits, per replica.
- persistent volumes: one PVC per replica per persistent volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from gpu_provider.api.v1alpha1.gpulease import LeaseResources, ServiceResources, StorageRequest
from gpu_provider.render.namespace import LeaseScope

__all__ = [
    "GPU_RESOURCE",
    "MIN_EPHEMERAL_BYTES",
    "Deployed",
    "ReplicaBudget",
    "bytes_quantity",
    "cpu_quantity",
    "deployed_as_ordered",
    "is_persistent",
    "is_ram",
    "render_limit_range",
    "render_resource_quota",
]

GPU_RESOURCE: Final = "nvidia.com/gpu"
MIN_EPHEMERAL_BYTES: Final = 1024**3
"""A replica whose order has no scratch volume still writes its image layer and logs."""
RAM_CLASS: Final = "ram"
# Spheron's persistent classes (beta1..beta3 in its SDK); `persistent: true` also counts.
PERSISTENT_CLASSES: Final = frozenset({"beta1", "beta2", "beta3"})
QUOTA_NAME: Final = "lease"
_BINARY: Final = (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def is_ram(volume: StorageRequest) -> bool:
    return (volume.storage_class or "").lower() == RAM_CLASS


def is_persistent(volume: StorageRequest) -> bool:
    return volume.persistent or (volume.storage_class or "").lower() in PERSISTENT_CLASSES


def cpu_quantity(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def bytes_quantity(amount: int) -> str:
    """Bytes as Kubernetes writes them back (`16Gi`), exact: a binary suffix only when whole."""
    for suffix, unit in _BINARY:
        if amount and amount % unit == 0:
            return f"{amount // unit}{suffix}"
    return str(amount)


@dataclass(frozen=True, slots=True)
class ReplicaBudget:
    """What one replica of one service is given (limits = requests)."""

    cpu_millis: int
    memory_bytes: int
    shm_bytes: int
    ephemeral_bytes: int
    gpus: int
    persistent_volumes: tuple[StorageRequest, ...]

    @classmethod
    def of(cls, service: ServiceResources, replicas: int | None = None) -> ReplicaBudget:
        """One replica's share when the tenant runs `replicas` of them (the manifest's
        `count`; the order's own number when None). The order's amounts per replica, except
        when the manifest runs more replicas than the order lists (the SDK's orders say 1):
        then what was paid for all of them, split evenly and rounded down, so the replicas
        together never take more than the order."""
        count = replicas or service.replicas
        paid = max(service.replicas, 1)

        def share(amount: int) -> int:
            return amount if count <= paid else amount * paid // count

        shm = share(sum(v.size_bytes for v in service.storage if is_ram(v)))
        scratch = share(
            sum(v.size_bytes for v in service.storage if not is_ram(v) and not is_persistent(v))
        )
        persistent = tuple(
            v.model_copy(update={"size_bytes": max(share(v.size_bytes), 1)})
            for v in service.storage
            if is_persistent(v)
        )
        return cls(
            cpu_millis=max(share(service.cpu_millis), 1),
            memory_bytes=max(share(service.memory_bytes), 1) + shm,
            shm_bytes=shm,
            ephemeral_bytes=max(scratch, MIN_EPHEMERAL_BYTES),
            gpus=share(service.gpu.units),
            persistent_volumes=persistent,
        )

    def resources(self) -> dict[str, dict[str, str]]:
        """The container's `resources`: requests equal to limits."""
        amounts = {
            "cpu": cpu_quantity(self.cpu_millis),
            "memory": bytes_quantity(self.memory_bytes),
            "ephemeral-storage": bytes_quantity(self.ephemeral_bytes),
        }
        if self.gpus:
            amounts[GPU_RESOURCE] = str(self.gpus)
        return {"requests": dict(amounts), "limits": dict(amounts)}


Deployed = tuple[ServiceResources, int]
"""An ordered service and the number of replicas the manifest runs of it."""


def deployed_as_ordered(resources: LeaseResources) -> list[Deployed]:
    return [(service, service.replicas) for service in resources.services]


def _totals(deployed: Sequence[Deployed]) -> dict[str, int]:
    totals = dict.fromkeys(("cpu", "memory", "ephemeral", "gpus", "pods", "pvcs", "storage"), 0)
    for service, n in deployed:
        budget = ReplicaBudget.of(service, n)
        totals["cpu"] += budget.cpu_millis * n
        totals["memory"] += budget.memory_bytes * n
        totals["ephemeral"] += budget.ephemeral_bytes * n
        totals["gpus"] += budget.gpus * n
        totals["pods"] += n
        totals["pvcs"] += len(budget.persistent_volumes) * n
        totals["storage"] += sum(v.size_bytes for v in budget.persistent_volumes) * n
    return totals


def render_resource_quota(
    scope: LeaseScope, deployed: Sequence[Deployed], *, node_ports: int, services: int
) -> dict[str, Any]:
    """The namespace's hard limits: the deployed services' budgets over all their replicas
    (never more than the order's totals), so nothing a tenant's Pod or a hand edit creates
    can take more than was paid for. `node_ports` and `services` are the counts the rendered
    Services use (exactly those, no load balancers)."""
    t = _totals(deployed)
    hard = {
        "requests.cpu": cpu_quantity(t["cpu"]),
        "limits.cpu": cpu_quantity(t["cpu"]),
        "requests.memory": bytes_quantity(t["memory"]),
        "limits.memory": bytes_quantity(t["memory"]),
        "requests.ephemeral-storage": bytes_quantity(t["ephemeral"]),
        "limits.ephemeral-storage": bytes_quantity(t["ephemeral"]),
        # Extended resources are quota'd by their request only (requests = limits for them).
        f"requests.{GPU_RESOURCE}": str(t["gpus"]),
        "pods": str(t["pods"]),
        "persistentvolumeclaims": str(t["pvcs"]),
        "requests.storage": bytes_quantity(t["storage"]),
        "services": str(services),
        "services.nodeports": str(node_ports),
        "services.loadbalancers": "0",
    }
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": scope.metadata(QUOTA_NAME, "quota"),
        "spec": {"hard": hard},
    }


def render_limit_range(scope: LeaseScope, deployed: Sequence[Deployed]) -> dict[str, Any]:
    """The largest single container and PVC the order allows (its largest service's replica),
    so one container cannot take the whole quota; containers must state their own limits
    (the quota tracks limits, so one without is refused rather than defaulted)."""
    budgets = [ReplicaBudget.of(service, n) for service, n in deployed]
    largest = {
        "cpu": cpu_quantity(max(b.cpu_millis for b in budgets)),
        "memory": bytes_quantity(max(b.memory_bytes for b in budgets)),
        "ephemeral-storage": bytes_quantity(max(b.ephemeral_bytes for b in budgets)),
    }
    limits: list[dict[str, Any]] = [{"type": "Container", "max": largest}]
    volumes = [v.size_bytes for b in budgets for v in b.persistent_volumes]
    if volumes:
        limits.append(
            {"type": "PersistentVolumeClaim", "max": {"storage": bytes_quantity(max(volumes))}}
        )
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": scope.metadata(QUOTA_NAME, "quota"),
        "spec": {"limits": limits},
    }
