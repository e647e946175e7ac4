"""What the GpuLease handlers of one process share: wake-ups, drift reports, cluster facts.

Keyed by lease id (the label every child carries), so a child's watch event reaches the loop
of its lease. Held by `OperatorContext.workloads`; nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from gpu_provider.config import OperatorSettings
from gpu_provider.kube.api import ApiClient
from gpu_provider.kube.children import cluster_addresses
from gpu_provider.render.network import ClusterNetwork

__all__ = ["Drift", "WorkloadRuntime"]


@dataclass(frozen=True, slots=True)
class Drift:
    """A child changed by someone else: `Kind/name` and what happened."""

    kind: str
    name: str
    what: str


@dataclass
class WorkloadRuntime:
    wakers: dict[str, set[asyncio.Event]] = field(default_factory=dict)
    drift: dict[str, list[Drift]] = field(default_factory=dict)
    seen_edits: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)
    """Per lease: (object uid, manager, time) of hand edits already reported."""
    _network: ClusterNetwork | None = None
    _network_at: float = 0.0

    def register(self, lease_id: str, waker: asyncio.Event) -> None:
        self.wakers.setdefault(lease_id, set()).add(waker)

    def unregister(self, lease_id: str, waker: asyncio.Event) -> None:
        wakers = self.wakers.get(lease_id, set())
        wakers.discard(waker)
        if not wakers:
            self.wakers.pop(lease_id, None)
            self.drift.pop(lease_id, None)
            self.seen_edits.pop(lease_id, None)

    def wake(self, lease_id: str) -> None:
        for waker in self.wakers.get(lease_id, ()):
            waker.set()

    def report(self, lease_id: str, drift: Drift) -> None:
        if lease_id in self.wakers:
            self.drift.setdefault(lease_id, []).append(drift)
            self.wake(lease_id)

    def first_edit(self, lease_id: str, key: tuple[str, str, str]) -> bool:
        """True the first time this hand edit (uid, manager, time) is seen."""
        seen = self.seen_edits.setdefault(lease_id, set())
        if key in seen:
            return False
        seen.add(key)
        return True

    def take_drift(self, lease_id: str) -> list[Drift]:
        return self.drift.pop(lease_id, [])

    async def network(self, api: ApiClient, settings: OperatorSettings) -> ClusterNetwork:
        """The cluster facts the NetworkPolicies need, read again at most once an interval:
        the configured CIDRs, and the Nodes' and API server's addresses as blocked ranges."""
        fresh = time.monotonic() - self._network_at < settings.reconcile_interval_seconds
        if self._network is None or not fresh:
            addresses = await cluster_addresses(api)
            self._network = ClusterNetwork(
                service_cidrs=settings.service_cidrs,
                pod_cidrs=settings.pod_cidrs,
                blocked_cidrs=tuple(f"{a}/{128 if ':' in a else 32}" for a in addresses),
                ingress_namespace=settings.ingress_namespace,
            )
            self._network_at = time.monotonic()
        return self._network
