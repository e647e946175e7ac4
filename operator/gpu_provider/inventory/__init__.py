"""Pure GPU inventory: Nodes + Pods + GFD labels + the node agent's facts -> the offer.

No I/O (import-linter enforces it): the controller lists Nodes and Pods and calls
`build_inventory`; the advertiser reads `offer_units()` / `cpu_offer_units()`, the gateway the
per-node rows, and the controller writes `to_status()`. Rules: docs/inventory.md.
"""

from gpu_provider.inventory.build import build_inventory
from gpu_provider.inventory.objects import GPU_RESOURCE, LEASE_TOLERATIONS, MIG_RESOURCE_PREFIX
from gpu_provider.inventory.report import (
    CPU_RESOURCE_ID,
    MIG_NOT_OFFERED,
    ExcludedNode,
    ExclusionReason,
    GpuReservation,
    GpuRow,
    InventoryReport,
    MigProfile,
    ModelCount,
    ModelTotals,
    NodeIssue,
    NodeReport,
    Problem,
    Resources,
    UnknownProduct,
)

__all__ = [
    "CPU_RESOURCE_ID",
    "GPU_RESOURCE",
    "LEASE_TOLERATIONS",
    "MIG_NOT_OFFERED",
    "MIG_RESOURCE_PREFIX",
    "ExcludedNode",
    "ExclusionReason",
    "GpuReservation",
    "GpuRow",
    "InventoryReport",
    "MigProfile",
    "ModelCount",
    "ModelTotals",
    "NodeIssue",
    "NodeReport",
    "Problem",
    "Resources",
    "UnknownProduct",
    "build_inventory",
]
