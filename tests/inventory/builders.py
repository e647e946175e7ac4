"""Node and Pod objects as the API returns them (plain camelCase dicts), for inventory tests."""

from __future__ import annotations

from typing import Any

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION, GpuFacts, NodeGpuFacts
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec

H100: dict[str, Any] = {
    "product": "NVIDIA-H100-80GB-HBM3",
    "memory": 81559,
    "pci": "2330",
    "nvml": "NVIDIA H100 80GB HBM3",
}
A100: dict[str, Any] = {
    "product": "NVIDIA-A100-SXM4-80GB",
    "memory": 81920,
    "pci": "20b2",
    "nvml": "NVIDIA A100-SXM4-80GB",
}


def spec(**overrides: Any) -> ProviderNodeSpec:
    """A valid ProviderNode spec selecting every Node, keeping nothing back unless told."""
    data: dict[str, Any] = {
        "wallet": {"secretName": "provider-wallet", "privateKeyKey": "key"},
        "region": "us-west",
        "hostUri": "gpu.example.com",
        "acceptedTokens": [
            {"symbol": "USDT", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
        ],
        "pricing": {"token": "USDT", "gpu": [{"model": "h100", "usdPerHour": "2"}]},
        "reservedPerNode": {"cpu": "0", "memory": "0", "ephemeralStorage": "0"},
    }
    data.update(overrides)
    return ProviderNodeSpec.model_validate(data)


def facts(*gpus: dict[str, Any], driver: str = "570.124.06", cuda: str = "12.8") -> str:
    """The node agent's annotation for GPUs given as {model-dict, healthy?, mig?, uuid?}."""
    return NodeGpuFacts(
        driver_version=driver,
        cuda_version=cuda,
        gpus=tuple(
            GpuFacts(
                index=i,
                uuid=g.get("uuid", f"GPU-{i:04d}"),
                name=g["model"]["nvml"],
                pci_device_id=g["model"]["pci"],
                memory_mib=g["model"]["memory"],
                mig_enabled=g.get("mig", False),
                healthy=g.get("healthy", True),
                problems=() if g.get("healthy", True) else ("xid 79",),
            )
            for i, g in enumerate(gpus)
        ),
    ).to_annotation()


def node(
    name: str = "gpu-0",
    *,
    gpus: int | None = 8,
    allocatable: int | None = None,
    product: str | None = H100["product"],
    memory: int | None = H100["memory"],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    ready: str | None = "True",
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
    extra_resources: dict[str, str] | None = None,
    cpu: str = "64",
    mem: str = "512Gi",
) -> dict[str, Any]:
    """A GPU Node shaped like e2e/harness/topology.py builds them (device plugin + GFD)."""
    resources = {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "2Ti"}
    allocated = dict(resources)
    all_labels = {"kubernetes.io/hostname": name, "gpuprovider.dev/offer": "true"}
    if gpus is not None:
        resources["nvidia.com/gpu"] = str(gpus)
        allocated["nvidia.com/gpu"] = str(gpus if allocatable is None else allocatable)
        all_labels["nvidia.com/gpu.present"] = "true"
        all_labels["nvidia.com/gpu.count"] = str(gpus)
        all_labels["nvidia.com/gpu.replicas"] = "1"
    if product is not None:
        all_labels["nvidia.com/gpu.product"] = product
    if memory is not None:
        all_labels["nvidia.com/gpu.memory"] = str(memory)
    all_labels.update(labels or {})
    for key, value in (extra_resources or {}).items():
        resources[key] = value
        allocated[key] = value
    status: dict[str, Any] = {"capacity": resources, "allocatable": allocated}
    if ready is not None:
        status["conditions"] = [
            {"type": "MemoryPressure", "status": "False"},
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
            },
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels, "annotations": annotations or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": status,
    }


def pod(
    node_name: str | None = "gpu-0",
    *,
    gpus: int = 0,
    cpu: str | None = None,
    memory: str | None = None,
    phase: str = "Running",
    resource: str = "nvidia.com/gpu",
    limits_only: bool = True,
    init: list[dict[str, Any]] | None = None,
    name: str = "p",
) -> dict[str, Any]:
    """A Pod as the API returns it; GPUs in limits (as users write them), CPU/memory in requests."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    if gpus:
        (limits if limits_only else requests)[resource] = str(gpus)
    spec_: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": "x", "resources": {"requests": requests, "limits": limits}}
        ],
    }
    if node_name is not None:
        spec_["nodeName"] = node_name
    if init is not None:
        spec_["initContainers"] = init
    return {
        "metadata": {"name": name, "namespace": "lease-1"},
        "spec": spec_,
        "status": {"phase": phase},
    }


def agent(*gpus: dict[str, Any]) -> dict[str, str]:
    """Node annotations carrying the agent's facts."""
    return {GPU_FACTS_ANNOTATION: facts(*gpus)}
