"""What the bid engine may still promise: free GPUs, CPU and memory per node, and placements.

`Capacity` is a small pure view: per node, free whole GPUs per catalog model (with their VRAM),
CPU millicores and memory bytes. It is built from the inventory (`Capacity.from_nodes` reads
`InventoryReport.nodes` structurally, so market never imports the inventory package) and the
reservation book takes its holds off it (`Capacity.minus`). An `OrderPlacement` says where every
replica of an order goes; `Capacity.fits` is the one check that nothing is promised twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GpuPool:
    """Free whole GPUs of one catalog model on one node.

    `free_vram_mib` is what each of them has free: a whole GPU nobody was given is entirely
    free, so it equals `vram_mib` for every GPU the inventory offers.
    """

    model: str
    free: int
    vram_mib: int
    free_vram_mib: int


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    name: str
    gpus: tuple[GpuPool, ...] = ()
    cpu_millis: int = 0
    memory_bytes: int = 0

    def pool(self, model: str) -> GpuPool | None:
        return next((pool for pool in self.gpus if pool.model == model), None)


@dataclass(frozen=True, slots=True)
class ReplicaPlacement:
    """One replica of one service on one node, with what it takes there."""

    service: str
    replica: int
    node: str
    gpu_model: str | None
    gpus: int
    cpu_millis: int
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class NodeUse:
    """What a placement takes on one node: GPUs per model, CPU and memory."""

    gpus: Mapping[str, int] = field(default_factory=dict)
    cpu_millis: int = 0
    memory_bytes: int = 0


@dataclass(frozen=True, slots=True)
class OrderPlacement:
    """Where every replica of an order runs; the GPU model chosen for each GPU service."""

    replicas: tuple[ReplicaPlacement, ...]

    @property
    def gpu_models(self) -> dict[str, str]:
        """Service name -> catalog model (GPU services only): what the quote prices."""
        return {r.service: r.gpu_model for r in self.replicas if r.gpu_model is not None}

    @property
    def gpus(self) -> int:
        return sum(r.gpus for r in self.replicas)

    def by_node(self) -> dict[str, NodeUse]:
        """Totals per node, in node name order."""
        gpus: dict[str, dict[str, int]] = {}
        cpu: dict[str, int] = {}
        memory: dict[str, int] = {}
        for r in self.replicas:
            per_model = gpus.setdefault(r.node, {})
            if r.gpu_model is not None and r.gpus:
                per_model[r.gpu_model] = per_model.get(r.gpu_model, 0) + r.gpus
            cpu[r.node] = cpu.get(r.node, 0) + r.cpu_millis
            memory[r.node] = memory.get(r.node, 0) + r.memory_bytes
        return {node: NodeUse(gpus[node], cpu[node], memory[node]) for node in sorted(gpus)}


class Overbooked(ValueError):
    """A placement asks for more than a node has free: it would promise something twice."""


# Structural views of the inventory's NodeReport / ModelCount / Resources: market must not
# import the inventory package (it depends on the CRD models), and needs only these fields.
class _Counted(Protocol):
    @property
    def model(self) -> str: ...
    @property
    def vram_mib(self) -> int: ...
    @property
    def offered(self) -> int: ...
    @property
    def reserved(self) -> int: ...


class _Available(Protocol):
    @property
    def cpu_millis(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...


class InventoryNode(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def gpus(self) -> Iterable[_Counted]: ...
    @property
    def available(self) -> _Available: ...


@dataclass(frozen=True, slots=True)
class Capacity:
    """Free resources per node, sorted by node name."""

    nodes: tuple[NodeCapacity, ...] = ()

    @classmethod
    def of(cls, nodes: Iterable[NodeCapacity]) -> Capacity:
        return cls(tuple(sorted(nodes, key=lambda n: n.name)))

    @classmethod
    def from_nodes(cls, nodes: Iterable[InventoryNode]) -> Capacity:
        """From `InventoryReport.nodes` (the offered nodes; excluded ones offer nothing).

        A model's free GPUs are `offered + reserved`: the inventory takes the book's holds off
        its offer when the controller passes them in, and the book takes them off again here
        (`ReservationBook.capacity`), so counting them back avoids subtracting them twice.
        """
        return cls.of(
            NodeCapacity(
                name=node.name,
                gpus=tuple(
                    GpuPool(c.model, c.offered + c.reserved, c.vram_mib, c.vram_mib)
                    for c in node.gpus
                ),
                cpu_millis=node.available.cpu_millis,
                memory_bytes=node.available.memory_bytes,
            )
            for node in nodes
        )

    def node(self, name: str) -> NodeCapacity | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def models(self) -> frozenset[str]:
        """Every GPU model some node has (free or not)."""
        return frozenset(pool.model for node in self.nodes for pool in node.gpus)

    def free_gpus(self, model: str) -> int:
        return sum(pool.free for node in self.nodes for pool in node.gpus if pool.model == model)

    def fits(self, placement: OrderPlacement) -> str | None:
        """None when every node has what the placement takes there; else what is short."""
        for name, use in placement.by_node().items():
            node = self.node(name)
            if node is None:
                return f"node {name} is not offered"
            for model, gpus in use.gpus.items():
                pool = node.pool(model)
                if pool is None or pool.free < gpus:
                    free = 0 if pool is None else pool.free
                    return f"node {name} has {free} {model} free, not {gpus}"
            if node.cpu_millis < use.cpu_millis:
                return f"node {name} has {node.cpu_millis}m CPU free, not {use.cpu_millis}m"
            if node.memory_bytes < use.memory_bytes:
                return f"node {name} has {node.memory_bytes} B memory free, not {use.memory_bytes}"
        return None

    def minus(self, placements: Iterable[OrderPlacement], *, strict: bool = False) -> Capacity:
        """What is left after the placements; never below zero unless `strict` raises.

        Not strict: the inventory may shrink under a hold (a GPU turned unhealthy); the node
        then has nothing left to promise, which is the safe answer.
        """
        left = {n.name: n for n in self.nodes}
        for placement in placements:
            if strict:
                short = Capacity(tuple(left.values())).fits(placement)
                if short is not None:
                    raise Overbooked(short)
            for name, use in placement.by_node().items():
                node = left.get(name)
                if node is not None:
                    left[name] = _take(node, use)
        return Capacity(tuple(left[name] for name in sorted(left)))


def _take(node: NodeCapacity, use: NodeUse) -> NodeCapacity:
    pools = tuple(
        GpuPool(p.model, max(0, p.free - use.gpus.get(p.model, 0)), p.vram_mib, p.free_vram_mib)
        for p in node.gpus
    )
    return NodeCapacity(
        node.name,
        pools,
        max(0, node.cpu_millis - use.cpu_millis),
        max(0, node.memory_bytes - use.memory_bytes),
    )
