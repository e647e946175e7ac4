"""One Node's GPUs: which catalog models, how many of each, healthy, allocated, MIG, shared.

The device plugin counts GPUs (`nvidia.com/gpu`) but does not name them; GPU Feature Discovery
names one product per Node (`nvidia.com/gpu.product`); the node agent's annotation lists every
GPU with its NVML name, PCI id, memory and health. Mapping to the catalog uses the GFD product
first, then the PCI id plus memory size.

A Node with two models: GFD names only one of them, so the split comes from the agent's facts,
used only when they count the same whole GPUs as the device plugin. Kubernetes does not say
which card a Pod got, so the Node's allocated and device-plugin-unhealthy GPUs are spread over
the models largest-remaining-first: the per-model numbers are an estimate, their sum is exact,
and no model is ever offered more than the Node has free. Without the agent, a Node is taken to
hold GFD's one product (GFD itself assumes that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from gpu_provider.api.nodefacts import GpuFacts, NodeFactsError, NodeGpuFacts, parse_node_facts
from gpu_provider.inventory.objects import DeviceResources, quantity
from gpu_provider.inventory.report import (
    MIG_NOT_OFFERED,
    GpuRow,
    MigProfile,
    ModelCount,
    NodeIssue,
    Problem,
    UnknownProduct,
)
from gpu_provider.market.catalog import GFD_MIG_MARKER, GFD_SHARED_SUFFIX, GpuCatalog, GpuModel

PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
MEMORY_LABEL: Final = "nvidia.com/gpu.memory"
COUNT_LABEL: Final = "nvidia.com/gpu.count"
REPLICAS_LABEL: Final = "nvidia.com/gpu.replicas"
SHARING_LABEL: Final = "nvidia.com/gpu.sharing-strategy"
UNKNOWN_PRODUCT_NAME: Final = "unknown"


@lru_cache(maxsize=2048)
def _facts(value: str) -> NodeGpuFacts | str:
    """Parsed facts, or the error sentence (annotations repeat across recomputes: memoised)."""
    try:
        return parse_node_facts(value)
    except NodeFactsError as exc:
        return str(exc)


def read_facts(value: str | None) -> tuple[NodeGpuFacts | None, str | None]:
    if value is None:
        return None, None
    parsed = _facts(value)
    return (None, parsed) if isinstance(parsed, str) else (parsed, None)


@lru_cache(maxsize=1024)
def _by_product(catalog: GpuCatalog, product: str, memory_mib: int | None) -> GpuModel | None:
    """Catalog lookups, memoised: a thousand Nodes name the same few products."""
    return catalog.by_gfd_product(product, memory_mib)


@lru_cache(maxsize=1024)
def _by_facts(catalog: GpuCatalog, name: str, pci: str, memory_mib: int) -> GpuModel | None:
    # GFD derives its product label from NVML's name with spaces as dashes: try that first.
    by_name = catalog.by_gfd_product(name.strip().replace(" ", "-"), memory_mib)
    return by_name or catalog.by_pci_id(pci, memory_mib=memory_mib)


def model_of_facts(catalog: GpuCatalog, gpu: GpuFacts) -> GpuModel | None:
    """The agent's GPU by its NVML name as GFD would label it, then by PCI id + memory."""
    return _by_facts(catalog, gpu.name, gpu.pci_device_id, gpu.memory_mib)


def versions(
    labels: Mapping[str, str], facts: NodeGpuFacts | None
) -> tuple[str | None, str | None]:
    """Driver and CUDA versions: the agent's, else GFD's labels (new names, then old)."""

    def label(*names: str) -> str | None:
        return next((labels[n] for n in names if labels.get(n)), None)

    driver = facts.driver_version if facts else None
    cuda = facts.cuda_version if facts else None
    if driver is None:
        parts = [
            label(f"nvidia.com/cuda.driver-version.{p}", f"nvidia.com/cuda.driver.{p}")
            for p in ("major", "minor", "revision")
        ]
        if parts[2] is None:
            parts[2] = label("nvidia.com/cuda.driver.rev")
        if parts[0] and parts[1]:
            driver = ".".join(p for p in parts if p)
    if cuda is None:
        major = label("nvidia.com/cuda.runtime-version.major", "nvidia.com/cuda.runtime.major")
        minor = label("nvidia.com/cuda.runtime-version.minor", "nvidia.com/cuda.runtime.minor")
        if major and minor:
            cuda = f"{major}.{minor}"
    return driver, cuda


@dataclass(slots=True)
class _Group:
    """GPUs of one product on the Node; `model` None when the catalog cannot name them."""

    model: GpuModel | None
    product: str
    pci_id: str | None
    memory_mib: int | None
    gpus: list[GpuFacts | None]
    agent_bad: int
    dp_bad: int = 0
    allocated: int = 0

    @property
    def count(self) -> int:
        return len(self.gpus)

    @property
    def unhealthy(self) -> int:
        return max(self.agent_bad, self.dp_bad)


@dataclass(slots=True)
class NodeGpus:
    gpus: list[ModelCount] = field(default_factory=list)
    rows: list[GpuRow] = field(default_factory=list)
    mig: list[MigProfile] = field(default_factory=list)
    unknown: list[UnknownProduct] = field(default_factory=list)
    issues: list[Problem] = field(default_factory=list)


def _spread(amount: int, groups: list[_Group], room: list[int]) -> list[int]:
    """`amount` units over groups, each to the one with most `room` left; overflow to the first."""
    if len(groups) == 1:
        return [amount]
    given = [0] * len(groups)
    left = list(room)
    for _ in range(amount):
        best = max(range(len(groups)), key=lambda i: (left[i], -i))
        if left[best] <= 0:
            given[0] += 1
            continue
        given[best] += 1
        left[best] -= 1
    return given


def _mig_profile(product: str) -> str:
    at = product.casefold().find(GFD_MIG_MARKER)
    return product[at + len(GFD_MIG_MARKER) :] if at >= 0 else product


def _shared(labels: Mapping[str, str], capacity: int) -> tuple[int, str] | None:
    """(GPUs per physical card, why) when time-slicing or MPS shares the GPUs, else None."""
    replicas = quantity(labels.get(REPLICAS_LABEL)) or 1
    strategy = labels.get(SHARING_LABEL, "none")
    product = labels.get(PRODUCT_LABEL, "")
    count = quantity(labels.get(COUNT_LABEL))
    if replicas > 1:
        return replicas, f"{REPLICAS_LABEL}={replicas}"
    if strategy not in ("", "none"):
        return max(replicas, 1), f"{SHARING_LABEL}={strategy}"
    if product.casefold().endswith(GFD_SHARED_SUFFIX):
        return 1, f"{PRODUCT_LABEL}={product}"
    if count and capacity > count:
        return math.ceil(capacity / count), f"{capacity} nvidia.com/gpu on {count} physical GPUs"
    return None


def _groups(
    catalog: GpuCatalog,
    labels: Mapping[str, str],
    whole: list[GpuFacts] | None,
    physical: int,
    facts_bad: int,
) -> tuple[list[_Group], str | None]:
    """The Node's GPUs by product: from the agent when its count agrees, else GFD's one.

    Also a sentence when GFD and the agent name different models for a one-product Node.
    """
    label = labels.get(PRODUCT_LABEL) or None
    label_memory = quantity(labels.get(MEMORY_LABEL))
    by_label = _by_product(catalog, label, label_memory) if label else None
    if whole is not None and len(whole) == physical:
        split: dict[object, _Group] = {}
        for gpu in whole:
            model = model_of_facts(catalog, gpu)
            key: object = model.short_name if model else (gpu.name, gpu.pci_device_id)
            group = split.get(key)
            if group is None:
                group = split[key] = _Group(
                    model, gpu.name, gpu.pci_device_id, gpu.memory_mib, [], 0
                )
            group.gpus.append(gpu)
            group.agent_bad += not gpu.healthy
        groups = list(split.values())
        if len(groups) > 1 or by_label is None:
            return groups, None
        agent_model, groups[0].model = groups[0].model, by_label  # one product: GFD comes first
        if agent_model is None or agent_model == by_label:
            return groups, None
        return groups, (
            f"GFD labels the GPUs {by_label.short_name}, the node agent reports "
            f"{agent_model.short_name}: offered as GFD's {by_label.short_name}; check the "
            f"{PRODUCT_LABEL} label"
        )
    first = whole[0] if whole else None
    model = by_label or (model_of_facts(catalog, first) if first else None)
    product = label or (first.name if first else UNKNOWN_PRODUCT_NAME)
    memory = label_memory or (first.memory_mib if first else None)
    pci = first.pci_device_id if first else None
    return [_Group(model, product, pci, memory, [None] * physical, min(facts_bad, physical))], None


def node_gpus(
    node: str,
    catalog: GpuCatalog,
    labels: Mapping[str, str],
    facts: NodeGpuFacts | None,
    dev: DeviceResources,
    pod_gpus: int,
    pod_mig: Mapping[str, int],
) -> NodeGpus:
    out = NodeGpus()
    for profile, (cap, alloc) in sorted(dev.mig.items()):
        out.mig.append(MigProfile(profile, cap, alloc, pod_mig.get(profile, 0)))
    capacity = dev.gpu_capacity or 0
    product = labels.get(PRODUCT_LABEL, "")
    if capacity and GFD_MIG_MARKER in product.casefold():
        # MIG "single" strategy: nvidia.com/gpu counts slices, not whole GPUs.
        out.mig.append(MigProfile(_mig_profile(product), capacity, dev.gpu_allocatable, pod_gpus))
        capacity = 0
    if out.mig:
        out.issues.append(Problem(NodeIssue.MIG_NOT_OFFERED, MIG_NOT_OFFERED))
    if not capacity:
        return out

    shared = _shared(labels, capacity)
    per_card = shared[0] if shared else 1
    physical = math.ceil(capacity / per_card)
    dp_bad = math.ceil((capacity - dev.gpu_allocatable) / per_card)
    allocated = min(physical, math.ceil(pod_gpus / per_card)) if shared else pod_gpus
    whole = [g for g in facts.gpus if not g.mig_enabled] if facts else None
    facts_bad = sum(not g.healthy for g in whole or ())
    if whole is not None and len(whole) != physical:
        out.issues.append(
            Problem(
                NodeIssue.AGENT_FACTS_MISMATCH,
                f"the node agent reports {len(whole)} whole GPUs, the device plugin {physical}: "
                "GPUs are named from GFD's label and the agent's health is counted as reported",
            )
        )
    groups, disagreement = _groups(catalog, labels, whole, physical, facts_bad)
    if disagreement is not None:
        out.issues.append(Problem(NodeIssue.AGENT_FACTS_MISMATCH, disagreement))

    # Device-plugin unhealthy GPUs land first where the agent saw unhealthy ones.
    prefer = _spread(dp_bad, groups, [g.agent_bad for g in groups]) if dp_bad else []
    for group, share in zip(groups, prefer, strict=False):
        group.dp_bad = min(share, group.agent_bad) if len(groups) > 1 else share
    rest = dp_bad - sum(g.dp_bad for g in groups)
    if rest > 0:
        extra = _spread(rest, groups, [g.count - g.unhealthy for g in groups])
        for group, share in zip(groups, extra, strict=True):
            group.dp_bad += share
    for group, share in zip(
        groups, _spread(allocated, groups, [g.count - g.unhealthy for g in groups]), strict=True
    ):
        group.allocated = share

    _emit(node, out, groups, shared is not None)
    unhealthy = sum(g.unhealthy for g in groups)
    if unhealthy:
        problems = [
            f"{gpu.uuid}: {', '.join(gpu.problems) or 'unhealthy'}"
            for g in groups
            for gpu in g.gpus
            if gpu is not None and not gpu.healthy
        ]
        detail = f" ({'; '.join(problems[:4])})" if problems else ""
        out.issues.insert(
            0,
            Problem(
                NodeIssue.UNHEALTHY_GPUS,
                f"{unhealthy} of {physical} GPUs unhealthy{detail}; the device plugin "
                f"schedules {dev.gpu_allocatable} of {capacity}",
            ),
        )
    if shared is not None:
        out.issues.append(
            Problem(
                NodeIssue.SHARED_GPUS,
                f"GPUs are shared ({shared[1]}): a share is not a whole GPU, so none is offered",
            )
        )
    if allocated:
        out.issues.append(
            Problem(NodeIssue.ALLOCATED, f"{allocated} of {physical} GPUs allocated to Pods")
        )
    return out


def _emit(node: str, out: NodeGpus, groups: list[_Group], shared: bool) -> None:
    index = 0
    for group in groups:
        model = group.model
        vram = group.memory_mib or (model.vram_gib * 1024 if model else 0)
        bad = group.unhealthy
        for position, gpu in enumerate(group.gpus):
            out.rows.append(
                GpuRow(
                    nvml_index=gpu.index if gpu else index,
                    product=group.product,
                    model=model.short_name if model else None,
                    resource_id=model.resource_id if model else None,
                    vram_mib=gpu.memory_mib if gpu else vram,
                    healthy=gpu.healthy if gpu else position >= bad,
                    uuid=gpu.uuid if gpu else None,
                    pci_id=gpu.pci_device_id if gpu else group.pci_id,
                )
            )
            index += 1
        if model is None:
            out.unknown.append(
                UnknownProduct(node, group.product, group.pci_id, group.memory_mib, group.count)
            )
            pci = f", PCI id {group.pci_id}" if group.pci_id else ""
            out.issues.append(
                Problem(
                    NodeIssue.UNKNOWN_PRODUCT,
                    f"{group.count} GPUs of product {group.product!r}{pci} are not in the "
                    "marketplace catalog: reported, not offered",
                )
            )
            continue
        offered = 0 if shared else max(0, group.count - bad - group.allocated)
        out.gpus.append(
            ModelCount(
                model=model.short_name,
                resource_id=model.resource_id,
                vram_mib=vram,
                total=group.count,
                allocatable=group.count - group.dp_bad,
                allocated=group.allocated,
                unhealthy=bad,
                reserved=0,
                offered=offered,
            )
        )
