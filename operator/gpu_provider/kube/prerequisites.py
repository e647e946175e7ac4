"""Whether the cluster has what the provider's leases need: RuntimeClass and IngressClass."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.kube.client import off_loop

__all__ = ["ingress_class_exists", "runtime_class_exists"]


async def runtime_class_exists(api: client.ApiClient, name: str) -> bool:
    try:
        await off_loop(client.NodeV1Api(api).read_runtime_class, name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


async def ingress_class_exists(api: client.ApiClient, name: str) -> bool:
    try:
        await off_loop(client.NetworkingV1Api(api).read_ingress_class, name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
