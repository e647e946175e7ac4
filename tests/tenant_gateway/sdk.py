"""Shared test data: the README's SDK-shaped manifest and a GpuLease order that fits it."""

from __future__ import annotations

import copy
import json
from typing import Any

from gpu_provider.api.v1alpha1.gpulease import (
    GpuRequest,
    LeaseResources,
    ServiceResources,
    StorageRequest,
)

README_MANIFEST: list[dict[str, Any]] = json.loads(
    '[{"name":"westcoast","services":[{"name":"py-cuda",'
    '"image":"quay.io/jupyter/pytorch-notebook:cuda12-pytorch-2.4.1",'
    '"env":["JUPYTER_TOKEN=sentient"],"resources":{"id":1,"cpu":{"units":{"val":"8000"}},'
    '"memory":{"size":{"val":"17179869184"}},"storage":[{"name":"default",'
    '"size":{"val":"214748364800"},"attributes":[]}],'
    '"gpu":{"units":{"val":"1"},"attributes":[{"key":"vendor/nvidia/model/rtx4090",'
    '"value":"true"}]},"endpoints":[{"kind":1,"sequence_number":0}]},"count":1,'
    '"expose":[{"port":8888,"externalPort":8888,"proto":"TCP","service":"","global":true,'
    '"hosts":null,"httpOptions":{"maxBodySize":1048576,"readTimeout":60000,'
    '"sendTimeout":60000,"nextTries":3,"nextTimeout":0,"nextCases":["error","timeout"]},'
    '"ip":"","endpointSequenceNumber":0}],"params":null}]}]'
)


def manifest(**service_changes: Any) -> list[dict[str, Any]]:
    body = copy.deepcopy(README_MANIFEST)
    body[0]["services"][0].update(service_changes)
    return body


def service(body: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = body[0]["services"][0]
    return found


def order(*, gpus: int = 1, replicas: int = 1, shm_and_disk: bool = False) -> LeaseResources:
    """The order the README manifest was made for: 8 CPUs, 16 GiB, 200 GiB, 1 RTX 4090."""
    storage = [StorageRequest(name="default", size_bytes=214748364800)]
    if shm_and_disk:
        storage = [
            StorageRequest(
                name="default", size_bytes=214748364800, storage_class="beta3", persistent=True
            ),
            StorageRequest(name="default", size_bytes=8 * 2**30, storage_class="ram"),
        ]
    return LeaseResources(
        total_gpus=gpus * replicas,
        services=[
            ServiceResources(
                name="py-cuda",
                replicas=replicas,
                cpu_millis=8000,
                memory_bytes=17179869184,
                storage=storage,
                gpu=GpuRequest(units=gpus, models=["rtx4090"]),
            )
        ],
    )
