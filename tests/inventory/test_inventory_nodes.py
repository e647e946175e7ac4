"""Which Nodes are offered, which are excluded and why, and the CPU and memory they offer."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.harness.topology import build_nodes

from gpu_provider.inventory import CPU_RESOURCE_ID, ExclusionReason, build_inventory
from tests.inventory.builders import node, pod, spec

GIB = 1024**3


@pytest.mark.parametrize(
    ("selector", "offered"),
    [
        ({}, ["a", "b", "c"]),
        ({"matchLabels": {"pool": "sell"}}, ["a", "b"]),
        ({"matchLabels": {"pool": "sell", "zone": "z1"}}, ["a"]),
        ({"matchExpressions": [{"key": "pool", "operator": "In", "values": ["keep"]}]}, ["c"]),
        ({"matchExpressions": [{"key": "pool", "operator": "NotIn", "values": ["sell"]}]}, ["c"]),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, ["a", "b"]),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, ["c"]),
        (
            {
                "matchLabels": {"pool": "sell"},
                "matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}],
            },
            ["b"],
        ),
    ],
)
def test_only_nodes_matching_the_selector_are_offered(
    selector: dict[str, Any], offered: list[str]
) -> None:
    nodes = [
        node("a", labels={"pool": "sell", "zone": "z1"}),
        node("b", labels={"pool": "sell", "zone": "z2"}),
        node("c", labels={"pool": "keep"}),
    ]
    report = build_inventory(nodes, [], spec(nodeSelector=selector))
    assert [n.name for n in report.nodes] == offered
    assert report.excluded == (), "a Node the selector does not match is not listed as excluded"
    assert report.offered_gpus == 8 * len(offered)


@pytest.mark.parametrize(
    ("kwargs", "reason", "says"),
    [
        ({"ready": "False"}, ExclusionReason.NOT_READY, "Ready=False"),
        ({"ready": "Unknown"}, ExclusionReason.NOT_READY, "Ready=Unknown"),
        ({"ready": None}, ExclusionReason.NOT_READY, "has not reported"),
        ({"unschedulable": True}, ExclusionReason.CORDONED, "cordoned"),
        (
            {"taints": [{"key": "dedicated", "value": "training", "effect": "NoSchedule"}]},
            ExclusionReason.UNTOLERATED_TAINT,
            "dedicated=training:NoSchedule",
        ),
        (
            {"taints": [{"key": "maintenance", "effect": "NoExecute"}]},
            ExclusionReason.UNTOLERATED_TAINT,
            "maintenance:NoExecute",
        ),
        (
            {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"}]},
            ExclusionReason.UNTOLERATED_TAINT,
            "nvidia.com/gpu=present:NoExecute",
        ),
        ({"gpus": None}, ExclusionReason.DEVICE_PLUGIN_MISSING, "device plugin"),
        ({"gpus": 0}, ExclusionReason.DEVICE_PLUGIN_MISSING, "device plugin"),
    ],
)
def test_excluded_nodes_are_listed_with_their_reason(
    kwargs: dict[str, Any], reason: ExclusionReason, says: str
) -> None:
    report = build_inventory([node("bad", **kwargs), node("good")], [], spec())
    assert [n.name for n in report.nodes] == ["good"]
    [excluded] = report.excluded
    assert (excluded.name, excluded.reason) == ("bad", reason)
    assert says in excluded.message
    assert report.offered_gpus == 8
    assert report.offer_units() == {51: 8}


def test_not_ready_is_reported_before_cordoned() -> None:
    report = build_inventory([node(ready="False", unschedulable=True)], [], spec())
    assert report.excluded[0].reason is ExclusionReason.NOT_READY


@pytest.mark.parametrize(
    "taint",
    [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
        {"key": "anything", "effect": "PreferNoSchedule"},
    ],
)
def test_tolerated_and_soft_taints_keep_the_node_offered(taint: dict[str, str]) -> None:
    report = build_inventory([node(taints=[taint])], [], spec())
    assert report.excluded == ()
    assert report.offered_gpus == 8


def test_custom_tolerations_are_honoured() -> None:
    tainted = node(taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    tolerate = [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]
    assert build_inventory([tainted], [], spec(), tolerations=tolerate).offered_gpus == 8
    tolerate_all = [{"operator": "Exists"}]
    assert build_inventory([tainted], [], spec(), tolerations=tolerate_all).offered_gpus == 8
    wrong_value = [{"key": "dedicated", "operator": "Equal", "value": "cpu"}]
    assert build_inventory([tainted], [], spec(), tolerations=wrong_value).offered_gpus == 0


def test_excluded_gpus_count_in_the_model_total_but_are_not_offered() -> None:
    report = build_inventory([node("a"), node("b", unschedulable=True)], [], spec())
    [h100] = report.models
    assert (h100.total, h100.excluded, h100.offered, h100.nodes) == (16, 8, 8, 2)
    assert report.excluded[0].gpus == 8


def test_cpu_and_memory_are_what_is_left_after_reservations_and_running_pods() -> None:
    nodes = [node("a", cpu="64", mem="512Gi"), node("b", cpu="32", mem="128Gi")]
    pods = [
        pod("a", cpu="4", memory="16Gi"),  # a CPU-only Pod still uses the Node's CPU
        pod("a", gpus=2, cpu="8", memory="64Gi"),
        pod("a", cpu="100", memory="1Ti", phase="Succeeded"),  # finished: holds nothing
        pod("b", cpu="500m", memory="512Mi", phase="Pending"),  # bound, starting: holds it
        pod(None, cpu="100"),  # not scheduled yet
        pod("elsewhere", cpu="100"),
    ]
    keep = {"cpu": "2", "memory": "8Gi", "ephemeralStorage": "100Gi"}
    report = build_inventory(nodes, pods, spec(reservedPerNode=keep))
    a, b = report.nodes
    assert a.allocatable.cpu_millis == 62_000
    assert a.allocatable.memory_bytes == 504 * GIB
    assert a.allocatable.ephemeral_bytes == 2 * 1024 * GIB - 100 * GIB
    assert a.available.cpu_millis == 50_000
    assert a.available.memory_bytes == (504 - 80) * GIB
    assert b.available.cpu_millis == 29_500
    assert b.available.memory_bytes == 120 * GIB - 512 * 1024**2
    assert report.offered_cpu_cores == 79
    assert report.cpu_offer_units() == {CPU_RESOURCE_ID: 79}


def test_an_overcommitted_node_offers_no_cpu_rather_than_a_negative_amount() -> None:
    report = build_inventory([node(cpu="4")], [pod(cpu="6")], spec())
    assert report.nodes[0].available.cpu_millis == 0
    assert report.cpu_offer_units() == {}


def test_cpu_of_excluded_nodes_is_not_offered() -> None:
    report = build_inventory([node("a"), node("b", ready="False")], [], spec())
    assert report.offered_cpu_cores == 64


def test_the_kwok_topology_is_recognised() -> None:
    """The e2e cluster's GPU Nodes (as the harness builds them, once kwok marks them Ready)."""
    nodes = build_nodes()
    for n in nodes:
        n["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    selector = {"matchLabels": {"gpuprovider.dev/offer": "true"}}
    report = build_inventory(nodes, [], spec(nodeSelector=selector))
    assert report.offer_units() == {51: 16, 50: 8, 36: 2}  # h100, a100-80g, rtx4090
    assert [(e.name, e.reason) for e in report.excluded] == [
        ("gpu-h100-cordoned", ExclusionReason.CORDONED)
    ]
    assert report.unknown == ()
    h100 = next(n for n in report.nodes if n.name == "gpu-h100-0")
    assert (h100.driver_version, h100.cuda_version) == ("570.124.06", "12.8")
    assert {g.vram_mib for g in h100.gpus} == {81559}
    assert "cpu-0" not in report.by_name()
