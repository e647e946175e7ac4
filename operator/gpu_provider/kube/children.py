"""Reads for the GpuLease controller: a lease namespace's children, the cluster's addresses,
the gateway's stored pull Secrets; and the GpuLease's deletion (its status writes are
`kube.leases.patch_gpulease_status`).

Reads return plain dicts (the API's JSON), so the pure status code never sees client types.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.kube.client import off_loop

__all__ = [
    "Children",
    "cluster_addresses",
    "delete_gpulease",
    "namespace_exists",
    "read_children",
    "read_secrets",
]

JsonObject = dict[str, Any]
_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class Children:
    """What runs in a lease namespace now."""

    deployments: list[JsonObject] = field(default_factory=list)
    statefulsets: list[JsonObject] = field(default_factory=list)
    pods: list[JsonObject] = field(default_factory=list)
    services: list[JsonObject] = field(default_factory=list)
    node_addresses: dict[str, str] = field(default_factory=dict)
    """Node name -> the address tenants reach it at (ExternalIP, else InternalIP)."""


def _items(response: Any) -> list[JsonObject]:
    items: list[JsonObject] = json.loads(response.data).get("items", [])
    return items


async def _list(fn: Any, namespace: str, selector: str) -> list[JsonObject]:
    response = await off_loop(
        fn, namespace, label_selector=selector, _preload_content=False, _request_timeout=_TIMEOUT
    )
    return _items(response)


def _address(node: Mapping[str, Any]) -> str | None:
    addresses = (node.get("status") or {}).get("addresses") or []
    for wanted in ("ExternalIP", "InternalIP"):
        for address in addresses:
            if address.get("type") == wanted and address.get("address"):
                return str(address["address"])
    return None


async def read_children(api: client.ApiClient, namespace: str, selector: str) -> Children:
    """The lease's workloads, Pods and Services (empty when the namespace does not exist),
    and the addresses of the Nodes its Pods run on."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    pods, deployments, statefulsets, services = await asyncio.gather(
        _list(core.list_namespaced_pod, namespace, selector),
        _list(apps.list_namespaced_deployment, namespace, selector),
        _list(apps.list_namespaced_stateful_set, namespace, selector),
        _list(core.list_namespaced_service, namespace, selector),
    )
    nodes = sorted({str(p["spec"]["nodeName"]) for p in pods if p["spec"].get("nodeName")})
    found = await asyncio.gather(*(_node_address(core, node) for node in nodes))
    return Children(
        deployments=deployments,
        statefulsets=statefulsets,
        pods=pods,
        services=services,
        node_addresses={
            node: address for node, address in zip(nodes, found, strict=True) if address
        },
    )


async def _node_address(core: client.CoreV1Api, node: str) -> str | None:
    try:
        response = await off_loop(
            core.read_node, node, _preload_content=False, _request_timeout=_TIMEOUT
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return _address(json.loads(response.data))  # type: ignore[attr-defined]


async def cluster_addresses(api: client.ApiClient) -> list[str]:
    """Every Node's addresses and the API server's endpoints: a lease must not reach them."""
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    found: set[str] = set()
    response = await off_loop(core.list_node, _preload_content=False, _request_timeout=_TIMEOUT)
    for node in _items(response):
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") in ("ExternalIP", "InternalIP") and address.get("address"):
                found.add(str(address["address"]))
    slices = await off_loop(
        discovery.list_namespaced_endpoint_slice,
        "default",
        label_selector="kubernetes.io/service-name=kubernetes",
        _preload_content=False,
        _request_timeout=_TIMEOUT,
    )
    for endpoint_slice in _items(slices):
        for endpoint in endpoint_slice.get("endpoints") or []:
            found.update(str(a) for a in endpoint.get("addresses") or [])
    return sorted(found)


async def read_secrets(
    api: client.ApiClient, namespace: str, names: Sequence[str]
) -> list[JsonObject]:
    """The named Secrets that exist (the gateway's stored pull Secrets)."""
    core = client.CoreV1Api(api)
    found = []
    for name in names:
        try:
            response = await off_loop(
                core.read_namespaced_secret,
                name,
                namespace,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        except ApiException as error:
            if error.status == 404:
                continue
            raise
        found.append(json.loads(response.data))  # type: ignore[arg-type]
    return found


async def namespace_exists(api: client.ApiClient, name: str) -> bool:
    core = client.CoreV1Api(api)
    try:
        await off_loop(core.read_namespace, name, _request_timeout=_TIMEOUT)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


async def delete_gpulease(api: client.ApiClient, namespace: str, name: str) -> None:
    custom = client.CustomObjectsApi(api)
    try:
        await off_loop(
            custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            GPU_LEASE_PLURAL,
            name,
            _request_timeout=_TIMEOUT,
        )
    except ApiException as error:
        if error.status != 404:
            raise
