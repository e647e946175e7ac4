"""The workload of one manifest service: a Deployment, or a StatefulSet when the order has a
persistent volume (each replica keeps its own PVC across restarts).

Pods are built to pass Pod Security `restricted`: non-root, no privilege escalation, every
capability dropped, the runtime's seccomp profile, no service account token, no service links.
`leaseDefaults.rootImages` says what an image whose user is root runs as: `Refuse` (the
kubelet's refusal is what the controller reports: `CreateContainerConfigError`, "container has
runAsNonRoot and image will run as root"), `RunAsUser` (uid/gid 1000, still `restricted`) or
`Allow` (its own user, the namespace at `baseline`).

Volumes (the SDK sends one storage entry named `default`; see `persistent_mounts`):
- `ram` volumes: one memory-backed emptyDir at `/dev/shm`, sized as ordered;
- persistent volumes: a volumeClaimTemplate each, mounted where `params.storage` says;
- other volumes are scratch space, counted in ephemeral-storage, mounted only when named.
"""

from __future__ import annotations

from typing import Any, Final

from gpu_provider.api.v1alpha1.gpulease import (
    ManifestService,
    Placement,
    ServiceResources,
    StorageRequest,
    VolumeMount,
)
from gpu_provider.api.v1alpha1.providernode import LeaseDefaults, RootImages
from gpu_provider.inventory.objects import LEASE_TOLERATIONS
from gpu_provider.market.catalog import GpuCatalog
from gpu_provider.render.labels import SERVICE_LABEL, service_selector
from gpu_provider.render.namespace import SERVICE_ACCOUNT, LeaseScope
from gpu_provider.render.quota import ReplicaBudget, bytes_quantity, is_persistent, is_ram

__all__ = [
    "DEFAULT_PERSISTENT_MOUNT",
    "GPU_PRODUCT_LABEL",
    "SHM_PATH",
    "gpu_products",
    "persistent_mounts",
    "render_workload",
]

SHM_PATH: Final = "/dev/shm"  # noqa: S108 - a path inside the container, not a temp file
SHM_VOLUME: Final = "shm"
DEFAULT_PERSISTENT_MOUNT: Final = "/data"
"""Where a persistent volume goes when `params.storage` names no path for it."""
GPU_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
REVISION_HISTORY: Final = 2
# Owned volumes writable by a non-root process whatever its uid: the group is the kubelet's
# fsGroup (the image's own user is kept; no runAsUser is forced on it).
FS_GROUP: Final = 1000
RUN_AS_ID: Final = 1000
"""The uid and gid of every container under `rootImages: RunAsUser`."""


def gpu_products(
    service: ServiceResources, placement: Placement | None, catalog: GpuCatalog
) -> list[str]:
    """GFD product labels the service's GPUs may carry: of the model the bid reserved when the
    order accepts it, else of every model the order accepts; empty when any GPU will do."""
    models = list(service.gpu.models)
    if placement and placement.model and (not models or placement.model in models):
        models = [placement.model]
    products: list[str] = []
    for short_name in models:
        model = catalog.by_short_name(short_name)
        products.extend(model.gfd_products if model else ())
    return sorted(set(products))


def _volume_names(volumes: list[StorageRequest]) -> list[str]:
    names = [v.name for v in volumes]
    unique = len(set(names)) == len(names)
    return names if unique else [f"{name}-{i}" for i, name in enumerate(names)]


def persistent_mounts(
    volumes: list[StorageRequest], mounts: list[VolumeMount]
) -> list[tuple[str, str, bool]]:
    """(volume name, path, read-only) of each persistent volume, in order.

    A mount naming the volume wins. The SDK names its one storage entry `default` whatever
    the order calls it, so mounts that name no ordered volume go, in turn, to the persistent
    volumes left; the rest get `DEFAULT_PERSISTENT_MOUNT` (`/data`, then `/data-1`, ...).
    """
    ordered = {v.name for v in volumes}
    spare = [m for m in mounts if m.volume not in ordered and m.path != SHM_PATH]
    placed: list[tuple[str, str, bool]] = []
    for index, (volume, name) in enumerate(zip(volumes, _volume_names(volumes), strict=True)):
        mount = next((m for m in mounts if m.volume == volume.name), None)
        if mount is None and spare:
            mount = spare.pop(0)
        if mount is not None:
            placed.append((name, mount.path, mount.read_only))
        else:
            suffix = f"-{index}" if index else ""
            placed.append((name, f"{DEFAULT_PERSISTENT_MOUNT}{suffix}", False))
    return placed


def _affinity(products: list[str], node: str | None) -> dict[str, Any] | None:
    terms = []
    if node:
        terms.append({"key": HOSTNAME_LABEL, "operator": "In", "values": [node]})
    if products:
        terms.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": products})
    if not terms:
        return None
    required = {"nodeSelectorTerms": [{"matchExpressions": terms}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def _pod_security(root_images: RootImages, with_claims: bool) -> dict[str, Any]:
    security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if root_images is not RootImages.ALLOW:
        security["runAsNonRoot"] = True
    if root_images is RootImages.RUN_AS_USER:
        # Forced on every container: a root image runs as this user, not as root.
        security.update({"runAsUser": RUN_AS_ID, "runAsGroup": RUN_AS_ID, "fsGroup": FS_GROUP})
    if with_claims:
        security.update({"fsGroup": FS_GROUP, "fsGroupChangePolicy": "OnRootMismatch"})
    return security


def _container_security(run_as_non_root: bool) -> dict[str, Any]:
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if run_as_non_root:
        context = {"runAsNonRoot": True, **context}
    return context


def render_workload(
    scope: LeaseScope,
    ordered: ServiceResources,
    service: ManifestService,
    *,
    placement: Placement | None,
    defaults: LeaseDefaults,
    catalog: GpuCatalog,
) -> dict[str, Any]:
    """The Deployment (StatefulSet with persistent storage) that runs `service` as ordered;
    `defaults.root_images` decides the user it runs as."""
    budget = ReplicaBudget.of(ordered, service.replicas)
    selector = service_selector(scope.lease_id, service.name)
    labels = scope.labels("workload", **{SERVICE_LABEL: service.name})
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if budget.shm_bytes:
        volumes.append(
            {
                "name": SHM_VOLUME,
                "emptyDir": {"medium": "Memory", "sizeLimit": bytes_quantity(budget.shm_bytes)},
            }
        )
        mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    for volume in ordered.storage:
        named = next((m for m in service.mounts if m.volume == volume.name), None)
        if is_ram(volume) or is_persistent(volume) or named is None or volume.name == SHM_VOLUME:
            continue
        volumes.append(
            {"name": volume.name, "emptyDir": {"sizeLimit": bytes_quantity(volume.size_bytes)}}
        )
        mounts.append({"name": volume.name, "mountPath": named.path, "readOnly": named.read_only})
    claims = persistent_mounts(list(budget.persistent_volumes), service.mounts)
    for name, path, read_only in claims:
        mounts.append({"name": name, "mountPath": path, "readOnly": read_only})

    container: dict[str, Any] = {"name": service.name, "image": service.image}
    if service.command:
        container["command"] = list(service.command)
    if service.args:
        container["args"] = list(service.args)
    if service.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in service.env]
    ports = list(dict.fromkeys((p.port, p.proto) for p in service.expose))
    if ports:
        container["ports"] = [{"containerPort": port, "protocol": proto} for port, proto in ports]
    container["resources"] = budget.resources()
    if mounts:
        container["volumeMounts"] = mounts
    container["securityContext"] = _container_security(defaults.root_images is not RootImages.ALLOW)
    pod_security = _pod_security(defaults.root_images, bool(claims))
    pod: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [container],
        "tolerations": [dict(t) for t in LEASE_TOLERATIONS],
    }
    if defaults.runtime_class_name:
        pod["runtimeClassName"] = defaults.runtime_class_name
    node = placement.node if placement and budget.gpus else None
    products = gpu_products(ordered, placement, catalog) if budget.gpus else []
    affinity = _affinity(products, node)
    if affinity:
        pod["affinity"] = affinity
    if service.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": service.image_pull_secret}]
    if volumes:
        pod["volumes"] = volumes

    spec: dict[str, Any] = {
        "replicas": service.replicas,
        "revisionHistoryLimit": REVISION_HISTORY,
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    kind = "StatefulSet" if claims else "Deployment"
    if claims:
        spec["serviceName"] = service.name
        spec["podManagementPolicy"] = "Parallel"
        spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete",
            "whenScaled": "Retain",
        }
        spec["volumeClaimTemplates"] = [
            _claim(scope, name, volume, defaults)
            for (name, _, _), volume in zip(claims, budget.persistent_volumes, strict=True)
        ]
    else:
        # Recreate: a GPU replica cannot surge (its GPUs are the ones the order paid for,
        # and the quota holds no spare pod), so the old Pod goes before the new one starts.
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": scope.metadata(service.name, "workload", **{SERVICE_LABEL: service.name}),
        "spec": spec,
    }


def _claim(
    scope: LeaseScope, name: str, volume: StorageRequest, defaults: LeaseDefaults
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": bytes_quantity(volume.size_bytes)}},
    }
    if defaults.storage_class_name:
        spec["storageClassName"] = defaults.storage_class_name
    return {
        "metadata": {"name": name, "labels": scope.labels("volume")},
        "spec": spec,
    }
