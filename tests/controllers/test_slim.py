"""What the indexes keep of a Node or Pod, and which changes wake a reconcile."""

from __future__ import annotations

import copy
from typing import Any

from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION
from gpu_provider.controllers.slim import fingerprint, holds_resources, slim_node, slim_pod

NODE: dict[str, Any] = {
    "metadata": {
        "name": "gpu-h100-0",
        "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "annotations": {GPU_FACTS_ANNOTATION: '{"v":1}', "node.alpha/ttl": "0"},
        "managedFields": [{"manager": "kubelet"}],
        "resourceVersion": "1",
    },
    "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
    "status": {
        "capacity": {"nvidia.com/gpu": "8"},
        "allocatable": {"nvidia.com/gpu": "8"},
        "conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
            {"type": "MemoryPressure", "status": "False"},
        ],
        "images": [{"names": ["registry.example/big:1"], "sizeBytes": 1}],
    },
}


def test_a_heartbeat_changes_nothing_the_inventory_reads() -> None:
    later = copy.deepcopy(NODE)
    later["metadata"]["resourceVersion"] = "2"
    later["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:40Z"
    assert fingerprint(slim_node(later)) == fingerprint(slim_node(NODE))


def test_a_cordon_an_unhealthy_gpu_or_a_lost_device_does() -> None:
    base = fingerprint(slim_node(NODE))
    cordoned = copy.deepcopy(NODE)
    cordoned["spec"]["unschedulable"] = True
    sick = copy.deepcopy(NODE)
    sick["metadata"]["annotations"][GPU_FACTS_ANNOTATION] = '{"v":1,"gpus":[]}'
    fewer = copy.deepcopy(NODE)
    fewer["status"]["allocatable"]["nvidia.com/gpu"] = "7"
    assert len({base, *(fingerprint(slim_node(n)) for n in (cordoned, sick, fewer))}) == 4


def test_the_slim_node_keeps_no_bulk() -> None:
    slim = slim_node(NODE)
    assert "managedFields" not in slim["metadata"]
    assert "images" not in slim["status"]
    assert slim["metadata"]["annotations"] == {GPU_FACTS_ANNOTATION: '{"v":1}'}
    assert [c["type"] for c in slim["status"]["conditions"]] == ["Ready"]


def test_only_bound_unfinished_pods_hold_resources() -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {
            "nodeName": "gpu-h100-0",
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}, "image": "x"}],
        },
        "status": {"phase": "Running"},
    }
    assert holds_resources(pod)
    assert slim_pod(pod)["spec"]["containers"] == [
        {"resources": {"requests": {}, "limits": {"nvidia.com/gpu": "2"}}}
    ]
    assert not holds_resources({**pod, "status": {"phase": "Succeeded"}})
    assert not holds_resources({**pod, "spec": {**pod["spec"], "nodeName": None}})
