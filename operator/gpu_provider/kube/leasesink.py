"""GpuLease writes of the chain daemon: create-if-absent with status, terms, close status.

- `create_gpulease`: create the rendered GpuLease (`render.build_gpulease`) in the operator
  namespace (409: it exists, which is success, and nothing is written), then write its
  initial status (phase AwaitingManifest, the reserved placement, `matchedAt`). A create that
  succeeded but whose status write was lost (a crash in between) is repaired the next time:
  a GpuLease with no phase gets its initial status.

Status writes are JSON merge patches of the status subresource (`kube.leases.
patch_gpulease_status`, which the chain daemon's close decisions use too), so they never touch
what the workload controller writes (services, conditions). Every request is bounded
(`kube.leases.REQUEST_TIMEOUT`): a hung apiserver fails it, and intake retries the event
(create-if-absent makes that safe).
"""

from __future__ import annotations

from typing import Any, Final, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.kube.client import FIELD_MANAGER, off_loop
from gpu_provider.kube.leases import REQUEST_TIMEOUT, patch_gpulease_status, read_gpulease

__all__ = ["create_gpulease", "list_provider_leases"]

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
        _request_timeout=REQUEST_TIMEOUT,
    )
    return cast(list[JsonObject], cast(JsonObject, reply).get("items") or [])


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
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if error.status != 409:
            raise
        stored = await read_gpulease(api, namespace, name)
        if stored is not None and not (stored.get("status") or {}).get("phase"):
            # Created by a run that died before its status write: finish it now.
            await patch_gpulease_status(api, namespace, name, status)
        return False
    await patch_gpulease_status(api, namespace, name, status)
    return True
