"""Synthetic NodeList and PodList bodies, shaped as the apiserver returns them for kwok GPU Nodes.

Each Node is what `e2e/harness/topology.py` registers (device plugin capacity, GFD labels),
plus what the apiserver and kwok add (Ready conditions, nodeInfo, addresses, managedFields) and
the node agent's facts annotation for its 8 GPUs. Pods: on every Node a node-agent DaemonSet
Pod (no GPU), GPU lease Pods taking about half the GPUs, and a finished Job Pod; every 50th
Node is cordoned and every 20th has an unhealthy GPU, so the inventory has deviations to report.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from e2e.harness.topology import Topology, load_topology
from e2e.harness.topology import build_node as harness_node

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION, GpuFacts, NodeGpuFacts

GPUS_PER_NODE = 8
STAMP = "2026-12-01T20:00:00Z"


def _managed(manager: str, subresource: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "v1",
        "time": STAMP,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/hostname": {}}}},
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


@cache
def _topology() -> Topology:
    return load_topology()


def node(i: int, unhealthy_every: int = 20) -> dict[str, Any]:
    topology = _topology()
    spec = next(n for n in topology.nodes if n.product == "NVIDIA-H100-80GB-HBM3")
    name = f"gpu-h100-{i:04d}"
    spec = spec.model_copy(update={"name": name, "cordoned": i % 50 == 49})
    body = harness_node(spec, topology.defaults)
    unhealthy = i % unhealthy_every == 7 % unhealthy_every
    facts = NodeGpuFacts(
        driver_version="570.124.06",
        cuda_version="12.8",
        gpus=tuple(
            GpuFacts(
                index=g,
                uuid=f"GPU-{i:04d}{g:04d}-5b1c-4e1f-9a3e-0c1d2e3f4a5b",
                name="NVIDIA H100 80GB HBM3",
                pci_device_id="2330",
                memory_mib=81559,
                healthy=not (unhealthy and g == 0),
                problems=("xid 79",) if unhealthy and g == 0 else (),
            )
            for g in range(GPUS_PER_NODE)
        ),
    )
    meta = body["metadata"]
    meta["annotations"][GPU_FACTS_ANNOTATION] = facts.to_annotation()
    meta["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"] = "true"
    meta.update(
        uid=f"0b0c0d0e-{i:04d}-4000-8000-000000000000",
        resourceVersion=str(1000 + i),
        creationTimestamp=STAMP,
        managedFields=[_managed("kwok"), _managed("kwok", "status"), _managed("gpu-provider")],
    )
    status = body["status"]
    if unhealthy:
        status["allocatable"]["nvidia.com/gpu"] = str(GPUS_PER_NODE - 1)
    status["conditions"] = [
        {
            "type": kind,
            "status": "True" if kind == "Ready" else "False",
            "reason": reason,
            "message": f"kubelet {reason}",
            "lastHeartbeatTime": STAMP,
            "lastTransitionTime": STAMP,
        }
        for kind, reason in (
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
            ("NetworkUnavailable", "RouteCreated"),
            ("Ready", "KubeletReady"),
        )
    ]
    status["addresses"] = [
        {"type": "InternalIP", "address": f"10.0.{i // 250}.{i % 250}"},
        {"type": "Hostname", "address": name},
    ]
    status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": 10250}}
    status["nodeInfo"] = {
        "architecture": "amd64",
        "bootID": "",
        "containerRuntimeVersion": "kwok-v0.7.0",
        "kernelVersion": "",
        "kubeProxyVersion": "kwok-v0.7.0",
        "kubeletVersion": "kwok-v0.7.0",
        "machineID": "",
        "operatingSystem": "linux",
        "osImage": "",
        "systemUUID": "",
    }
    return body


def _pod(name: str, node_name: str, gpus: int, phase: str, owner: str) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {
            "name": name,
            "namespace": "lease-1" if gpus else "gpu-provider-system",
            "uid": f"{name}-uid",
            "resourceVersion": "1",
            "creationTimestamp": STAMP,
            "labels": {"app.kubernetes.io/name": owner, "gpuprovider.dev/lease-id": "1"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": "x"}
            ],
            "managedFields": [_managed("kube-controller-manager"), _managed("kubelet", "status")],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {
                    "name": "main",
                    "image": "quay.io/jupyter/pytorch-notebook:cuda12-pytorch-2.4.1",
                    "ports": [{"containerPort": 8888, "protocol": "TCP"}],
                    "resources": {
                        "requests": {"cpu": "8", "memory": "64Gi", **limits},
                        "limits": {"cpu": "8", "memory": "64Gi", **limits},
                    },
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                    "securityContext": {"allowPrivilegeEscalation": False},
                }
            ],
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": STAMP}],
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.1",
            "startTime": STAMP,
            "qosClass": "Guaranteed",
        },
    }


def pods_for(i: int) -> list[dict[str, Any]]:
    node_name = f"gpu-h100-{i:04d}"
    pods = [_pod(f"node-agent-{i:04d}", node_name, 0, "Running", "node-agent")]
    pods += [_pod(f"lease-{i:04d}-{k}", node_name, 2, "Running", "lease") for k in range(i % 3)]
    pods.append(_pod(f"job-{i:04d}", node_name, 4, "Succeeded", "job"))
    return pods


def list_bodies(count: int, unhealthy_every: int = 20) -> tuple[bytes, bytes]:
    """The NodeList and PodList response bodies for `count` GPU Nodes."""
    nodes = [node(i, unhealthy_every) for i in range(count)]
    pods = [p for i in range(count) for p in pods_for(i)]
    node_list = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": nodes}
    pod_list = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods}
    return json.dumps(node_list).encode(), json.dumps(pod_list).encode()
