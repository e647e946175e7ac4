"""Naming GPUs: GFD product first, then PCI id + memory; unknown cards; MIG; shared; two models."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION
from gpu_provider.inventory import MIG_NOT_OFFERED, NodeIssue, UnknownProduct, build_inventory
from tests.inventory.builders import A100, H100, agent, node, pod, spec

MYSTERY = {
    "product": "NVIDIA-Mystery-GPU",
    "memory": 49152,
    "pci": "ffee",
    "nvml": "NVIDIA Mystery GPU",
}
L4_NEW_NAME = {
    "product": "NVIDIA-L4-Rev2",
    "memory": 23034,
    "pci": "27b8",
    "nvml": "NVIDIA L4 Rev2",
}


def _issues(report: Any) -> list[str]:
    return [p.reason for n in (*report.nodes, *report.excluded_reports) for p in n.issues]


@pytest.mark.parametrize(
    ("kwargs", "units"),
    [
        # GFD's product label names it.
        ({}, {51: 8}),
        ({"product": "NVIDIA-A100-SXM4-80GB", "memory": 81920}, {50: 8}),
        ({"product": "NVIDIA-H100-80GB-HBM3", "memory": None}, {51: 8}),
        # A product label the catalog does not list: the agent's PCI id + memory name it.
        ({"product": "NVIDIA-L4-Rev2", "memory": 23034, "facts": L4_NEW_NAME}, {40: 8}),
        # No GFD at all: the agent's NVML name (GFD-style) or PCI id names it.
        ({"product": None, "memory": None, "facts": H100}, {51: 8}),
        ({"product": None, "memory": None, "facts": L4_NEW_NAME}, {40: 8}),
        # GFD names it; the agent agrees on the count only: GFD wins.
        ({"facts": A100}, {51: 8}),
    ],
)
def test_gfd_product_first_then_pci_id_and_memory(
    kwargs: dict[str, Any], units: dict[int, int]
) -> None:
    model = kwargs.pop("facts", None)
    annotations = agent(*({"model": model} for _ in range(8))) if model else {}
    report = build_inventory([node(annotations=annotations, **kwargs)], [], spec())
    assert report.offer_units() == units
    assert report.unknown == ()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"product": "NVIDIA-Mystery-GPU", "memory": 49152},
            UnknownProduct("gpu-0", "NVIDIA-Mystery-GPU", None, 49152, 8),
        ),
        (
            {"product": "NVIDIA-Mystery-GPU", "memory": 49152, "facts": MYSTERY},
            UnknownProduct("gpu-0", "NVIDIA Mystery GPU", "ffee", 49152, 8),
        ),
        # The memory label contradicts the product (an "80GB" card with 40 GiB): not guessed.
        (
            {"product": "NVIDIA-H100-80GB-HBM3", "memory": 40960},
            UnknownProduct("gpu-0", "NVIDIA-H100-80GB-HBM3", None, 40960, 8),
        ),
        ({"product": None, "memory": None}, UnknownProduct("gpu-0", "unknown", None, None, 8)),
    ],
)
def test_a_product_not_in_the_catalog_is_reported_not_offered(
    kwargs: dict[str, Any], expected: UnknownProduct
) -> None:
    model = kwargs.pop("facts", None)
    annotations = agent(*({"model": model} for _ in range(8))) if model else {}
    report = build_inventory([node(annotations=annotations, **kwargs)], [], spec())
    assert report.unknown == (expected,)
    assert report.offer_units() == {}
    assert report.total_gpus == 8, "unknown GPUs are never silently dropped"
    assert NodeIssue.UNKNOWN_PRODUCT in _issues(report)
    status = report.to_status()
    assert status.unknown_products[0].gpus == 8
    assert status.nodes[0].reason == "UnknownProduct"


def test_a_node_with_two_models_offers_both_from_the_agents_facts() -> None:
    annotations = agent(*([{"model": H100}] * 4 + [{"model": A100}] * 4))
    report = build_inventory([node(annotations=annotations)], [], spec())
    assert report.offer_units() == {51: 4, 50: 4}
    rows = report.nodes[0].gpu_rows
    assert [r.model for r in rows] == ["h100"] * 4 + ["a100-80g"] * 4


def test_two_models_allocations_are_spread_and_never_oversell_the_node() -> None:
    annotations = agent(*([{"model": H100}] * 6 + [{"model": A100}] * 2))
    report = build_inventory([node(annotations=annotations)], [pod(gpus=4)], spec())
    counts = {g.model: g for g in report.nodes[0].gpus}
    assert sum(g.allocated for g in counts.values()) == 4
    assert sum(g.offered for g in counts.values()) == 4
    assert counts["h100"].allocated == 4, "taken from the model with the most free first"


def test_two_models_unhealthy_cards_are_attributed_to_their_model() -> None:
    gpus = [{"model": H100}] * 4 + [{"model": A100, "healthy": False}] + [{"model": A100}] * 3
    report = build_inventory([node(allocatable=7, annotations=agent(*gpus))], [], spec())
    assert report.offer_units() == {51: 4, 50: 3}


def test_a_known_and_an_unknown_model_on_one_node() -> None:
    annotations = agent(*([{"model": H100}] * 6 + [{"model": MYSTERY}] * 2))
    report = build_inventory([node(annotations=annotations)], [], spec())
    assert report.offer_units() == {51: 6}
    assert [(u.product, u.pci_id, u.count) for u in report.unknown] == [
        ("NVIDIA Mystery GPU", "ffee", 2)
    ]


def test_gfd_and_the_agent_naming_different_models_is_reported_and_gfd_wins() -> None:
    report = build_inventory([node(annotations=agent(*([{"model": A100}] * 8)))], [], spec())
    assert report.offer_units() == {51: 8}
    [problem] = [p for p in report.nodes[0].issues if p.reason == NodeIssue.AGENT_FACTS_MISMATCH]
    assert "GFD labels the GPUs h100, the node agent reports a100-80g" in problem.message


def test_agent_facts_that_disagree_with_the_device_plugin_fall_back_to_gfd() -> None:
    annotations = agent(*([{"model": A100}] * 4))  # a stale agent: 4 GPUs, device plugin 8
    report = build_inventory([node(annotations=annotations)], [], spec())
    assert report.offer_units() == {51: 8}
    assert NodeIssue.AGENT_FACTS_MISMATCH in _issues(report)


def test_unreadable_agent_facts_are_reported_and_the_node_still_offered() -> None:
    annotations = {GPU_FACTS_ANNOTATION: '{"v": 1, "gpus": [{"index": -1}]}'}
    report = build_inventory([node(annotations=annotations)], [], spec())
    assert report.offer_units() == {51: 8}
    [problem] = [p for p in report.nodes[0].issues if p.reason == NodeIssue.AGENT_FACTS_INVALID]
    assert "gpuprovider.dev/gpu-facts" in problem.message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"labels": {"nvidia.com/gpu.replicas": "4"}, "gpus": 32},
        {"labels": {"nvidia.com/gpu.sharing-strategy": "mps"}, "gpus": 8},
        {"product": "NVIDIA-H100-80GB-HBM3-SHARED", "gpus": 8},
        {"labels": {"nvidia.com/gpu.count": "4"}, "gpus": 16},  # capacity > physical GPUs
    ],
)
def test_shared_gpus_are_never_offered_as_whole_gpus(kwargs: dict[str, Any]) -> None:
    report = build_inventory([node(**kwargs)], [pod(gpus=1)], spec())
    assert report.offer_units() == {}
    assert NodeIssue.SHARED_GPUS in _issues(report)
    [g] = report.nodes[0].gpus
    assert g.offered == 0
    assert g.total == int(kwargs.get("labels", {}).get("nvidia.com/gpu.count", 8))


def test_mig_slices_mixed_strategy_are_reported_not_offered() -> None:
    n = node(
        gpus=2, extra_resources={"nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-3g.40gb": "2"}
    )
    pods = [pod(gpus=3, resource="nvidia.com/mig-1g.10gb")]
    report = build_inventory([n], pods, spec())
    assert report.offer_units() == {51: 2}, "whole GPUs next to MIG ones are still offered"
    [one, three] = report.nodes[0].mig
    assert (one.profile, one.total, one.allocated) == ("1g.10gb", 14, 3)
    assert (three.profile, three.total) == ("3g.40gb", 2)
    [problem] = [p for p in report.nodes[0].issues if p.reason == NodeIssue.MIG_NOT_OFFERED]
    assert problem.message == MIG_NOT_OFFERED
    assert {m.profile: m.total for m in report.to_status().mig} == {"1g.10gb": 14, "3g.40gb": 2}


def test_a_mig_only_node_is_offered_for_nothing_but_is_not_missing_its_device_plugin() -> None:
    n = node(gpus=None, extra_resources={"nvidia.com/mig-1g.10gb": "7"})
    report = build_inventory([n], [], spec())
    assert report.excluded == ()
    assert report.offer_units() == {}
    assert report.nodes[0].mig[0].total == 7


def test_mig_slices_single_strategy_are_not_whole_gpus() -> None:
    n = node(gpus=14, product="NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", memory=4864)
    report = build_inventory([n], [pod(gpus=2)], spec())
    assert report.offer_units() == {}
    assert report.unknown == (), "a MIG slice is not an unknown product"
    [mig] = report.nodes[0].mig
    assert (mig.profile, mig.total, mig.allocated) == ("1g.5gb", 14, 2)


def test_mig_enabled_gpus_in_the_agents_facts_are_not_counted_as_whole_gpus() -> None:
    gpus = [{"model": A100}] * 6 + [{"model": A100, "mig": True}] * 2
    n = node(gpus=6, annotations=agent(*gpus), extra_resources={"nvidia.com/mig-1g.10gb": "14"})
    n["metadata"]["labels"]["nvidia.com/gpu.product"] = A100["product"]
    n["metadata"]["labels"]["nvidia.com/gpu.memory"] = str(A100["memory"])
    report = build_inventory([n], [], spec())
    assert report.offer_units() == {50: 6}
    assert NodeIssue.AGENT_FACTS_MISMATCH not in _issues(report)
