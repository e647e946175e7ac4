"""What the inventory found: frozen values the controller, the advertiser and the gateway read.

Every count is whole GPUs. Per node and per catalog model:

- `total`: GPUs the device plugin reports in capacity (the physical cards);
- `allocatable`: what the device plugin still schedules (it lowers allocatable for devices its
  own health check failed);
- `unhealthy`: the larger of `total - allocatable` and the GPUs the node agent reports with
  `healthy: false`: the two usually name the same card, so they are not added;
- `allocated`: GPUs requested by non-finished Pods bound to the node;
- `reserved`: GPUs held for bids that have not been matched yet;
- `offered = max(0, total - unhealthy - allocated - reserved)`, and 0 on an excluded node.

So `offered <= allocatable - allocated` and `offered + unhealthy + allocated <= total` hold on
every node and model: nothing unhealthy, taken or promised is ever sold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from gpu_provider.api.v1alpha1.providernode import Inventory

__all__ = [
    "CPU_RESOURCE_ID",
    "MIG_NOT_OFFERED",
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
]

CPU_RESOURCE_ID: Final = 1
"""The id the CPU offer is submitted under (`submitAttributes("CPU", [1], [cores])`).

Spheron publishes a catalog for GPU ids only; nothing in its ABIs or SDK names CPU models. We
offer one CPU resource, "CPU cores of any model", id 1, in whole cores. docs/inventory.md says
so, and it is the one constant to change if the marketplace publishes CPU ids.
"""

MIG_NOT_OFFERED: Final = (
    "MIG slices are not offered: the marketplace catalog has no MIG profiles, so a slice "
    "could only be sold as the whole GPU it is cut from, which it is not"
)


class ExclusionReason(StrEnum):
    """Why a selected Node offers nothing at all."""

    NOT_READY = "NotReady"
    CORDONED = "Cordoned"
    UNTOLERATED_TAINT = "UntoleratedTaint"
    DEVICE_PLUGIN_MISSING = "DevicePluginMissing"


class NodeIssue(StrEnum):
    """Why an offered Node offers fewer GPUs than it has (the node row's reason)."""

    UNHEALTHY_GPUS = "UnhealthyGpus"
    UNKNOWN_PRODUCT = "UnknownProduct"
    SHARED_GPUS = "SharedGpus"
    MIG_NOT_OFFERED = "MigNotOffered"
    AGENT_FACTS_INVALID = "AgentFactsInvalid"
    AGENT_FACTS_MISMATCH = "AgentFactsMismatch"
    RESERVED = "Reserved"
    ALLOCATED = "Allocated"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason with the sentence a provider can act on."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU in millicores, memory and ephemeral storage in bytes."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    ephemeral_bytes: int = 0

    def minus(self, other: Resources) -> Resources:
        """Never below zero: an over-committed node has nothing left, not a debt."""
        return Resources(
            max(0, self.cpu_millis - other.cpu_millis),
            max(0, self.memory_bytes - other.memory_bytes),
            max(0, self.ephemeral_bytes - other.ephemeral_bytes),
        )

    def plus(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_millis + other.cpu_millis,
            self.memory_bytes + other.memory_bytes,
            self.ephemeral_bytes + other.ephemeral_bytes,
        )


@dataclass(frozen=True, slots=True)
class GpuReservation:
    """GPUs held for a bid until it is matched or times out.

    With `node` set they come off that node's offer of `model`; without, off the model's
    offer across nodes, taken from nodes in name order.
    """

    key: str
    model: str
    gpus: int
    node: str | None = None


class GpuRow(NamedTuple):
    """One physical GPU, for the gateway's `gpu_infos` (uuid only when the agent reports).

    A NamedTuple rather than a frozen dataclass: a thousand Nodes make eight thousand rows
    per recompute, and a tuple is built several times faster.
    """

    nvml_index: int
    product: str
    model: str | None
    resource_id: int | None
    vram_mib: int
    healthy: bool
    uuid: str | None = None
    pci_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelCount:
    """One catalog model's GPUs on one Node."""

    model: str
    resource_id: int
    vram_mib: int
    total: int
    allocatable: int
    allocated: int
    unhealthy: int
    reserved: int
    offered: int


@dataclass(frozen=True, slots=True)
class MigProfile:
    """MIG slices of one profile on one Node (`nvidia.com/mig-1g.10gb`); never offered."""

    profile: str
    total: int
    allocatable: int
    allocated: int


@dataclass(frozen=True, slots=True)
class UnknownProduct:
    """GPUs the catalog cannot name: reported with what identifies them, and not offered."""

    node: str
    product: str
    pci_id: str | None
    memory_mib: int | None
    count: int


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One selected Node: offered, or excluded with `exclusion` set (then every offer is 0)."""

    name: str
    gpus: tuple[ModelCount, ...]
    gpu_rows: tuple[GpuRow, ...]
    allocatable: Resources
    """After `reservedPerNode`."""
    available: Resources
    """After `reservedPerNode` and the requests of the Node's running Pods."""
    driver_version: str | None = None
    cuda_version: str | None = None
    mig: tuple[MigProfile, ...] = ()
    unknown: tuple[UnknownProduct, ...] = ()
    issues: tuple[Problem, ...] = ()
    exclusion: Problem | None = None

    @property
    def total(self) -> int:
        return sum(g.total for g in self.gpus) + sum(u.count for u in self.unknown)

    @property
    def offered(self) -> int:
        return sum(g.offered for g in self.gpus)

    @property
    def allocated(self) -> int:
        return sum(g.allocated for g in self.gpus)

    @property
    def unhealthy(self) -> int:
        return sum(g.unhealthy for g in self.gpus)

    @property
    def allocatable_gpus(self) -> int:
        return sum(g.allocatable for g in self.gpus)


@dataclass(frozen=True, slots=True)
class ExcludedNode:
    """A selected Node that offers nothing, and why. Not matching the selector is not listed."""

    name: str
    reason: ExclusionReason
    message: str
    gpus: int


@dataclass(frozen=True, slots=True)
class ModelTotals:
    """One catalog model across the selected Nodes (excluded Nodes count in `total`)."""

    model: str
    resource_id: int
    vram_mib: int
    nodes: int
    total: int
    allocatable: int
    allocated: int
    unhealthy: int
    reserved: int
    excluded: int
    offered: int


@dataclass(frozen=True, slots=True)
class InventoryReport:
    nodes: tuple[NodeReport, ...]
    """Selected Nodes that are offered (possibly with 0 GPUs left), sorted by name."""
    excluded: tuple[ExcludedNode, ...]
    unknown: tuple[UnknownProduct, ...]
    models: tuple[ModelTotals, ...]
    excluded_reports: tuple[NodeReport, ...] = field(default=(), repr=False)
    """The excluded Nodes' counts, for status rows; their offers are all 0."""

    def offer_units(self) -> dict[int, int]:
        """Catalog resource id -> GPUs offered: the on-chain "GPU" attributes (zeros left out)."""
        return {m.resource_id: m.offered for m in self.models if m.offered > 0}

    @property
    def offered_cpu_cores(self) -> int:
        """Whole CPU cores left on offered Nodes after reservations and running Pods."""
        return sum(n.available.cpu_millis for n in self.nodes) // 1000

    def cpu_offer_units(self) -> dict[int, int]:
        """The on-chain "CPU" attributes: `{CPU_RESOURCE_ID: cores}`, empty when 0."""
        cores = self.offered_cpu_cores
        return {CPU_RESOURCE_ID: cores} if cores > 0 else {}

    @property
    def offered_gpus(self) -> int:
        return sum(m.offered for m in self.models)

    @property
    def allocated_gpus(self) -> int:
        return sum(m.allocated for m in self.models)

    @property
    def total_gpus(self) -> int:
        return sum(m.total for m in self.models) + sum(u.count for u in self.unknown)

    def by_name(self) -> Mapping[str, NodeReport]:
        """Offered and excluded Nodes by name."""
        return {n.name: n for n in (*self.nodes, *self.excluded_reports)}

    def to_status(self, max_node_rows: int | None = None) -> Inventory:
        """`status.inventory`: totals plus bounded rows for the Nodes that deviate."""
        from gpu_provider.inventory.status import MAX_NODE_ROWS, report_to_status

        return report_to_status(self, MAX_NODE_ROWS if max_node_rows is None else max_node_rows)
