"""GpuLease status from the lease namespace's children (pure).

Phase: `AwaitingManifest` until the gateway stores a manifest; `Deploying` once its objects
are applied; `Running` when every service has as many ready replicas as the manifest asks
(then it stays `Running` for that manifest: a replica restarting shows in the `Ready`
condition, not as a phase going back). A new manifest (another sha256) starts at `Deploying`.

Failures a tenant should see come from the Pods and workloads: an image that cannot be pulled,
a crash loop, a container the kubelet cannot create (a root image under `runAsNonRoot`), a Pod
that cannot be scheduled, Pods the ReplicaSet could not create (quota). Each is the `Healthy`
condition's reason; once one has lasted `failure_deadline`, it is recorded in
`status.failure`, which the close path (`render.leasestatus.lease_facts`) reads as the lease's
`WorkloadFailure`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from gpu_provider.api.v1alpha1.common import ConditionStatus, find_condition, set_condition
from gpu_provider.api.v1alpha1.gpulease import (
    ForwardedPort,
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeaseConditionType,
    LeaseManifest,
    LeasePhase,
    Placement,
)
from gpu_provider.controllers.events import Event
from gpu_provider.render.labels import SERVICE_LABEL

__all__ = [
    "HEALTHY",
    "Observed",
    "Problem",
    "build_workload_status",
    "manifest_digest",
    "pod_problems",
]

HEALTHY: Final = "Healthy"
GPU: Final = "nvidia.com/gpu"
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE

# The kubelet's waiting reasons, by what the tenant should understand.
_WAITING: Final = {
    "ErrImagePull": "ImagePullError",
    "ImagePullBackOff": "ImagePullError",
    "InvalidImageName": "ImagePullError",
    "ErrImageNeverPull": "ImagePullError",
    "CrashLoopBackOff": "CrashLoop",
    "CreateContainerConfigError": "ContainerConfigError",
    "CreateContainerError": "ContainerConfigError",
    "RunContainerError": "ContainerConfigError",
}


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Observed:
    """What one reconcile saw and did."""

    digest: str
    """The manifest's sha256 (the one the objects were rendered from)."""
    applied: bool
    """The objects of this manifest are applied (now or before)."""
    apply_problem: Problem | None = None
    deployments: Sequence[Mapping[str, Any]] = ()
    statefulsets: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()
    services: Sequence[Mapping[str, Any]] = ()
    uris: Mapping[str, list[str]] = field(default_factory=dict)
    forwarded: Mapping[str, list[ForwardedPort]] = field(default_factory=dict)
    notes: Sequence[str] = ()


def manifest_digest(manifest: LeaseManifest) -> str:
    """The sha256 the gateway recorded, else one of the manifest's services (tests write
    manifests without it)."""
    if manifest.sha256:
        return manifest.sha256
    services = [s.to_wire() for s in manifest.services]
    return hashlib.sha256(json.dumps(services, sort_keys=True).encode()).hexdigest()


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def pod_problems(
    pods: Iterable[Mapping[str, Any]], workloads: Iterable[Mapping[str, Any]] = ()
) -> list[Problem]:
    """One problem per reason, first Pod (by name) first; Pods being deleted are ignored."""
    found: dict[str, Problem] = {}
    for pod in sorted(pods, key=_name):
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        statuses = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = _WAITING.get(str(waiting.get("reason")))
            if reason and reason not in found:
                detail = waiting.get("message") or ""
                found[reason] = Problem(
                    reason,
                    f"pod {_name(pod)} container {container.get('name')}: "
                    f"{waiting.get('reason')}{': ' + detail if detail else ''}",
                )
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
                and "Unschedulable" not in found
            ):
                found["Unschedulable"] = Problem(
                    "Unschedulable", f"pod {_name(pod)}: {condition.get('message') or ''}"
                )
    for workload in workloads:
        for condition in (workload.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
                found.setdefault(
                    "PodsNotCreated",
                    Problem(
                        "PodsNotCreated",
                        f"{workload.get('kind')} {_name(workload)}: {condition.get('message')}",
                    ),
                )
    return list(found.values())


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ready(workload: Mapping[str, Any] | None, desired: int) -> tuple[int, int]:
    """(ready, available) replicas of the current template; 0 until the controller has seen
    the latest spec (an old template's ready Pods do not count for a new manifest)."""
    if workload is None:
        return 0, 0
    status = workload.get("status") or {}
    generation = (workload.get("metadata") or {}).get("generation")
    if _int(status.get("observedGeneration")) < _int(generation):
        return 0, 0
    updated = _int(status.get("updatedReplicas"))
    ready = min(_int(status.get("readyReplicas")), updated, desired)
    return ready, min(_int(status.get("availableReplicas")), ready)


def _placement(status: GpuLeaseStatus, pods: Iterable[Mapping[str, Any]]) -> Placement | None:
    """The bid's reservation when recorded; else what the Pods show (node, GPUs)."""
    if status.placement is not None:
        return status.placement
    nodes, gpus = set(), 0
    for pod in pods:
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            continue
        nodes.add(str(spec["nodeName"]))
        for container in spec.get("containers") or []:
            gpus += int(((container.get("resources") or {}).get("limits") or {}).get(GPU, 0))
    if not nodes:
        return None
    return Placement(node=next(iter(nodes)) if len(nodes) == 1 else None, gpus=gpus)


def build_workload_status(
    spec: GpuLeaseSpec,
    status: GpuLeaseStatus,
    seen: Observed,
    now: datetime,
    failure_deadline: timedelta,
) -> tuple[dict[str, Any], list[Event], float | None]:
    """(status merge patch, Events, seconds until the failure deadline) for a lease with a
    manifest whose objects were (or could not be) applied."""
    assert spec.manifest is not None
    generation_note = f"manifest {seen.digest[:12]}"
    new_manifest = status.applied_manifest_sha256 != seen.digest
    events: list[Event] = []
    workloads = {
        str(((w.get("metadata") or {}).get("labels") or {}).get(SERVICE_LABEL)): w
        for w in [*seen.deployments, *seen.statefulsets]
    }
    services, all_ready, counts = [], True, []
    for service in spec.manifest.services:
        ready, available = _ready(workloads.get(service.name), service.replicas)
        all_ready &= ready >= service.replicas
        counts.append(f"{service.name} {ready}/{service.replicas}")
        services.append(
            {
                "name": service.name,
                "replicas": service.replicas,
                "readyReplicas": ready,
                "availableReplicas": available,
                "uris": list(seen.uris.get(service.name, [])),
                "forwardedPorts": [p.to_wire() for p in seen.forwarded.get(service.name, [])],
            }
        )
    all_ready &= seen.applied
    problems = pod_problems(seen.pods, workloads.values())
    conditions = list(status.conditions)
    stamp = now.replace(microsecond=0)

    def put(type_: str, state: ConditionStatus, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, type_, state, reason, message, now=stamp)

    was_healthy = find_condition(conditions, HEALTHY)
    put(LeaseConditionType.MANIFEST_RECEIVED, T, "ManifestReceived", generation_note)
    if seen.apply_problem is not None:
        put(LeaseConditionType.DEPLOYED, F, seen.apply_problem.reason, seen.apply_problem.message)
    elif seen.applied:
        applied = generation_note + " applied" + "".join(f"; {n}" for n in seen.notes)
        put(LeaseConditionType.DEPLOYED, T, "Applied", applied)
    if problems:
        first = problems[0]
        put(HEALTHY, F, first.reason, "; ".join(p.message for p in problems))
        if was_healthy is None or was_healthy.reason != first.reason:
            events.append(Event("Warning", first.reason, first.message))
    else:
        put(HEALTHY, T, HEALTHY, "no Pod reports a problem")
    if seen.apply_problem is not None:
        ready_reason, ready_message = seen.apply_problem.reason, seen.apply_problem.message
    elif problems:
        ready_reason, ready_message = problems[0].reason, problems[0].message
    else:
        ready_reason, ready_message = "Deploying", "ready replicas: " + ", ".join(counts)
    if all_ready:
        put(LeaseConditionType.READY, T, "Running", "ready replicas: " + ", ".join(counts))
    else:
        put(LeaseConditionType.READY, F, ready_reason, ready_message)

    patch: dict[str, Any] = {
        "namespace": f"lease-{spec.lease_id}",
        "services": services,
        "conditions": [c.to_wire() for c in conditions],
    }
    placement = _placement(status, seen.pods)
    if placement is not None:
        patch["placement"] = placement.to_wire()
    phase = status.phase
    if seen.applied and (new_manifest or phase in (None, LeasePhase.AWAITING_MANIFEST)):
        patch.update(
            {
                "phase": LeasePhase.DEPLOYING.value,
                "appliedManifestSha256": seen.digest,
                "manifestAt": _time(now),
                "runningAt": None,
                "failure": None,
            }
        )
        phase = LeasePhase.DEPLOYING
        events.append(Event("Normal", "Deploying", f"{generation_note} applied"))
    if phase is LeasePhase.DEPLOYING and all_ready:
        patch.update({"phase": LeasePhase.RUNNING.value, "runningAt": _time(now)})
        events.append(Event("Normal", "Running", "ready replicas: " + ", ".join(counts)))

    wake: float | None = None
    healthy = find_condition(conditions, HEALTHY)
    # A new manifest clears the failure of the old one (the patch sets it to null).
    failing = None if "failure" in patch else status.failure
    if problems and healthy is not None and healthy.status is F and failing is None:
        since = healthy.last_transition_time
        left = (since + failure_deadline - now).total_seconds()
        if left <= 0:
            patch["failure"] = {
                "reason": problems[0].reason,
                "message": problems[0].message,
                "since": _time(since),
            }
            events.append(
                Event(
                    "Warning",
                    "WorkloadFailed",
                    f"{problems[0].reason} for {int(failure_deadline.total_seconds())} s: "
                    f"{problems[0].message}; the lease will be closed",
                )
            )
        else:
            wake = left
    return patch, events, wake
