"""`build_inventory`: Nodes + Pods + the ProviderNode spec -> what the provider can sell.

Pure: the caller lists Nodes and Pods (plain JSON dicts, as the API returns them) and gets an
`InventoryReport`. See `report.py` for what each count means and docs/inventory.md for the
rules with examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.inventory.gpus import node_gpus, read_facts, versions
from gpu_provider.inventory.objects import (
    LEASE_TOLERATIONS,
    PodLoad,
    annotations_of,
    device_resources,
    is_cordoned,
    labels_of,
    loads_by_node,
    mapping,
    node_name,
    ready_problem,
    resources_of,
    untolerated_taints,
)
from gpu_provider.inventory.report import (
    ExcludedNode,
    ExclusionReason,
    GpuReservation,
    InventoryReport,
    ModelCount,
    ModelTotals,
    NodeIssue,
    NodeReport,
    Problem,
    Resources,
)
from gpu_provider.market.catalog import GpuCatalog, default_catalog

__all__ = ["build_inventory"]


def _exclusion(
    node: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]], has_devices: bool
) -> tuple[ExclusionReason, str] | None:
    """The first reason a Node cannot take a lease, in the order a provider would fix them."""
    not_ready = ready_problem(node)
    if not_ready is not None:
        return ExclusionReason.NOT_READY, f"{not_ready}: the Node cannot run Pods"
    if is_cordoned(node):
        return ExclusionReason.CORDONED, "the Node is cordoned (spec.unschedulable)"
    taints = untolerated_taints(node, tolerations)
    if taints:
        return (
            ExclusionReason.UNTOLERATED_TAINT,
            f"lease Pods do not tolerate the taint {', '.join(taints)}",
        )
    if not has_devices:
        return (
            ExclusionReason.DEVICE_PLUGIN_MISSING,
            "the Node has no nvidia.com/gpu or nvidia.com/mig-* resource: is the NVIDIA "
            "device plugin running on it?",
        )
    return None


def _node_report(
    node: Mapping[str, Any],
    catalog: GpuCatalog,
    load: PodLoad,
    reserved: Resources,
    tolerations: Sequence[Mapping[str, Any]],
) -> NodeReport:
    name = node_name(node)
    labels = labels_of(node)
    dev = device_resources(node)
    facts, facts_error = read_facts(annotations_of(node).get(GPU_FACTS_ANNOTATION))
    found = node_gpus(name, catalog, labels, facts, dev, load.gpus, load.mig or {})
    if facts_error is not None:
        found.issues.append(Problem(NodeIssue.AGENT_FACTS_INVALID, facts_error))
    driver, cuda = versions(labels, facts)
    allocatable = resources_of(mapping(mapping(node.get("status")).get("allocatable")))
    allocatable = allocatable.minus(reserved)
    excluded = _exclusion(node, tolerations, dev.present)
    gpus = tuple(found.gpus)
    if excluded is not None:
        gpus = tuple(dataclasses.replace(g, offered=0) for g in gpus)
    return NodeReport(
        name=name,
        gpus=gpus,
        gpu_rows=tuple(found.rows),
        allocatable=allocatable,
        available=allocatable.minus(load.resources),
        driver_version=driver,
        cuda_version=cuda,
        mig=tuple(found.mig),
        unknown=tuple(found.unknown),
        issues=tuple(found.issues),
        exclusion=None if excluded is None else Problem(excluded[0], excluded[1]),
    )


def _reserve(nodes: list[NodeReport], reservations: Iterable[GpuReservation]) -> None:
    """Take reserved GPUs off the offer, in place: pinned ones from their Node, others by name."""
    index = {n.name: i for i, n in enumerate(nodes)}
    for reservation in reservations:
        left = reservation.gpus
        if reservation.node is None:
            order: Iterable[int] = range(len(nodes))
        else:  # a Node that is gone or no longer selected holds nothing for the bid
            order = [index[reservation.node]] if reservation.node in index else []
        for i in order:
            if left <= 0:
                break
            node = nodes[i]
            if node.exclusion is not None:
                continue
            gpus = list(node.gpus)
            for j, count in enumerate(gpus):
                if count.model != reservation.model or count.offered == 0 or left <= 0:
                    continue
                take = min(left, count.offered)
                left -= take
                gpus[j] = dataclasses.replace(
                    count, reserved=count.reserved + take, offered=count.offered - take
                )
            if gpus != list(node.gpus):
                reserved = sum(g.reserved for g in gpus)
                issue = Problem(NodeIssue.RESERVED, f"{reserved} GPUs reserved for open bids")
                issues = tuple(p for p in node.issues if p.reason != NodeIssue.RESERVED)
                nodes[i] = dataclasses.replace(node, gpus=tuple(gpus), issues=(*issues, issue))


def _totals(reports: Iterable[NodeReport]) -> tuple[ModelTotals, ...]:
    acc: dict[str, list[int]] = {}
    first: dict[str, ModelCount] = {}
    for report in reports:
        excluded = report.exclusion is not None
        for g in report.gpus:
            first.setdefault(g.model, g)
            row = acc.setdefault(g.model, [0] * 8)
            for k, value in enumerate(
                (
                    1,
                    g.total,
                    g.allocatable,
                    g.allocated,
                    g.unhealthy,
                    g.reserved,
                    g.total if excluded else 0,
                    g.offered,
                )
            ):
                row[k] += value
    return tuple(
        ModelTotals(first[m].model, first[m].resource_id, first[m].vram_mib, *acc[m])
        for m in sorted(acc, key=lambda m: first[m].resource_id)
    )


def build_inventory(
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    spec: ProviderNodeSpec,
    *,
    reservations: Iterable[GpuReservation] = (),
    catalog: GpuCatalog | None = None,
    tolerations: Sequence[Mapping[str, Any]] = LEASE_TOLERATIONS,
) -> InventoryReport:
    """What the Nodes matching `spec.nodeSelector` can sell, after Pods and reservations.

    `pods` may be every Pod in the cluster: finished Pods and Pods on other Nodes are
    ignored. Every running Pod on a selected Node counts against its CPU and memory; Pods
    requesting `nvidia.com/gpu` (or `nvidia.com/mig-*`) count as allocated GPUs.
    """
    catalog = catalog or default_catalog()
    selected = [n for n in nodes if spec.node_selector.matches(dict(labels_of(n)))]
    names = {node_name(n) for n in selected}
    loads = loads_by_node(pods, names)
    keep = spec.reserved_per_node
    reserved = resources_of(
        {"cpu": keep.cpu, "memory": keep.memory, "ephemeral-storage": keep.ephemeral_storage}
    )
    empty = PodLoad()
    reports = sorted(
        (
            _node_report(n, catalog, loads.get(node_name(n), empty), reserved, tolerations)
            for n in selected
        ),
        key=lambda r: r.name,
    )
    _reserve(reports, reservations)
    offered = tuple(r for r in reports if r.exclusion is None)
    excluded_reports = tuple(r for r in reports if r.exclusion is not None)
    return InventoryReport(
        nodes=offered,
        excluded=tuple(
            ExcludedNode(r.name, ExclusionReason(r.exclusion.reason), r.exclusion.message, r.total)
            for r in excluded_reports
            if r.exclusion is not None
        ),
        unknown=tuple(u for r in reports for u in r.unknown),
        models=_totals(reports),
        excluded_reports=excluded_reports,
    )
