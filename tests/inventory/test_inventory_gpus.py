"""GPU accounting on one Node: allocated, unhealthy, reserved, offered."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_provider.inventory import GpuReservation, NodeIssue, build_inventory
from tests.inventory.builders import H100, agent, node, pod, spec


def _h100(report: Any) -> tuple[int, int, int, int, int, int]:
    [g] = report.nodes[0].gpus
    return g.total, g.allocatable, g.allocated, g.unhealthy, g.reserved, g.offered


@pytest.mark.parametrize(
    ("pods", "allocated"),
    [
        ([], 0),
        ([pod(gpus=1)], 1),
        ([pod(gpus=2), pod(gpus=3)], 5),
        ([pod(gpus=2, limits_only=False)], 2),  # requests set explicitly
        ([pod(gpus=2, phase="Pending")], 2),  # bound, image still pulling: the GPUs are taken
        ([pod(gpus=2, phase="Succeeded"), pod(gpus=1, phase="Failed")], 0),
        ([pod(None, gpus=4)], 0),  # not scheduled: holds no device
        ([pod("other-node", gpus=4)], 0),
        ([pod(cpu="8")], 0),  # no GPU request
        ([pod(gpus=8), pod(gpus=2)], 10),  # over-allocated: reported as is, nothing offered
    ],
)
def test_gpus_requested_by_running_pods_on_the_node_are_allocated(
    pods: list[dict[str, Any]], allocated: int
) -> None:
    report = build_inventory([node()], pods, spec())
    total, _, got, _, _, offered = _h100(report)
    assert (total, got, offered) == (8, allocated, max(0, 8 - allocated))
    assert report.allocated_gpus == allocated


@pytest.mark.parametrize(
    ("init", "allocated"),
    [
        ([{"name": "fetch", "resources": {"limits": {"nvidia.com/gpu": "4"}}}], 4),
        ([{"name": "fetch", "resources": {"limits": {"nvidia.com/gpu": "1"}}}], 2),
        (
            [
                {
                    "name": "sidecar",
                    "restartPolicy": "Always",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            3,
        ),
    ],
)
def test_init_containers_and_sidecars_count_as_the_scheduler_counts_them(
    init: list[dict[str, Any]], allocated: int
) -> None:
    report = build_inventory([node()], [pod(gpus=2, init=init)], spec())
    assert _h100(report)[2] == allocated


@pytest.mark.parametrize(
    ("allocatable", "health", "unhealthy"),
    [
        (8, [True] * 8, 0),
        (6, [True] * 8, 2),  # the device plugin lowered allocatable
        (8, [False, False, False] + [True] * 5, 3),  # the agent reports 3 unhealthy
        (7, [False] + [True] * 7, 1),  # both see the same card: counted once
        (6, [False] + [True] * 7, 2),
        (7, [False, False] + [True] * 6, 2),
    ],
)
def test_unhealthy_gpus_are_not_offered(
    allocatable: int, health: list[bool], unhealthy: int
) -> None:
    annotations = agent(*({"model": H100, "healthy": h} for h in health))
    report = build_inventory(
        [node(allocatable=allocatable, annotations=annotations)], [pod(gpus=1)], spec()
    )
    total, alloc, allocated, bad, _, offered = _h100(report)
    assert (total, alloc, allocated, bad) == (8, allocatable, 1, unhealthy)
    assert offered == 8 - unhealthy - 1
    issues = [p.reason for p in report.nodes[0].issues]
    assert (NodeIssue.UNHEALTHY_GPUS in issues) == bool(unhealthy)


def test_the_agents_problem_is_in_the_message() -> None:
    annotations = agent({"model": H100, "healthy": False, "uuid": "GPU-dead"}, {"model": H100})
    report = build_inventory([node(gpus=2, annotations=annotations)], [], spec())
    problem = report.nodes[0].issues[0]
    assert problem.reason == NodeIssue.UNHEALTHY_GPUS
    assert "GPU-dead: xid 79" in problem.message


def test_per_gpu_rows_come_from_the_agent_when_it_reports() -> None:
    annotations = agent({"model": H100, "uuid": "GPU-a"}, {"model": H100, "uuid": "GPU-b"})
    [n] = build_inventory([node(gpus=2, annotations=annotations)], [], spec()).nodes
    assert [(r.uuid, r.model, r.vram_mib, r.healthy) for r in n.gpu_rows] == [
        ("GPU-a", "h100", 81559, True),
        ("GPU-b", "h100", 81559, True),
    ]
    assert (n.driver_version, n.cuda_version) == ("570.124.06", "12.8")


def test_per_gpu_rows_without_the_agent_are_counted_from_the_device_plugin() -> None:
    [n] = build_inventory([node(gpus=4, allocatable=3)], [], spec()).nodes
    assert [(r.uuid, r.model, r.resource_id, r.healthy) for r in n.gpu_rows] == [
        (None, "h100", 51, False),
        (None, "h100", 51, True),
        (None, "h100", 51, True),
        (None, "h100", 51, True),
    ]


@pytest.mark.parametrize(
    ("reservations", "offered", "reserved"),
    [
        ([], [8, 8], [0, 0]),
        ([GpuReservation("bid-1", "h100", 2, node="b")], [8, 6], [0, 2]),
        ([GpuReservation("bid-1", "h100", 3)], [5, 8], [3, 0]),  # unpinned: by node name
        ([GpuReservation("bid-1", "h100", 10)], [0, 6], [8, 2]),
        ([GpuReservation("bid-1", "h100", 20)], [0, 0], [8, 8]),  # never below zero
        ([GpuReservation("bid-1", "a100-80g", 2)], [8, 8], [0, 0]),  # no such model here
        ([GpuReservation("bid-1", "h100", 2, node="gone")], [8, 8], [0, 0]),
        (
            [GpuReservation("bid-1", "h100", 2, node="a"), GpuReservation("bid-2", "h100", 1)],
            [5, 8],
            [3, 0],
        ),
    ],
)
def test_reservations_for_open_bids_come_off_the_offer(
    reservations: list[GpuReservation], offered: list[int], reserved: list[int]
) -> None:
    report = build_inventory([node("a"), node("b")], [], spec(), reservations=reservations)
    assert [n.gpus[0].offered for n in report.nodes] == offered
    assert [n.gpus[0].reserved for n in report.nodes] == reserved
    assert report.models[0].reserved == sum(reserved)
    assert report.offer_units() == ({51: sum(offered)} if sum(offered) else {})


def test_reservations_never_take_from_an_excluded_node() -> None:
    report = build_inventory(
        [node("a", unschedulable=True), node("b")],
        [],
        spec(),
        reservations=[GpuReservation("bid-1", "h100", 3)],
    )
    assert report.nodes[0].gpus[0].reserved == 3
    assert report.excluded_reports[0].gpus[0].reserved == 0
