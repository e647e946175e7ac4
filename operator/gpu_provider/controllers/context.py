"""What every handler of one `gpu-provider run` process shares, handed over in Kopf's memo.

Kopf gives each object a shallow copy of the operator's memo, so this one object (and what it
holds) is shared by every handler, while values a handler sets on its own memo stay with that
object. Nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from gpu_provider.config import Settings
from gpu_provider.controllers.gpulease_runtime import WorkloadRuntime
from gpu_provider.kube.api import ApiClient
from gpu_provider.kube.leader import LeaseElector
from gpu_provider.metrics import OperatorMetrics

__all__ = ["OperatorContext"]


@dataclass
class OperatorContext:
    settings: Settings
    api: ApiClient
    elector: LeaseElector
    metrics: OperatorMetrics
    kubeconfig: Path | str | None = None
    """None: in-cluster credentials."""
    wakers: set[asyncio.Event] = field(default_factory=set)
    """One per running ProviderNode reconcile loop; set when the cluster changed."""
    fingerprints: dict[str, object] = field(default_factory=dict)
    """What each watched Node/Pod looked like last time, so heartbeats wake nothing."""
    workloads: WorkloadRuntime = field(default_factory=WorkloadRuntime)
    """The GpuLease loops' wake-ups, drift reports and cluster facts."""
    close_wakers: set[asyncio.Event] = field(default_factory=set)
    """One per running chain daemon; set to check its leases' close reasons now."""
    reconciling: set[str] = field(default_factory=set)
    """ProviderNodes whose reconcile loop (and so chain session) runs in this process."""

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    def wake_all(self) -> None:
        for waker in self.wakers:
            waker.set()

    def wake_closers(self) -> None:
        for waker in self.close_wakers:
            waker.set()

    def changed(self, key: str, fingerprint: object | None) -> bool:
        """Record `fingerprint` for `key` (None: gone); True when it differs from the last."""
        previous = self.fingerprints.get(key)
        if fingerprint is None:
            self.fingerprints.pop(key, None)
        else:
            self.fingerprints[key] = fingerprint
        return previous != fingerprint
