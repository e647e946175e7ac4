"""Reading Node and Pod objects as the API returns them (plain JSON dicts, camelCase).

Pure and forgiving: a field that is missing or malformed reads as absent, because one odd
object must not stop the inventory of a thousand others. Quantities use the project's one
grammar (`gpu_provider.api.quantity`), memoised because a cluster repeats the same few strings
("8", "500m", "16Gi") tens of thousands of times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from gpu_provider.api.quantity import QuantityError, quantity_to_int
from gpu_provider.inventory.report import Resources

GPU_RESOURCE: Final = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX: Final = "nvidia.com/mig-"
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})
LEASE_TOLERATIONS: Final[tuple[Mapping[str, str], ...]] = (
    {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
)
"""What lease Pods tolerate: the taint GPU node pools commonly carry (`nvidia.com/gpu`).

A Node tainted with anything else (NoSchedule or NoExecute) cannot run a lease, so it is not
offered; the render layer gives lease Pods exactly these tolerations.
"""


def mapping(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, without the slower abstract-class check
        return value
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


@lru_cache(maxsize=4096)
def _scaled(value: str, scale: int) -> int | None:
    try:
        return quantity_to_int(value, scale=scale)
    except QuantityError:
        return None


def quantity(value: object, scale: int = 1) -> int | None:
    """A quantity as a whole number (`scale=1000` for millis), None when absent or invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * scale if value >= 0 else None
    if isinstance(value, str):
        return _scaled(value, scale)
    return None


def resources_of(values: Mapping[str, Any]) -> Resources:
    return Resources(
        quantity(values.get("cpu"), 1000) or 0,
        quantity(values.get("memory")) or 0,
        quantity(values.get("ephemeral-storage")) or 0,
    )


# --- Nodes --------------------------------------------------------------------------------


def node_name(node: Mapping[str, Any]) -> str:
    return str(mapping(node.get("metadata")).get("name", ""))


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return mapping(mapping(obj.get("metadata")).get("labels"))


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return mapping(mapping(obj.get("metadata")).get("annotations"))


def ready_problem(node: Mapping[str, Any]) -> str | None:
    """Why the Node is not Ready, or None when its Ready condition is True."""
    for condition in sequence(mapping(node.get("status")).get("conditions")):
        condition = mapping(condition)
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return None
            reason = condition.get("reason") or "no reason given"
            return f"the kubelet reports Ready={condition.get('status')} ({reason})"
    return "the kubelet has not reported a Ready condition"


def is_cordoned(node: Mapping[str, Any]) -> bool:
    return bool(mapping(node.get("spec")).get("unschedulable"))


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ToleratesTaint: effect, key and (for Equal) value must match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return bool((toleration.get("value") or "") == (taint.get("value") or ""))


def untolerated_taints(
    node: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]
) -> list[str]:
    """`key=value:Effect` of each NoSchedule/NoExecute taint no toleration covers."""
    found = []
    for taint in sequence(mapping(node.get("spec")).get("taints")):
        taint = mapping(taint)
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule only steers the scheduler; a lease still fits
        if not any(_tolerates(t, taint) for t in tolerations):
            value = f"={taint['value']}" if taint.get("value") else ""
            found.append(f"{taint.get('key')}{value}:{taint.get('effect')}")
    return found


@dataclass(frozen=True, slots=True)
class DeviceResources:
    """The device plugin's counts on one Node."""

    gpu_capacity: int | None
    gpu_allocatable: int
    mig: Mapping[str, tuple[int, int]]
    """MIG profile -> (capacity, allocatable), from `nvidia.com/mig-<profile>`."""

    @property
    def present(self) -> bool:
        return bool(self.gpu_capacity) or any(cap for cap, _ in self.mig.values())


def device_resources(node: Mapping[str, Any]) -> DeviceResources:
    status = mapping(node.get("status"))
    capacity = mapping(status.get("capacity"))
    allocatable = mapping(status.get("allocatable"))
    gpu_capacity = quantity(capacity.get(GPU_RESOURCE))
    gpu_allocatable = quantity(allocatable.get(GPU_RESOURCE))
    if gpu_allocatable is None:
        gpu_allocatable = gpu_capacity or 0
    mig = {}
    for name, value in capacity.items():
        if name.startswith(MIG_RESOURCE_PREFIX):
            cap = quantity(value) or 0
            alloc = quantity(allocatable.get(name))
            mig[name.removeprefix(MIG_RESOURCE_PREFIX)] = (cap, cap if alloc is None else alloc)
    return DeviceResources(gpu_capacity, min(gpu_allocatable, gpu_capacity or 0), mig)


# --- Pods ---------------------------------------------------------------------------------


@dataclass(slots=True)
class PodLoad:
    """What the running Pods bound to one Node request."""

    resources: Resources = field(default_factory=Resources)
    gpus: int = 0
    mig: dict[str, int] | None = None


def _container_requests(container: Mapping[str, Any]) -> dict[str, Any]:
    """Requests, falling back to limits: the apiserver defaults a missing request to its limit."""
    res = mapping(container.get("resources"))
    return {**mapping(res.get("limits")), **mapping(res.get("requests"))}


def _amounts(requests: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in requests.items():
        if name == "cpu":
            out[name] = quantity(value, 1000) or 0
        elif name in ("memory", "ephemeral-storage", GPU_RESOURCE) or name.startswith(
            MIG_RESOURCE_PREFIX
        ):
            out[name] = quantity(value) or 0
    return out


def _add(total: dict[str, int], extra: Mapping[str, int]) -> None:
    for name, value in extra.items():
        total[name] = total.get(name, 0) + value


def pod_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """A Pod's effective requests, as the scheduler computes them.

    max(sum of app containers + sidecars, each init container + the sidecars started before
    it), plus the RuntimeClass overhead. Sidecars are init containers with
    `restartPolicy: Always` (they keep running next to the app containers).
    """
    spec = mapping(pod.get("spec"))
    app: dict[str, int] = {}
    for container in sequence(spec.get("containers")):
        _add(app, _amounts(_container_requests(mapping(container))))
    sidecars: dict[str, int] = {}
    peak: dict[str, int] = {}
    for container in sequence(spec.get("initContainers")):
        container = mapping(container)
        amounts = _amounts(_container_requests(container))
        if container.get("restartPolicy") == "Always":
            _add(sidecars, amounts)
            continue
        during = dict(sidecars)
        _add(during, amounts)
        for name, value in during.items():
            peak[name] = max(peak.get(name, 0), value)
    _add(app, sidecars)
    for name, value in peak.items():
        app[name] = max(app.get(name, 0), value)
    _add(app, _amounts(mapping(spec.get("overhead"))))
    return app


def pod_node(pod: Mapping[str, Any]) -> str | None:
    """The Node a Pod holds resources on; None when unbound or finished."""
    if mapping(pod.get("status")).get("phase") in FINISHED_PHASES:
        return None
    name = mapping(pod.get("spec")).get("nodeName")
    return name if isinstance(name, str) and name else None


def loads_by_node(pods: Sequence[Mapping[str, Any]], nodes: set[str]) -> dict[str, PodLoad]:
    """Requests of the non-finished Pods bound to `nodes`, summed per Node."""
    loads: dict[str, PodLoad] = {}
    for pod in pods:
        name = pod_node(pod)
        if name is None or name not in nodes:
            continue
        req = pod_requests(pod)
        load = loads.setdefault(name, PodLoad())
        load.resources = load.resources.plus(
            Resources(req.get("cpu", 0), req.get("memory", 0), req.get("ephemeral-storage", 0))
        )
        load.gpus += req.get(GPU_RESOURCE, 0)
        for resource, count in req.items():
            if resource.startswith(MIG_RESOURCE_PREFIX) and count:
                load.mig = load.mig or {}
                profile = resource.removeprefix(MIG_RESOURCE_PREFIX)
                load.mig[profile] = load.mig.get(profile, 0) + count
    return loads
