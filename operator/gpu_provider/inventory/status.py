"""`status.inventory` from a report: per-model totals plus rows for the Nodes that deviate.

A status write goes to every watcher of ProviderNodes, and an object is capped at 1.5 MiB, so
it holds totals per model and a row only for a Node that offers less than it has (excluded,
unhealthy, unknown product, shared, MIG, reserved, allocated), most urgent first, at most
`MAX_NODE_ROWS` of them; the rest are counted in `nodesLeftOut`. At 1,000 Nodes it stays under
256 KiB whatever state they are in (bench/inventory measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from gpu_provider.api.v1alpha1.providernode import (
    MAX_INVENTORY_NODE_ROWS,
    MAX_UNKNOWN_PRODUCTS,
    Inventory,
    MigInventory,
    ModelInventory,
    NodeInventory,
    UnknownGpuProduct,
)
from gpu_provider.inventory.report import InventoryReport, NodeIssue, NodeReport, Problem

MAX_NODE_ROWS: Final = MAX_INVENTORY_NODE_ROWS
_MESSAGE_LIMIT: Final = 512
_MODEL_LIMIT: Final = 96

_URGENCY: Final = {
    NodeIssue.UNHEALTHY_GPUS: 1,
    NodeIssue.UNKNOWN_PRODUCT: 2,
    NodeIssue.AGENT_FACTS_INVALID: 3,
    NodeIssue.AGENT_FACTS_MISMATCH: 3,
    NodeIssue.SHARED_GPUS: 4,
    NodeIssue.MIG_NOT_OFFERED: 4,
    NodeIssue.RESERVED: 5,
    NodeIssue.ALLOCATED: 6,
}
"""Row order: exclusions (0) first, then what a provider must fix, then what is just busy."""


def _problems(node: NodeReport) -> list[tuple[int, Problem]]:
    ranked = [(_URGENCY.get(NodeIssue(p.reason), 9), p) for p in node.issues]
    if node.exclusion is not None:
        ranked.append((0, node.exclusion))
    return sorted(ranked, key=lambda item: item[0])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _row(node: NodeReport, problems: list[tuple[int, Problem]]) -> NodeInventory:
    first = problems[0][1]
    message = first.message
    if len(problems) > 1:
        message += f" (also: {', '.join(p.reason for _, p in problems[1:])})"
    models = [g.model for g in node.gpus] + [u.product for u in node.unknown]
    return NodeInventory(
        name=node.name,
        model=_clip(",".join(models), _MODEL_LIMIT) if models else None,
        total=node.total,
        allocatable=node.allocatable_gpus + sum(u.count for u in node.unknown),
        allocated=node.allocated,
        unhealthy=node.unhealthy,
        offered=node.offered,
        reason=str(first.reason),
        message=_clip(message, _MESSAGE_LIMIT),
    )


@dataclass(slots=True)
class _Unknown:
    example: str
    gpus: int = 0
    nodes: set[str] = field(default_factory=set)


def report_to_status(report: InventoryReport, max_node_rows: int = MAX_NODE_ROWS) -> Inventory:
    ranked = []
    for node in (*report.excluded_reports, *report.nodes):
        problems = _problems(node)
        if problems:
            ranked.append((problems[0][0], node.name, node, problems))
    ranked.sort(key=lambda item: (item[0], item[1]))
    rows = [_row(node, problems) for _, _, node, problems in ranked[:max_node_rows]]

    unknown: dict[tuple[str, str | None, int | None], _Unknown] = {}
    for u in report.unknown:
        seen = unknown.setdefault((u.product, u.pci_id, u.memory_mib), _Unknown(example=u.node))
        seen.gpus += u.count
        seen.nodes.add(u.node)
    unknown_rows = [
        UnknownGpuProduct(
            product=_clip(product, _MODEL_LIMIT),
            pci_id=pci,
            memory_mib=memory,
            gpus=seen.gpus,
            nodes=len(seen.nodes),
            example_node=seen.example,
        )
        for (product, pci, memory), seen in sorted(unknown.items(), key=lambda kv: -kv[1].gpus)
    ][:MAX_UNKNOWN_PRODUCTS]

    mig: dict[str, list[int]] = {}
    for node in (*report.nodes, *report.excluded_reports):
        for profile in node.mig:
            entry = mig.setdefault(profile.profile, [0, 0])
            entry[0] += profile.total
            entry[1] += profile.allocated

    return Inventory(
        total_gpus=report.total_gpus,
        offered_gpus=report.offered_gpus,
        allocated_gpus=report.allocated_gpus,
        unhealthy_gpus=sum(m.unhealthy for m in report.models),
        offered_cpu_cores=report.offered_cpu_cores,
        nodes_selected=len(report.nodes) + len(report.excluded),
        nodes_offered=len(report.nodes),
        nodes_excluded=len(report.excluded),
        models=[
            ModelInventory(
                model=m.model,
                resource_id=m.resource_id,
                vram_mib=m.vram_mib,
                nodes=m.nodes,
                total=m.total,
                allocatable=m.allocatable,
                allocated=m.allocated,
                unhealthy=m.unhealthy,
                reserved=m.reserved,
                excluded=m.excluded,
                offered=m.offered,
            )
            for m in report.models
        ],
        nodes=rows,
        nodes_left_out=max(0, len(ranked) - len(rows)),
        unknown_products=unknown_rows,
        mig=[MigInventory(profile=p, total=t, allocated=a) for p, (t, a) in sorted(mig.items())],
    )
