"""Kopf handlers of the chain daemon: the gateway's close request wakes the close check.

The gateway's `PUT /spheron/deployment/close` sets `gpuprovider.dev/close-requested-at` on the
GpuLease. That is a hint, never a reason: it makes every running chain daemon check its
leases against the chain now, and a lease is closed only on what the chain (or the cluster)
shows (docs/leases.md, the positive-evidence rule).
"""

from __future__ import annotations

from typing import Any

import kopf

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.controllers.context import OperatorContext

CLOSE_REQUESTED = "gpuprovider.dev/close-requested-at"


@kopf.on.event(
    GROUP,
    VERSION,
    GPU_LEASE_PLURAL,
    id="chaindaemon-close-requested",
    annotations={CLOSE_REQUESTED: kopf.PRESENT},
)
def close_requested(memo: kopf.Memo, type: str | None, **_: Any) -> None:
    if type in ("ADDED", "MODIFIED", None):
        context: OperatorContext = memo["context"]
        context.wake_closers()
