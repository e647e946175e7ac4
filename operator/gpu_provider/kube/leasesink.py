"""GpuLease writes of the chain daemon: create-if-absent with status, terms, close status.

- `create_gpulease`: create the rendered GpuLease (`render.build_gpulease`) in the operator
  namespace (409: it exists, which is success, and nothing is written), then write its
  initial status (phase AwaitingManifest, the reserved placement, `matchedAt`). A create that
  succeeded but whose status write was lost (a crash in between) is repaired the next time:
  a GpuLease with no phase gets its initial status.

Status writes are JSON merge patches of the status subresource, so they never touch what the
workload controller writes (services, conditions).
"""

from __future__ import annotations

from typing import Any, Final, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = [
    "create_gpulease",
    "list_provider_leases",
    "patch_lease",
    "patch_lease_status",
]

_MERGE_PATCH: Final = "application/merge-patch+json"
PROVIDER_NODE_LABEL: Final = "gpuprovider.dev/provider-node"

JsonObject = dict[str, Any]


async def list_provider_leases(
    api: client.ApiClient, namespace: str, provider_node: str
) -> list[JsonObject]:
    """Every GpuLease of `provider_node` in `namespace` (by its provider-node label)."""
    custom = client.CustomObjectsApi(api)
    reply = await off_loop(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        GPU_LEASE_PLURAL,
        label_selector=f"{PROVIDER_NODE_LABEL}={provider_node}",
    )
    return cast(list[JsonObject], cast(JsonObject, reply).get("items") or [])


async def patch_lease_status(
    api: client.ApiClient, namespace: str, name: str, status: JsonObject
) -> None:
    """Merge `status` into the GpuLease's status; raises if the apiserver did not take it."""
    custom = client.CustomObjectsApi(api)
    await off_loop(
        custom.patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        GPU_LEASE_PLURAL,
        name,
        {"status": status},
        field_manager=FIELD_MANAGER,
        _content_type=_MERGE_PATCH,
    )


async def patch_lease(api: client.ApiClient, namespace: str, name: str, patch: JsonObject) -> None:
    custom = client.CustomObjectsApi(api)
    await off_loop(
        custom.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        GPU_LEASE_PLURAL,
        name,
        patch,
        field_manager=FIELD_MANAGER,
        _content_type=_MERGE_PATCH,
    )


async def read_lease(api: client.ApiClient, namespace: str, name: str) -> JsonObject | None:
    custom = client.CustomObjectsApi(api)
    try:
        body = await off_loop(
            custom.get_namespaced_custom_object, GROUP, VERSION, namespace, GPU_LEASE_PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return cast(JsonObject, body)


async def create_gpulease(api: client.ApiClient, body: JsonObject, status: JsonObject) -> bool:
    """Create `body` if absent and write its initial `status`; False when it existed."""
    meta = body["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    custom = client.CustomObjectsApi(api)
    try:
        await off_loop(
            custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            GPU_LEASE_PLURAL,
            body,
            field_manager=FIELD_MANAGER,
        )
    except ApiException as error:
        if error.status != 409:
            raise
        stored = await read_lease(api, namespace, name)
        if stored is not None and not (stored.get("status") or {}).get("phase"):
            # Created by a run that died before its status write: finish it now.
            await patch_lease_status(api, namespace, name, status)
        return False
    await patch_lease_status(api, namespace, name, status)
    return True
