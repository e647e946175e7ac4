"""/status follows what the cluster can sell: a GPU Pod or an unhealthy GPU shrinks it.

Story: a workload takes both RTX 4090s of gpu-4090-0, so tenants no longer see any; the node
agent reports an A100 with an XID error, so tenants see one A100 fewer and that card is not
listed at all. Undoing each brings the GPUs back.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from tests.gateway.sdk_grouping import available_by_gpu

from e2e.gateway.process import Gateway, wait_for
from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION, GpuFacts, NodeGpuFacts


def row(gateway: Gateway, name: str) -> dict[str, Any] | None:
    nodes = gateway.get("/status")[1]["cluster"]["inventory"]["available"]["nodes"]
    return next((n for n in nodes if n["name"] == name), None)


def available(gateway: Gateway, model: str) -> float:
    return available_by_gpu(gateway.get("/status")[1]).get(model, 0)


def test_a_gpu_pod_takes_its_gpus_off_the_offer(
    gateway: Gateway, core: client.CoreV1Api, namespace: str
) -> None:
    wait_for(lambda: available(gateway, "rtx4090") == 2, "2 RTX 4090 offered")
    core_pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="trainer"),
        spec=client.V1PodSpec(
            node_name="gpu-4090-0",
            containers=[
                client.V1Container(
                    name="train",
                    image="registry.invalid/train:1",
                    resources=client.V1ResourceRequirements(
                        limits={"nvidia.com/gpu": "2"}, requests={"nvidia.com/gpu": "2"}
                    ),
                )
            ],
        ),
    )
    core.create_namespaced_pod(namespace, core_pod)
    try:
        wait_for(lambda: available(gateway, "rtx4090") == 0, "the RTX 4090s to leave the offer")
        taken = row(gateway, "gpu-4090-0")
        assert taken is not None
        assert taken["available"]["gpu"] == 0
        assert [i["vram_available_percentage"] for i in taken["allocatable"]["gpu_infos"]] == [
            0,
            0,
        ]
    finally:
        core.delete_namespaced_pod("trainer", namespace, grace_period_seconds=0)
    wait_for(lambda: available(gateway, "rtx4090") == 2, "the RTX 4090s to come back")


def a100_facts(unhealthy_index: int | None) -> str:
    return NodeGpuFacts(
        driver_version="570.124.06",
        cuda_version="12.8",
        gpus=tuple(
            GpuFacts(
                index=i,
                uuid=f"GPU-a100-1-{i}",
                name="NVIDIA A100-SXM4-80GB",
                pci_device_id="20b2",
                memory_mib=81920,
                healthy=i != unhealthy_index,
                problems=("xid 79",) if i == unhealthy_index else (),
            )
            for i in range(4)
        ),
    ).to_annotation()


def test_an_unhealthy_gpu_is_neither_offered_nor_listed(
    gateway: Gateway, core: client.CoreV1Api
) -> None:
    def annotate(value: str | None) -> None:
        core.patch_node("gpu-a100-1", {"metadata": {"annotations": {GPU_FACTS_ANNOTATION: value}}})

    wait_for(lambda: available(gateway, "a100-80g") == 8, "8 A100 offered")
    annotate(a100_facts(unhealthy_index=2))
    try:
        wait_for(lambda: available(gateway, "a100-80g") == 7, "the sick A100 to leave the offer")
        sick_node = row(gateway, "gpu-a100-1")
        assert sick_node is not None
        infos = sick_node["allocatable"]["gpu_infos"]
        assert len(infos) == 3
        assert {(i["model_id"], i["interface"]) for i in infos} == {("20b2", "SXM4")}
    finally:
        annotate(None)
    wait_for(lambda: available(gateway, "a100-80g") == 8, "the A100 to come back")
