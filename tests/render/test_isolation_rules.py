"""The numbers and ranges that isolate a lease: the egress excepts a tenant cannot get past,
and the quota that holds a namespace to the order. Table-driven: one row per rule."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gpu_provider.api.v1alpha1.gpulease import LeaseResources
from gpu_provider.render.namespace import LeaseScope
from gpu_provider.render.network import ClusterNetwork, egress_excepts
from gpu_provider.render.quota import (
    MIN_EPHEMERAL_BYTES,
    bytes_quantity,
    cpu_quantity,
    deployed_as_ordered,
    render_limit_range,
    render_resource_quota,
)

GIB = 1024**3
SCOPE = LeaseScope(
    lease_id=9, tenant="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", provider_node="p"
)


def _blocked(address: str, excepts: list[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(cidr) for cidr in excepts)


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("169.254.169.254", True),  # cloud metadata
        ("10.1.2.3", True),
        ("172.20.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),  # CGNAT
        ("127.0.0.1", True),
        ("34.120.5.6", True),  # this cluster's (public) service CIDR below
        ("52.0.0.9", True),  # this cluster's (public) Pod CIDR below
        ("198.51.100.20", True),  # the API server's public address, added by the provider
        ("8.8.8.8", False),  # the internet
        ("1.1.1.1", False),
        ("fe80::1", True),
        ("fd00::5", True),
        ("::1", True),
        ("2001:db8:77::1", True),  # this cluster's IPv6 Pod CIDR below
        ("2606:4700:4700::1111", False),
    ],
)
def test_egress_excepts_block_private_link_local_and_cluster_ranges(
    address: str, blocked: bool
) -> None:
    network = ClusterNetwork(
        service_cidrs=("34.120.0.0/16",),
        pod_cidrs=("52.0.0.0/14", "2001:db8:77::/48"),
        blocked_cidrs=("198.51.100.20/32",),
    )
    v4, v6 = egress_excepts(network)
    assert _blocked(address, v4 + v6) is blocked


@pytest.mark.parametrize(
    ("service", "pod", "v4_extra"),
    [
        # Inside 10/8: already blocked, not repeated.
        (("10.96.0.0/12",), ("10.244.0.0/16",), []),
        # A host bit set is read as its network.
        (("34.120.0.7/16",), (), ["34.120.0.0/16"]),
        # Two clusters ranges, sorted by address; a duplicate once.
        (("52.0.0.0/14", "34.120.0.0/16"), ("52.0.0.0/14",), ["34.120.0.0/16", "52.0.0.0/14"]),
    ],
)
def test_cluster_ranges_are_added_once_and_only_when_not_already_covered(
    service: tuple[str, ...], pod: tuple[str, ...], v4_extra: list[str]
) -> None:
    v4, v6 = egress_excepts(ClusterNetwork(service_cidrs=service, pod_cidrs=pod))
    fixed = [
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    assert sorted(v4, key=lambda c: ipaddress.ip_network(c)) == sorted(
        fixed + v4_extra, key=lambda c: ipaddress.ip_network(c)
    )
    assert v6 == ["::1/128", "fc00::/7", "fe80::/10"]
    for cidr in v4:  # an except must lie strictly inside 0.0.0.0/0
        assert ipaddress.ip_network(cidr).prefixlen > 0


def test_a_whole_internet_cluster_range_is_refused() -> None:
    with pytest.raises(ValueError, match="whole internet"):
        egress_excepts(ClusterNetwork(service_cidrs=("0.0.0.0/0",), pod_cidrs=()))


def _resources(*services: dict[str, Any]) -> LeaseResources:
    total = sum(s.get("gpu", {}).get("units", 0) * s.get("replicas", 1) for s in services)
    return LeaseResources.model_validate({"totalGpus": total, "services": list(services)})


VLLM = {
    "name": "vllm",
    "cpuMillis": 4000,
    "memoryBytes": 32 * GIB,
    "storage": [
        {"name": "models", "sizeBytes": 100 * GIB, "storageClass": "beta3", "persistent": True},
        {"name": "shm", "sizeBytes": 8 * GIB, "storageClass": "ram"},
        {"name": "scratch", "sizeBytes": 50 * GIB},
    ],
    "gpu": {"units": 2},
}
UI = {"name": "ui", "replicas": 3, "cpuMillis": 250, "memoryBytes": GIB // 2}


@pytest.mark.parametrize(
    ("services", "node_ports", "expected"),
    [
        (
            [VLLM],
            1,
            {
                "requests.cpu": "4",
                "limits.memory": "40Gi",  # 32 GiB + 8 GiB of /dev/shm
                "limits.ephemeral-storage": "50Gi",
                "requests.nvidia.com/gpu": "2",
                "pods": "1",
                "persistentvolumeclaims": "1",
                "requests.storage": "100Gi",
                "services.nodeports": "1",
            },
        ),
        (
            [VLLM, UI],
            3,
            {
                "requests.cpu": "4750m",
                "limits.cpu": "4750m",
                "requests.memory": "42496Mi",  # 40 GiB + 3 x 512 MiB
                "limits.ephemeral-storage": "53Gi",  # 50 + 3 replicas x the 1 GiB floor
                "requests.nvidia.com/gpu": "2",
                "pods": "4",
                "services.nodeports": "3",
            },
        ),
        (
            [
                {
                    **UI,
                    "name": "a",
                    "replicas": 2,
                    "storage": [{"name": "d", "sizeBytes": 10 * GIB, "persistent": True}],
                    "gpu": {"units": 1},
                }
            ],
            0,
            {
                "pods": "2",
                "persistentvolumeclaims": "2",  # one claim per replica
                "requests.storage": "20Gi",
                "requests.nvidia.com/gpu": "2",
                "services.nodeports": "0",
                "services.loadbalancers": "0",
            },
        ),
    ],
)
def test_quota_equals_the_order_over_all_replicas(
    services: list[dict[str, Any]], node_ports: int, expected: dict[str, str]
) -> None:
    deployed = deployed_as_ordered(_resources(*services))
    quota = render_resource_quota(SCOPE, deployed, node_ports=node_ports, services=2)
    hard = quota["spec"]["hard"]
    assert {key: hard[key] for key in expected} == expected
    assert quota["metadata"]["namespace"] == "lease-9"


def test_limit_range_caps_one_container_at_the_largest_replica() -> None:
    limits = render_limit_range(SCOPE, deployed_as_ordered(_resources(VLLM, UI)))["spec"]["limits"]
    assert limits == [
        {"type": "Container", "max": {"cpu": "4", "memory": "40Gi", "ephemeral-storage": "50Gi"}},
        {"type": "PersistentVolumeClaim", "max": {"storage": "100Gi"}},
    ]


@pytest.mark.parametrize(
    ("millis", "text"), [(8000, "8"), (500, "500m"), (4750, "4750m"), (1, "1m")]
)
def test_cpu_quantities(millis: int, text: str) -> None:
    assert cpu_quantity(millis) == text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (16 * GIB, "16Gi"),
        (GIB // 2, "512Mi"),
        (MIN_EPHEMERAL_BYTES, "1Gi"),
        (1000, "1000"),
        (3 * 1024, "3Ki"),
        (2 * 1024**4, "2Ti"),
    ],
)
def test_byte_quantities_are_exact(amount: int, text: str) -> None:
    assert bytes_quantity(amount) == text


def test_more_replicas_than_ordered_split_what_was_paid_for() -> None:
    """The SDK's orders list 1 replica and the manifest's `count` the real number: 2 replicas
    of a 2-GPU, 8-core order get 1 GPU and 4 cores each, and the quota stays the order's."""
    (service,) = _resources(
        {"name": "w", "cpuMillis": 8000, "memoryBytes": 16 * GIB, "gpu": {"units": 2}}
    ).services
    quota = render_resource_quota(SCOPE, [(service, 2)], node_ports=0, services=0)["spec"]["hard"]
    assert (quota["requests.cpu"], quota["requests.memory"]) == ("8", "16Gi")
    assert (quota["requests.nvidia.com/gpu"], quota["pods"]) == ("2", "2")
    limits = render_limit_range(SCOPE, [(service, 2)])["spec"]["limits"][0]["max"]
    assert (limits["cpu"], limits["memory"]) == ("4", "8Gi")
