"""Whatever the cluster looks like, nothing unhealthy, taken or promised is ever offered."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_provider.inventory import GpuReservation, build_inventory
from tests.inventory.builders import A100, H100, agent, node, pod, spec

MYSTERY = {"product": "NVIDIA-Mystery", "memory": 1024, "pci": "ffee", "nvml": "NVIDIA Mystery"}
MODELS = (H100, A100, MYSTERY)


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    nodes, pods = [], []
    for i in range(draw(st.integers(1, 5))):
        name = f"n{i}"
        gpus = draw(st.integers(0, 8))
        allocatable = draw(st.integers(0, gpus))
        facts = draw(
            st.none()
            | st.lists(
                st.fixed_dictionaries({"model": st.sampled_from(MODELS), "healthy": st.booleans()}),
                min_size=max(0, gpus - 1),
                max_size=gpus + 1,
            )
        )
        product = draw(st.sampled_from([H100["product"], A100["product"], None, "X-1"]))
        nodes.append(
            node(
                name,
                gpus=gpus,
                allocatable=allocatable,
                product=product,
                memory=None,
                annotations=agent(*facts) if facts else {},
                ready=draw(st.sampled_from(["True", "True", "False"])),
                unschedulable=draw(st.booleans()),
                labels={"nvidia.com/gpu.replicas": draw(st.sampled_from(["1", "1", "2"]))},
            )
        )
        for _ in range(draw(st.integers(0, 4))):
            phase = draw(st.sampled_from(["Running", "Pending", "Succeeded"]))
            pods.append(pod(name, gpus=draw(st.integers(0, 4)), phase=phase))
    reservations = draw(
        st.lists(
            st.builds(
                GpuReservation,
                key=st.just("bid"),
                model=st.sampled_from(["h100", "a100-80g"]),
                gpus=st.integers(1, 6),
                node=st.none() | st.sampled_from([n["metadata"]["name"] for n in nodes]),
            ),
            max_size=3,
        )
    )
    return nodes, pods, reservations


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_offered_never_exceeds_allocatable_minus_allocated_minus_unhealthy(
    cluster: tuple[list[dict[str, Any]], list[dict[str, Any]], list[GpuReservation]],
) -> None:
    nodes, pods, reservations = cluster
    report = build_inventory(nodes, pods, spec(), reservations=reservations)
    by_name = report.by_name()
    for n in nodes:
        name = n["metadata"]["name"]
        capacity = int(n["status"]["capacity"]["nvidia.com/gpu"])
        allocatable = int(n["status"]["allocatable"]["nvidia.com/gpu"])
        requested = sum(
            int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
            for p in pods
            if p["spec"]["nodeName"] == name and p["status"]["phase"] != "Succeeded"
            for c in p["spec"]["containers"]
        )
        report_node = by_name.get(name)
        if report_node is None:
            assert capacity == 0, "a node with GPUs is offered or excluded, never dropped"
            continue
        # The agent's unhealthy cards the device plugin still schedules.
        facts = _facts(n) if len(_facts(n)) == capacity else []
        agent_bad = sum(not g["healthy"] for g in facts)
        still_scheduled_bad = max(0, agent_bad - (capacity - allocatable))
        floor = allocatable - requested - still_scheduled_bad
        assert report_node.offered <= max(0, floor)
        for g in report_node.gpus:
            assert g.offered <= max(0, g.allocatable - g.allocated - g.reserved)
            if g.offered:
                assert g.offered + g.allocated + g.unhealthy + g.reserved <= g.total
        if report_node.exclusion is not None:
            assert report_node.offered == 0
    assert sum(report.offer_units().values()) == sum(n.offered for n in report.nodes)
    assert report.offered_gpus == sum(m.offered for m in report.models)


def _facts(n: dict[str, Any]) -> list[dict[str, Any]]:
    raw = n["metadata"]["annotations"].get("gpuprovider.dev/gpu-facts")
    return [] if raw is None else list(json.loads(raw)["gpus"])
