"""Reads the gateway needs: Nodes, Pods, the ProviderNode, GpuLeases and a TLS Secret.

Lists come back as plain JSON dicts (`_preload_content=False` plus `json.loads`), the shape
Kopf hands to handlers and the pure inventory reads: deserialising 1,000 Nodes into the
client's model classes takes about 6 times as long as parsing their JSON.

Lists ask for `resourceVersion=0`: the apiserver answers from its watch cache instead of a
quorum read from etcd, so polling every few seconds stays cheap at 1,000 Nodes. The answer
may be a moment old; the caller polls again, and the list's own resourceVersion tells it
whether anything changed at all.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import (
    GPU_LEASE_PLURAL,
    GROUP,
    PROVIDER_NODE_PLURAL,
    VERSION,
    LabelSelector,
)
from gpu_provider.kube.client import off_loop

__all__ = [
    "Listed",
    "TlsSecretError",
    "list_gpu_leases",
    "list_nodes",
    "list_provider_nodes",
    "list_scheduled_pods",
    "read_provider_node",
    "read_tls_secret",
    "selector_string",
]

JsonObject = dict[str, Any]

# Pods that hold resources on a Node: scheduled and not finished.
_SCHEDULED_PODS: Final = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
_REQUEST_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class Listed:
    """One list answer: its items and the collection's resourceVersion."""

    items: list[JsonObject]
    resource_version: str


class TlsSecretError(RuntimeError):
    """The TLS Secret is missing or lacks `tls.crt`/`tls.key`; the message names which."""


def selector_string(selector: LabelSelector) -> str:
    """A LabelSelector in the apiserver's query syntax (`a=b,c in (d,e),!f`)."""
    terms = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        values = ",".join(req.values)
        terms.append(
            {
                "In": f"{req.key} in ({values})",
                "NotIn": f"{req.key} notin ({values})",
                "Exists": req.key,
                "DoesNotExist": f"!{req.key}",
            }[req.operator.value]
        )
    return ",".join(terms)


def _json(response: Any) -> JsonObject:
    data = json.loads(response.data)
    if not isinstance(data, dict):
        raise TypeError("the apiserver answered a list with something that is not an object")
    return data


def _listed(response: Any) -> Listed:
    data = _json(response)
    return Listed(
        items=list(data.get("items") or []),
        resource_version=str((data.get("metadata") or {}).get("resourceVersion", "")),
    )


async def list_nodes(api: client.ApiClient, *, label_selector: str | None = None) -> Listed:
    """Nodes, optionally only those matching a label selector (`a=b,c in (d)`)."""
    core = client.CoreV1Api(api)
    kwargs: dict[str, Any] = {"resource_version": "0", "_preload_content": False}
    if label_selector:
        kwargs["label_selector"] = label_selector
    response = await off_loop(core.list_node, _request_timeout=_REQUEST_TIMEOUT, **kwargs)
    return _listed(response)


async def list_scheduled_pods(api: client.ApiClient) -> Listed:
    """Pods bound to a Node and not finished, in every namespace: what holds capacity."""
    core = client.CoreV1Api(api)
    response = await off_loop(
        core.list_pod_for_all_namespaces,
        field_selector=_SCHEDULED_PODS,
        resource_version="0",
        _preload_content=False,
        _request_timeout=_REQUEST_TIMEOUT,
    )
    return _listed(response)


async def list_provider_nodes(api: client.ApiClient) -> list[JsonObject]:
    custom = client.CustomObjectsApi(api)
    response = await off_loop(
        custom.list_cluster_custom_object,
        GROUP,
        VERSION,
        PROVIDER_NODE_PLURAL,
        _preload_content=False,
        _request_timeout=_REQUEST_TIMEOUT,
    )
    return list(_json(response).get("items") or [])


async def read_provider_node(api: client.ApiClient, name: str) -> JsonObject | None:
    """The ProviderNode `name`, or None when it does not exist."""
    custom = client.CustomObjectsApi(api)
    try:
        response = await off_loop(
            custom.get_cluster_custom_object,
            GROUP,
            VERSION,
            PROVIDER_NODE_PLURAL,
            name,
            _preload_content=False,
            _request_timeout=_REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return _json(response)


async def list_gpu_leases(api: client.ApiClient) -> list[JsonObject]:
    """Every GpuLease in the cluster; empty when the GpuLease CRD is not installed."""
    custom = client.CustomObjectsApi(api)
    try:
        response = await off_loop(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            GPU_LEASE_PLURAL,
            resource_version="0",
            _preload_content=False,
            _request_timeout=_REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return list(_json(response).get("items") or [])


async def read_tls_secret(api: client.ApiClient, namespace: str, name: str) -> tuple[bytes, bytes]:
    """The PEM certificate chain and key of a `kubernetes.io/tls` Secret."""
    core = client.CoreV1Api(api)
    try:
        secret = await off_loop(
            core.read_namespaced_secret, name, namespace, _request_timeout=_REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            raise TlsSecretError(f"TLS Secret {namespace}/{name} does not exist") from None
        if exc.status == 403:
            raise TlsSecretError(
                f"not allowed to read TLS Secret {namespace}/{name}: grant the gateway's "
                "ServiceAccount get on it"
            ) from None
        raise
    data = secret.data or {}
    missing = [key for key in ("tls.crt", "tls.key") if not data.get(key)]
    if missing:
        raise TlsSecretError(
            f"TLS Secret {namespace}/{name} has no {' or '.join(missing)}: create it with "
            "`kubectl create secret tls`"
        )
    return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])
