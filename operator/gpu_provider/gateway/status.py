"""`GET /status`: the provider's public inventory in the shape Spheron's SDK reads (pure).

The SDK (its `getProviderInventory`) reads `cluster.inventory.available.nodes` and, per row:
skips it when `available.gpu` or `allocatable.gpu` is 0, counts `len(allocatable.gpu_infos)`
GPUs named by the first entry's `vendor|name`, and adds `available.gpu` to that name's
available count. So, for the SDK's own grouping to give exactly the offer:

- `gpu_infos` lists one entry per healthy GPU of a catalog model on the row's node (the
  ones offered first, at 100 % free VRAM, then the ones pods hold, at 0 %); unhealthy GPUs
  and cards outside the catalog never appear, because the SDK would count them as sellable;
- `available.gpu` is the number of GPUs offered, never more;
- a node with GPUs of two catalog models becomes one row per model, because the SDK names
  every GPU of a row after its first entry. The first row carries the node's CPU, memory
  and storage; the extra rows (`<node>/<model>`) carry none, so sums over rows stay right.

Units: CPU in millicores, memory and storage in bytes, as in Akash's provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gpu_provider.api.v1alpha1 import LeasePhase
from gpu_provider.inventory.report import GpuRow, InventoryReport, ModelCount, NodeReport
from gpu_provider.market.catalog import GpuCatalog, default_catalog

__all__ = ["StatusCounts", "count_leases", "render_status"]

JsonObject = dict[str, Any]

FREE_VRAM_PERCENT: Final = 100
HELD_VRAM_PERCENT: Final = 0
_FINISHED: Final = frozenset({LeasePhase.CLOSED.value, LeasePhase.FAILED.value})
_SXM = re.compile(r"SXM\d?", re.IGNORECASE)


@dataclass(frozen=True)
class StatusCounts:
    """The counters next to the inventory: leases running, orders bid on, manifests awaited."""

    leases: int = 0
    orders: int = 0
    manifests_awaited: int = 0


def count_leases(leases: Iterable[Mapping[str, Any]], provider_node: str) -> StatusCounts:
    """Leases of `provider_node` that are not Closed or Failed, and how many await a manifest."""
    phases = [
        (lease.get("status") or {}).get("phase") or LeasePhase.AWAITING_MANIFEST.value
        for lease in leases
        if (lease.get("spec") or {}).get("providerNode") == provider_node
    ]
    live = [phase for phase in phases if phase not in _FINISHED]
    awaiting = sum(1 for phase in live if phase == LeasePhase.AWAITING_MANIFEST.value)
    return StatusCounts(leases=len(live), orders=0, manifests_awaited=awaiting)


def render_status(
    report: InventoryReport,
    *,
    hostname: str,
    counts: StatusCounts | None = None,
    storage: Iterable[tuple[str, int]] = (),
    catalog: GpuCatalog | None = None,
) -> JsonObject:
    """The `/status` document for an inventory report (no I/O; same input, same output).

    `hostname` is the ProviderNode's `hostUri`; `storage` lists (class, bytes free) of the
    persistent storage classes offered to leases. Excluded Nodes (cordoned, NotReady, ...)
    offer nothing and have no row.
    """
    counts = counts or StatusCounts()
    catalog = catalog or default_catalog()
    rows: list[JsonObject] = []
    for node in sorted(report.nodes, key=lambda n: n.name):
        rows.extend(_node_rows(node, catalog))
    return {
        "cluster": {
            "leases": counts.leases,
            "inventory": {
                "active": [],
                "pending": [],
                "available": {
                    "nodes": rows,
                    "storage": [{"class": name, "size": size} for name, size in storage],
                },
            },
        },
        "bidengine": {"orders": counts.orders},
        "manifest": {"deployments": counts.manifests_awaited},
        "cluster_public_hostname": hostname,
    }


def _node_rows(node: NodeReport, catalog: GpuCatalog) -> list[JsonObject]:
    # A model with no healthy GPU would give an empty row; the offered models come first.
    groups = sorted(
        (g for g in node.gpus if g.total - g.unhealthy > 0),
        key=lambda g: (-g.offered, g.model),
    )
    if not groups:
        return [_row(node.name, node, None, catalog, first=True)]
    return [
        _row(
            node.name if i == 0 else f"{node.name}/{group.model}",
            node,
            group,
            catalog,
            first=i == 0,
        )
        for i, group in enumerate(groups)
    ]


def _row(
    name: str, node: NodeReport, group: ModelCount | None, catalog: GpuCatalog, *, first: bool
) -> JsonObject:
    infos = _gpu_infos(group, node.gpu_rows, catalog) if group else []
    total, free = node.allocatable, node.available
    return {
        "name": name,
        "allocatable": {
            "cpu": total.cpu_millis if first else 0,
            "gpu": len(infos),
            "memory": total.memory_bytes if first else 0,
            "storage_ephemeral": total.ephemeral_bytes if first else 0,
            "gpu_infos": infos,
        },
        "available": {
            "cpu": free.cpu_millis if first else 0,
            "gpu": group.offered if group else 0,
            "memory": free.memory_bytes if first else 0,
            "storage_ephemeral": free.ephemeral_bytes if first else 0,
        },
    }


def _gpu_infos(
    group: ModelCount, gpu_rows: tuple[GpuRow, ...], catalog: GpuCatalog
) -> list[JsonObject]:
    """One entry per healthy GPU of the model: offered ones at 100 % free VRAM, then the
    ones pods or pending bids hold at 0 %. Unhealthy GPUs are left out: the SDK counts every
    entry as a GPU the provider has."""
    rows = [r for r in gpu_rows if r.model == group.model]
    healthy = [r for r in rows if r.healthy] or rows
    pci_id, interface = _identity(group.model, healthy[0] if healthy else None, catalog)
    model = catalog.by_short_name(group.model)

    def info(free_percent: int) -> JsonObject:
        return {
            "vendor": (model.vendor if model else "nvidia").lower(),
            "name": group.model,
            "model_id": pci_id,
            "interface": interface,
            "memory_size": _memory_size(group.vram_mib),
            "vram_available_percentage": free_percent,
        }

    held = group.total - group.unhealthy - group.offered
    return [info(FREE_VRAM_PERCENT)] * group.offered + [info(HELD_VRAM_PERCENT)] * held


def _identity(model: str, row: GpuRow | None, catalog: GpuCatalog) -> tuple[str, str]:
    """The PCI device id and interface (`SXM5`, `PCIe`): from the agent's PCI id when there is
    one, else from the GFD product name, else the catalog's only variant of the model."""
    if row is not None and row.pci_id:
        found = catalog.pci_device(row.pci_id, memory_mib=row.vram_mib or None)
        if found is not None:
            return found[1].id, found[1].interface
    entry = catalog.by_short_name(model)
    devices = entry.pci_devices if entry else ()
    product = (row.product if row else "").casefold()
    # GFD names PCIe boards "...-PCIe"; the others of a datacenter model are SXM boards.
    is_pcie = "pcie" in product
    candidates = [d for d in devices if (d.interface.casefold() == "pcie") == is_pcie]
    sxm = _SXM.search(product)
    if sxm:
        candidates = [d for d in candidates if d.interface.casefold() == sxm.group(0)] or candidates
    for choice in (candidates, devices):
        if len({d.interface for d in choice}) == 1:
            return choice[0].id, choice[0].interface
    return ((row.pci_id or "") if row else ""), ""


def _memory_size(mib: int) -> str:
    """VRAM as Akash writes it (`80Gi`): whole GiB, rounded to the nearest."""
    if mib <= 0:
        return "0"
    return f"{round(mib / 1024)}Gi"
