"""The status JSON Spheron's SDK reads, from a GpuLease and its namespace's objects."""

from __future__ import annotations

from typing import Any

from gpu_provider.api.manifest import parse_manifest
from gpu_provider.api.v1alpha1.gpulease import (
    ForwardedPort,
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeaseManifest,
    ServiceStatus,
)
from gpu_provider.gateway.leasestatus import SERVICE_LABEL, event_line, lease_status
from tests.tenant_gateway.sdk import manifest, order

SDK_SERVICE_KEYS = {
    "name",
    "available",
    "total",
    "uris",
    "observed_generation",
    "replicas",
    "updated_replicas",
    "ready_replicas",
    "available_replicas",
}
SDK_PORT_KEYS = {"host", "port", "externalPort", "proto", "name"}


def _spec(count: int = 2) -> GpuLeaseSpec:
    return GpuLeaseSpec(
        lease_id="7",
        order_id="7",
        provider_node="devnet-provider",
        tenant="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        token="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        accepted_price="100",
        start_block=1,
        num_of_blocks=1800,
        resources=order(replicas=2),
        manifest=LeaseManifest.from_sdk(parse_manifest(manifest(count=count))),
    )


def _deployment(ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "py-cuda-abc", "labels": {SERVICE_LABEL: "py-cuda"}},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


NODE_PORT = {
    "metadata": {"name": "py-cuda-np", "labels": {SERVICE_LABEL: "py-cuda"}},
    "spec": {
        "type": "NodePort",
        "ports": [{"port": 8888, "targetPort": 8888, "nodePort": 31888, "protocol": "TCP"}],
    },
}
CLUSTER_IP = {
    "metadata": {"name": "py-cuda"},
    "spec": {"type": "ClusterIP", "ports": [{"port": 1}]},
}


def test_a_running_service_with_its_forwarded_port() -> None:
    status = GpuLeaseStatus(services=[ServiceStatus(name="py-cuda", uris=["a.example"])])
    document = lease_status(
        _spec(),
        status,
        host="gpu.example.com",
        workloads=[_deployment(1)],
        services=[NODE_PORT, CLUSTER_IP],
    )
    entry = document["services"]["py-cuda"]
    assert set(entry) == SDK_SERVICE_KEYS
    assert entry == {
        "name": "py-cuda",
        "available": 1,
        "total": 2,
        "uris": ["a.example"],
        "observed_generation": 3,
        "replicas": 2,
        "updated_replicas": 2,
        "ready_replicas": 1,
        "available_replicas": 1,
    }
    assert document["forwarded_ports"] == {
        "py-cuda": [
            {
                "host": "gpu.example.com",
                "port": 8888,
                "externalPort": 31888,
                "proto": "TCP",
                "name": "py-cuda",
            }
        ]
    }


def test_a_service_not_deployed_yet_shows_zeros_and_the_manifests_replicas() -> None:
    document = lease_status(_spec(count=2), GpuLeaseStatus(), host="h")
    assert document["services"]["py-cuda"]["total"] == 2
    assert document["services"]["py-cuda"]["ready_replicas"] == 0
    assert document["forwarded_ports"] == {}


def test_without_a_manifest_there_are_no_services() -> None:
    spec = _spec().model_copy(update={"manifest": None})
    assert lease_status(spec, GpuLeaseStatus(), host="h") == {"services": {}, "forwarded_ports": {}}


def test_ports_the_controller_recorded_are_used_when_no_service_object_is_seen() -> None:
    status = GpuLeaseStatus(
        services=[
            ServiceStatus(
                name="py-cuda", forwarded_ports=[ForwardedPort(port=22, external_port=30022)]
            )
        ]
    )
    ports = lease_status(_spec(), status, host="h")["forwarded_ports"]["py-cuda"]
    assert ports == [
        {"host": "h", "port": 22, "externalPort": 30022, "proto": "TCP", "name": "py-cuda"}
    ]
    assert set(ports[0]) == SDK_PORT_KEYS


def test_an_event_line() -> None:
    event = {
        "type": "Warning",
        "reason": "Failed",
        "message": "Back-off pulling image",
        "source": {"component": "kubelet"},
        "involvedObject": {"kind": "Pod", "name": "py-cuda-1"},
        "lastTimestamp": "2026-12-01T00:00:00Z",
    }
    assert event_line(event) == {
        "type": "Warning",
        "reason": "Failed",
        "note": "Back-off pulling image",
        "reportingController": "kubelet",
        "reportingInstance": "",
        "object": {"kind": "Pod", "name": "py-cuda-1"},
        "lastTimestamp": "2026-12-01T00:00:00Z",
    }


def test_counts_the_controller_recorded_are_used_when_no_workload_is_seen() -> None:
    status = GpuLeaseStatus(services=[ServiceStatus(name="py-cuda", replicas=2, ready_replicas=1)])
    entry = lease_status(_spec(count=2), status, host="h")["services"]["py-cuda"]
    assert (entry["total"], entry["replicas"], entry["ready_replicas"]) == (2, 2, 1)
