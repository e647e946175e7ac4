"""GpuLease reads and writes (one copy for the tenant API, the lease controller and the chain
daemon), and reads of a lease namespace's objects.

Writes:

- `write_manifest`: a JSON merge patch of `spec.manifest` guarded by the resourceVersion
  read (optimistic concurrency: a lease changed meanwhile answers `LeaseConflict`, and the
  caller reads again). Nothing else of the spec is touched. The manifest's `services` list
  is replaced whole, so a new manifest replaces the old one.
- `apply_pull_secrets`: server-side apply of each registry-credentials Secret (field
  manager `gpu-provider`) in the pull-Secret namespace (`render.pullsecret`), and deletion of
  the lease's credentials Secrets the new manifest no longer has (a `deletecollection`: the
  gateway can neither list nor read Secrets).
- `patch_gpulease` / `patch_gpulease_status`: JSON merge patches of a GpuLease or of its
  status subresource: the writes above, the lease controller's status writes, and the chain
  daemon's (`kube.leasesink`, the terms and close status). Every request is bounded
  (`REQUEST_TIMEOUT`): a hung apiserver fails it, and the caller's loop retries.
- `request_close`: the annotation `gpuprovider.dev/close-requested-at` on a GpuLease, which
  asks the lease controller to check the chain now (it closes only on chain evidence).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpu_provider.api.v1alpha1 import GPU_LEASE_PLURAL, GROUP, VERSION
from gpu_provider.kube.apply import delete_collection
from gpu_provider.kube.client import FIELD_MANAGER, off_loop

__all__ = [
    "CLOSE_REQUESTED_ANNOTATION",
    "LeaseConflict",
    "apply_pull_secrets",
    "delete_pull_secrets",
    "list_lease_objects",
    "list_tenant_leases",
    "patch_gpulease",
    "patch_gpulease_status",
    "pod_log",
    "read_gpulease",
    "request_close",
    "write_manifest",
]

JsonObject = dict[str, Any]
CLOSE_REQUESTED_ANNOTATION: Final = "gpuprovider.dev/close-requested-at"
_MERGE_PATCH: Final = "application/merge-patch+json"
_APPLY_PATCH: Final = "application/apply-patch+yaml"
REQUEST_TIMEOUT: Final = 15.0


class LeaseConflict(RuntimeError):
    """The GpuLease changed between the read and the write (resourceVersion moved)."""


def _json(response: Any) -> Any:
    return json.loads(response.data)


async def read_gpulease(
    api: client.ApiClient,
    namespace: str,
    name: str,
) -> JsonObject | None:
    """The GpuLease as stored now (a quorum read: the manifest check needs the latest)."""
    custom = client.CustomObjectsApi(api)
    try:
        response = await off_loop(
            custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            GPU_LEASE_PLURAL,
            name,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    found: JsonObject = _json(response)
    return found


async def patch_gpulease(
    api: client.ApiClient,
    namespace: str,
    name: str,
    patch: Mapping[str, Any],
) -> JsonObject:
    """JSON merge patch `patch` into the GpuLease (not its status); the stored object."""
    custom = client.CustomObjectsApi(api)
    return await _merge_patch(custom.patch_namespaced_custom_object, namespace, name, patch)


async def patch_gpulease_status(
    api: client.ApiClient,
    namespace: str,
    name: str,
    status: Mapping[str, Any],
    *,
    missing_ok: bool = False,
) -> None:
    """JSON merge patch `status` into the GpuLease's status subresource (a null removes a
    field; it never touches what others write there). Raises if the apiserver did not take
    it; with `missing_ok` a GpuLease gone meanwhile is not an error (it was deleted, and its
    finalizer handles the rest)."""
    custom = client.CustomObjectsApi(api)
    try:
        await _merge_patch(
            custom.patch_namespaced_custom_object_status,
            namespace,
            name,
            {"status": dict(status)},
        )
    except ApiException as error:
        if not (missing_ok and error.status == 404):
            raise


async def _merge_patch(
    method: Any, namespace: str, name: str, patch: Mapping[str, Any]
) -> JsonObject:
    response = await off_loop(
        method,
        GROUP,
        VERSION,
        namespace,
        GPU_LEASE_PLURAL,
        name,
        dict(patch),
        field_manager=FIELD_MANAGER,
        _content_type=_MERGE_PATCH,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    stored: JsonObject = _json(response)
    return stored


async def write_manifest(
    api: client.ApiClient,
    namespace: str,
    name: str,
    manifest: Mapping[str, Any],
    *,
    resource_version: str,
) -> JsonObject:
    """Set `spec.manifest` if the GpuLease is still at `resource_version`; the stored object."""
    patch = {"metadata": {"resourceVersion": resource_version}, "spec": {"manifest": manifest}}
    try:
        return await patch_gpulease(api, namespace, name, patch)
    except ApiException as error:
        if error.status == 409:
            raise LeaseConflict(f"GpuLease {namespace}/{name} changed meanwhile") from None
        raise


async def apply_pull_secrets(
    api: client.ApiClient,
    namespace: str,
    lease_selector: str,
    secrets: Mapping[str, Mapping[str, Any]],
) -> None:
    """Apply `secrets` (name -> body) in `namespace`; delete the lease's other credentials
    Secrets there with one `deletecollection` (never a list or a read: the gateway may not)."""
    core = client.CoreV1Api(api)
    for name, body in secrets.items():
        try:
            await _apply_secret(core, namespace, name, body)
        except ApiException as error:
            if error.status != 404:
                raise
            # The chart creates the namespace; a development gateway running with a
            # kubeconfig that may create namespaces makes it here.
            await _create_namespace(core, namespace)
            await _apply_secret(core, namespace, name, body)
    await delete_collection(api, "Secret", namespace, lease_selector, exclude=sorted(secrets))


async def _apply_secret(
    core: client.CoreV1Api, namespace: str, name: str, body: Mapping[str, Any]
) -> None:
    await off_loop(
        core.patch_namespaced_secret,
        name,
        namespace,
        dict(body),
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=_APPLY_PATCH,
        _request_timeout=REQUEST_TIMEOUT,
    )


async def _create_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        await off_loop(
            core.create_namespace,
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)),
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if error.status != 409:
            raise


async def delete_pull_secrets(api: client.ApiClient, namespace: str, lease_selector: str) -> None:
    """Delete every credentials Secret of a lease (it is closing)."""
    await delete_collection(api, "Secret", namespace, lease_selector)


async def list_tenant_leases(
    api: client.ApiClient, namespace: str, tenant_selector: str
) -> list[JsonObject]:
    custom = client.CustomObjectsApi(api)
    response = await off_loop(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        GPU_LEASE_PLURAL,
        label_selector=tenant_selector,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    items: list[JsonObject] = _json(response).get("items", [])
    return items


async def request_close(api: client.ApiClient, namespace: str, name: str, at: str) -> None:
    """Annotate the GpuLease: the tenant says it closed the lease on chain, check now."""
    await patch_gpulease(
        api, namespace, name, {"metadata": {"annotations": {CLOSE_REQUESTED_ANNOTATION: at}}}
    )


_LEASE_KINDS: Final = ("deployments", "statefulsets", "services", "pods", "events")


def _lister(api: client.ApiClient, kind: str) -> Any:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    return {
        "deployments": apps.list_namespaced_deployment,
        "statefulsets": apps.list_namespaced_stateful_set,
        "services": core.list_namespaced_service,
        "pods": core.list_namespaced_pod,
        "events": core.list_namespaced_event,
    }[kind]


async def list_lease_objects(
    api: client.ApiClient, namespace: str, kind: str, *, label_selector: str | None = None
) -> list[JsonObject]:
    """Objects of `kind` (one of `_LEASE_KINDS`) in the lease namespace, as plain dicts;
    empty when the namespace does not exist (yet, or any more): a list there is empty."""
    if kind not in _LEASE_KINDS:
        raise ValueError(f"not a kind of a lease namespace: {kind}")
    response = await off_loop(
        _lister(api, kind),
        namespace,
        label_selector=label_selector or "",
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    items: list[JsonObject] = _json(response).get("items", [])
    return items


async def pod_log(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    *,
    tail: int | None,
    since_seconds: int | None = None,
) -> str:
    """A pod's log, each line prefixed with its RFC 3339 timestamp and a space."""
    core = client.CoreV1Api(api)
    text: str = await off_loop(
        core.read_namespaced_pod_log,
        pod,
        namespace,
        tail_lines=tail,
        since_seconds=since_seconds,
        timestamps=True,
        _request_timeout=REQUEST_TIMEOUT,
    )
    return text
