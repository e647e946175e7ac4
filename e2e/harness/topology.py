"""Turn e2e/topology.yaml into Kubernetes Node objects (pure: no API calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

TOPOLOGY_FILE = Path(__file__).resolve().parents[1] / "topology.yaml"


class Version(BaseModel):
    model_config = ConfigDict(extra="forbid")
    major: int
    minor: int
    rev: str | None = None


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    gpus: int = Field(default=0, ge=0)
    product: str | None = None
    memory_mib: int | None = Field(default=None, alias="memoryMiB")
    family: str | None = None
    compute: Version | None = None
    cpu: str | None = None
    memory: str | None = None
    offer: bool = False
    cordoned: bool = False


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: str
    memory: str
    pods: str
    driver: Version
    cuda: Version


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: Defaults
    nodes: list[NodeSpec]


def load_topology(path: Path = TOPOLOGY_FILE) -> Topology:
    return Topology.model_validate(yaml.safe_load(path.read_text()))


def gfd_labels(node: NodeSpec, defaults: Defaults) -> dict[str, str]:
    """The labels GPU Feature Discovery puts on a Node with these GPUs."""
    if not node.gpus:
        return {}
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": str(node.gpus),
        "nvidia.com/gpu.product": node.product or "",
        "nvidia.com/gpu.memory": str(node.memory_mib or 0),
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/cuda.driver.major": str(defaults.driver.major),
        "nvidia.com/cuda.driver.minor": str(defaults.driver.minor),
        "nvidia.com/cuda.driver.rev": defaults.driver.rev or "0",
        "nvidia.com/cuda.runtime.major": str(defaults.cuda.major),
        "nvidia.com/cuda.runtime.minor": str(defaults.cuda.minor),
        "nvidia.com/mig.capable": "false",
    }
    if node.family:
        labels["nvidia.com/gpu.family"] = node.family
    if node.compute:
        labels["nvidia.com/gpu.compute.major"] = str(node.compute.major)
        labels["nvidia.com/gpu.compute.minor"] = str(node.compute.minor)
    return labels


def build_node(node: NodeSpec, defaults: Defaults) -> dict[str, Any]:
    """A Node as kubelet + device plugin + GFD would register it; kwok keeps it Ready."""
    resources = {
        "cpu": node.cpu or defaults.cpu,
        "memory": node.memory or defaults.memory,
        "pods": defaults.pods,
        "ephemeral-storage": "2Ti",
    }
    if node.gpus:
        resources["nvidia.com/gpu"] = str(node.gpus)
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **gfd_labels(node, defaults),
    }
    if node.offer:
        labels["gpuprovider.dev/offer"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        # providerID keeps cloud-style node lifecycle controllers from deleting fake Nodes.
        "spec": {"providerID": f"kwok://{node.name}", "unschedulable": node.cordoned},
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def build_nodes(topology: Topology | None = None) -> list[dict[str, Any]]:
    topo = topology or load_topology()
    return [build_node(node, topo.defaults) for node in topo.nodes]
