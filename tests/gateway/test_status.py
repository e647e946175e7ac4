"""`/status` as Spheron's SDK reads it: only offered GPUs are available, named by catalog."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.harness.topology import build_nodes

from gpu_provider.api.v1alpha1 import ProviderNodeSpec
from gpu_provider.gateway.status import StatusCounts, count_leases, render_status
from gpu_provider.inventory import (
    GpuRow,
    InventoryReport,
    ModelCount,
    NodeReport,
    Resources,
    UnknownProduct,
    build_inventory,
)
from tests.gateway.sdk_grouping import available_by_gpu, group_by_gpu
from tests.samples import load_example

GIB = 1024**3
H100_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def gpus(
    model: str,
    total: int,
    *,
    allocated: int = 0,
    unhealthy: int = 0,
    reserved: int = 0,
    vram_mib: int = 81559,
    resource_id: int = 51,
) -> ModelCount:
    return ModelCount(
        model=model,
        resource_id=resource_id,
        vram_mib=vram_mib,
        total=total,
        allocatable=total - unhealthy,
        allocated=allocated,
        unhealthy=unhealthy,
        reserved=reserved,
        offered=max(0, total - unhealthy - allocated - reserved),
    )


def rows(model: str | None, count: int, product: str, pci_id: str | None = None) -> list[GpuRow]:
    return [
        GpuRow(
            i,  # the GPU's index (first field)
            product=product,
            model=model,
            resource_id=None,
            vram_mib=81559,
            healthy=True,
            pci_id=pci_id,
        )
        for i in range(count)
    ]


def node(
    name: str,
    *groups: ModelCount,
    gpu_rows: list[GpuRow] | None = None,
    unknown: tuple[UnknownProduct, ...] = (),
) -> NodeReport:
    return NodeReport(
        name=name,
        gpus=groups,
        gpu_rows=tuple(gpu_rows or []),
        allocatable=Resources(
            cpu_millis=190_000, memory_bytes=2040 * GIB, ephemeral_bytes=1998 * GIB
        ),
        available=Resources(
            cpu_millis=150_500, memory_bytes=1000 * GIB, ephemeral_bytes=1998 * GIB
        ),
        unknown=unknown,
    )


def report(*nodes: NodeReport) -> InventoryReport:
    return InventoryReport(nodes=nodes, excluded=(), unknown=(), models=())


def status_of(*nodes: NodeReport) -> dict[str, Any]:
    return render_status(report(*nodes), hostname="gpu.example.com")


def only_row(status: dict[str, Any]) -> Any:
    (row,) = status["cluster"]["inventory"]["available"]["nodes"]
    return row


@pytest.mark.parametrize(
    ("counts", "available_gpu", "infos", "sdk_available"),
    [
        pytest.param(gpus("h100", 8), 8, 8, {"h100": 8}, id="all-offered"),
        pytest.param(gpus("h100", 8, allocated=3), 5, 8, {"h100": 5}, id="pods-hold-3"),
        pytest.param(gpus("h100", 8, unhealthy=2), 6, 6, {"h100": 6}, id="unhealthy-not-listed"),
        pytest.param(gpus("h100", 8, reserved=1, allocated=1), 6, 8, {"h100": 6}, id="bid-held"),
        pytest.param(gpus("h100", 8, allocated=8), 0, 8, {}, id="all-taken-sdk-skips"),
        pytest.param(gpus("h100", 4, unhealthy=4), 0, 0, {}, id="all-unhealthy"),
    ],
)
def test_only_offered_gpus_are_available(
    counts: ModelCount, available_gpu: int, infos: int, sdk_available: dict[str, int]
) -> None:
    status = status_of(node("gpu-0", counts, gpu_rows=rows("h100", 8, H100_PRODUCT)))
    row = only_row(status)
    assert row["available"]["gpu"] == available_gpu
    assert row["allocatable"]["gpu"] == infos == len(row["allocatable"]["gpu_infos"])
    assert available_by_gpu(status) == sdk_available


def test_offered_gpus_show_free_vram_and_held_ones_none() -> None:
    row = only_row(status_of(node("gpu-0", gpus("h100", 4, allocated=1))))
    assert [i["vram_available_percentage"] for i in row["allocatable"]["gpu_infos"]] == [
        100,
        100,
        100,
        0,
    ]


def test_gpu_infos_name_the_catalog_model_with_its_pci_id_and_interface() -> None:
    row = only_row(
        status_of(node("gpu-0", gpus("h100", 1), gpu_rows=rows("h100", 1, H100_PRODUCT)))
    )
    assert row["allocatable"]["gpu_infos"] == [
        {
            "vendor": "nvidia",
            "name": "h100",
            "model_id": "2330",
            "interface": "SXM5",
            "memory_size": "80Gi",
            "vram_available_percentage": 100,
        }
    ]


@pytest.mark.parametrize(
    ("model", "product", "pci_id", "vram_mib", "expected"),
    [
        ("a100-80g", "NVIDIA-A100-80GB-PCIe", None, 81920, ("20b5", "PCIe", "80Gi")),
        ("a100-80g", "NVIDIA-A100-SXM4-80GB", None, 81920, ("20b2", "SXM4", "80Gi")),
        ("rtx4090", "NVIDIA-GeForce-RTX-4090", None, 24564, ("2684", "PCIe", "24Gi")),
        ("h100", "NVIDIA H100 PCIe", "2331", 81559, ("2331", "PCIe", "80Gi")),
    ],
)
def test_pci_id_interface_and_vram_follow_the_card(
    model: str, product: str, pci_id: str | None, vram_mib: int, expected: tuple[str, ...]
) -> None:
    group = gpus(model, 1, vram_mib=vram_mib)
    (info,) = only_row(status_of(node("n", group, gpu_rows=rows(model, 1, product, pci_id))))[
        "allocatable"
    ]["gpu_infos"]
    assert (info["model_id"], info["interface"], info["memory_size"]) == expected


def test_unknown_cards_are_never_listed() -> None:
    unknown = UnknownProduct(
        node="n", product="NVIDIA-Mystery-9000", pci_id="ffff", memory_mib=1000, count=2
    )
    row = only_row(
        status_of(node("n", gpu_rows=rows(None, 2, "NVIDIA-Mystery-9000"), unknown=(unknown,)))
    )
    assert row["allocatable"]["gpu"] == 0
    assert row["allocatable"]["gpu_infos"] == []
    assert row["available"]["gpu"] == 0


def test_a_node_with_two_models_is_one_row_per_model_and_counts_its_cpu_once() -> None:
    status = status_of(
        node(
            "mixed",
            gpus("rtx4090", 2, resource_id=36, vram_mib=24564),
            gpus("h100", 4, allocated=1),
        )
    )
    nodes = status["cluster"]["inventory"]["available"]["nodes"]
    assert [n["name"] for n in nodes] == ["mixed", "mixed/rtx4090"]
    assert [n["available"]["gpu"] for n in nodes] == [3, 2]
    assert sum(n["allocatable"]["cpu"] for n in nodes) == 190_000
    assert group_by_gpu(status) == {
        "h100": {"available": 3, "allocatable": 4},
        "rtx4090": {"available": 2, "allocatable": 2},
    }


def test_units_are_millicores_and_bytes() -> None:
    row = only_row(status_of(node("gpu-0", gpus("h100", 1))))
    assert row["allocatable"] | {"gpu_infos": None} == {
        "cpu": 190_000,
        "gpu": 1,
        "memory": 2040 * GIB,
        "storage_ephemeral": 1998 * GIB,
        "gpu_infos": None,
    }
    assert row["available"] == {
        "cpu": 150_500,
        "gpu": 1,
        "memory": 1000 * GIB,
        "storage_ephemeral": 1998 * GIB,
    }


def test_document_shape_hostname_and_counts() -> None:
    status = render_status(
        report(),
        hostname="gpu.example.com",
        counts=StatusCounts(leases=3, orders=1, manifests_awaited=2),
        storage=[("beta3", 10 * GIB)],
    )
    assert status == {
        "cluster": {
            "leases": 3,
            "inventory": {
                "active": [],
                "pending": [],
                "available": {"nodes": [], "storage": [{"class": "beta3", "size": 10 * GIB}]},
            },
        },
        "bidengine": {"orders": 1},
        "manifest": {"deployments": 2},
        "cluster_public_hostname": "gpu.example.com",
    }


def test_sdk_grouping_of_the_topology_gives_exactly_the_offer() -> None:
    spec = ProviderNodeSpec.model_validate(load_example("providernode.yaml")["spec"])
    nodes = build_nodes()
    for n in nodes:  # kwok's kubelets report Ready in the cluster
        n["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    gpu_pod = {
        "metadata": {"name": "busy", "namespace": "default"},
        "spec": {
            "nodeName": "gpu-h100-0",
            "containers": [
                {
                    "name": "c",
                    "resources": {
                        "requests": {"nvidia.com/gpu": "3"},
                        "limits": {"nvidia.com/gpu": "3"},
                    },
                }
            ],
        },
        "status": {"phase": "Running"},
    }
    inventory = build_inventory(nodes, [gpu_pod], spec)
    status = render_status(inventory, hostname=spec.host_uri)
    offer = {m.model: m.offered for m in inventory.models if m.offered}
    assert offer["h100"] == 13  # two offered H100 nodes, 3 GPUs taken; the cordoned one absent
    assert available_by_gpu(status) == offer
    names = {n["name"] for n in status["cluster"]["inventory"]["available"]["nodes"]}
    assert "gpu-h100-cordoned" not in names


def lease(provider_node: str, phase: str | None) -> dict[str, Any]:
    status = {"phase": phase} if phase else {}
    return {"spec": {"providerNode": provider_node}, "status": status}


def test_leases_count_the_live_ones_of_this_provider_node() -> None:
    leases = [
        lease("ours", None),  # just created: awaiting its manifest
        lease("ours", "AwaitingManifest"),
        lease("ours", "Running"),
        lease("ours", "Closed"),
        lease("ours", "Failed"),
        lease("theirs", "Running"),
    ]
    assert count_leases(leases, "ours") == StatusCounts(leases=3, orders=0, manifests_awaited=2)
