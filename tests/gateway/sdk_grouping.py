"""Spheron's SDK grouping of a provider's `/status`, re-implemented for tests.

The published `@spheron/protocol-sdk` builds (1.1.1 to 1.3.5 and 2.0.0-browserMainnet.9)
do not contain the function that reads `/status` (`InventoryModule.getProviderInventory` in
the SDK's repository, nodejs/src/modules/inventory), so it cannot be imported and run. This
follows its `groupBy: "gpu"` branch line by line, float arithmetic included:

- a row counts only when `available.gpu > 0` and `allocatable.gpu > 0` and it has
  `allocatable.gpu_infos`;
- it is named by the first entry with a name, as `vendor|name` (vendor defaults to nvidia);
- every entry adds 1 to `allocatable` and `available.gpu / len(gpu_infos)` to `available`.

The SDK then keeps only names in its own GPU list; ours are the catalog's short names.
"""

from __future__ import annotations

from typing import Any


def _node_counts(nodes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = {}
    for node in nodes or []:
        allocatable = (node.get("allocatable") or {}).get("gpu") or 0
        available = (node.get("available") or {}).get("gpu") or 0
        if available <= 0 or allocatable <= 0:
            continue
        infos = node["allocatable"].get("gpu_infos")
        if not infos:
            continue
        per_gpu = available / len(infos)
        found = next((info for info in infos if info.get("name")), None)
        if found is None:
            continue
        key = f"{found.get('vendor') or 'nvidia'}|{found['name']}"
        for _ in infos:
            entry = counts.setdefault(key, {"available": 0, "allocatable": 0})
            entry["available"] += per_gpu
            entry["allocatable"] += 1
    return counts


def group_by_gpu(status: dict[str, Any]) -> dict[str, dict[str, float]]:
    """`{short name: {"available", "allocatable"}}` as the SDK's `groupBy: "gpu"` gives it."""
    nodes = status["cluster"]["inventory"]["available"].get("nodes")
    return {key.split("|", 1)[1]: value for key, value in _node_counts(nodes).items()}


def available_by_gpu(status: dict[str, Any]) -> dict[str, float]:
    """What a tenant is shown as available per GPU model."""
    return {name: value["available"] for name, value in group_by_gpu(status).items()}
