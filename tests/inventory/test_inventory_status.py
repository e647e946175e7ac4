"""`status.inventory`: totals plus bounded rows for the Nodes that deviate, small at 1,000 Nodes."""

from __future__ import annotations

import json

from gpu_provider.api.v1alpha1.providernode import Inventory, ProviderNodeStatus
from gpu_provider.inventory import GpuReservation, build_inventory
from tests.inventory.builders import H100, agent, node, pod, spec


def _status_bytes(inventory: Inventory) -> int:
    status = ProviderNodeStatus(inventory=inventory)
    return len(json.dumps(status.to_wire(), separators=(",", ":")).encode())


def test_nodes_that_offer_everything_have_no_row() -> None:
    report = build_inventory([node("a"), node("b")], [], spec())
    status = report.to_status()
    assert (status.offered_gpus, status.total_gpus, status.nodes_offered) == (16, 16, 2)
    assert status.nodes == []
    assert [(m.model, m.resource_id, m.offered) for m in status.models] == [("h100", 51, 16)]


def test_rows_say_why_a_node_offers_less_most_urgent_first() -> None:
    nodes = [
        node("busy"),
        node("cordoned", unschedulable=True),
        node("sick", allocatable=7, annotations=agent(*([{"model": H100}] * 8))),
        node("fine"),
        node("promised"),
    ]
    report = build_inventory(
        nodes,
        [pod("busy", gpus=3), pod("sick", gpus=1)],
        spec(),
        reservations=[GpuReservation("bid", "h100", 2, node="promised")],
    )
    status = report.to_status()
    assert [(r.name, r.reason, r.offered) for r in status.nodes] == [
        ("cordoned", "Cordoned", 0),
        ("sick", "UnhealthyGpus", 6),
        ("promised", "Reserved", 6),
        ("busy", "Allocated", 5),
    ]
    sick = status.nodes[1]
    assert (sick.total, sick.allocatable, sick.allocated, sick.unhealthy) == (8, 7, 1, 1)
    assert "also: Allocated" in (sick.message or "")
    assert (status.nodes_selected, status.nodes_offered, status.nodes_excluded) == (5, 4, 1)
    assert status.allocated_gpus == 4
    assert status.unhealthy_gpus == 1


def test_rows_are_bounded_and_the_rest_counted() -> None:
    nodes = [node(f"n{i:03}") for i in range(30)]
    pods = [pod(f"n{i:03}", gpus=1) for i in range(30)]
    status = build_inventory(nodes, pods, spec()).to_status(max_node_rows=10)
    assert len(status.nodes) == 10
    assert status.nodes_left_out == 20
    assert status.allocated_gpus == 30, "totals count every Node, with or without a row"


def test_status_stays_under_256_kib_at_1000_nodes_all_deviating() -> None:
    """Worst case: every Node unhealthy, busy and holding an unknown card, with long names."""
    sick = [{"model": H100, "healthy": False, "uuid": f"GPU-{'f' * 36}"}] + [{"model": H100}] * 7
    mystery = {
        "product": "NVIDIA-Mystery",
        "memory": 1024,
        "pci": "ffee",
        "nvml": "NVIDIA Mystery " + "X" * 60,
    }
    nodes = []
    for i in range(1000):
        gpus = [*sick, {"model": mystery}] if i % 2 else sick
        nodes.append(
            node(
                f"gpu-node-{'x' * 180}-{i:04}",
                gpus=len(gpus),
                allocatable=len(gpus) - 2,
                annotations=agent(*gpus),
            )
        )
    pods = [pod(n["metadata"]["name"], gpus=1) for n in nodes]
    status = build_inventory(nodes, pods, spec()).to_status()
    size = _status_bytes(status)
    assert size <= 256 * 1024, f"status.inventory is {size} bytes"
    assert status.nodes_left_out == 800
    assert status.unknown_products[0].nodes == 500
