"""One GpuLease reconcile: apply the lease's objects, read its children, write status; or
tear the namespace down when the lease is `Closing`; or forget a `Closed` one after its
retention.

Level-triggered: everything is computed from the GpuLease and the cluster as they are now.
The lease namespace is deleted only on positive evidence: phase `Closing` (written by the
chain daemon with `closeReason`) or the GpuLease's deletion (the finalizer handler). An
operator restart, a dropped watch or a failed call makes the next reconcile apply again,
never delete.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import ValidationError

from gpu_provider.api.v1alpha1.common import ConditionStatus, set_condition, status_patch_changes
from gpu_provider.api.v1alpha1.gpulease import (
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeaseConditionType,
    LeasePhase,
)
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.controllers.events import Event
from gpu_provider.controllers.gpulease_runtime import Drift
from gpu_provider.controllers.gpulease_status import (
    Observed,
    Problem,
    build_workload_status,
    manifest_digest,
)
from gpu_provider.kube.apply import (
    ApplyRefused,
    apply_object,
    delete_namespace,
    delete_object,
    prune_objects,
    wait_quota_counted,
)
from gpu_provider.kube.children import (
    delete_gpulease,
    namespace_exists,
    read_children,
    read_secrets,
)
from gpu_provider.kube.leases import delete_pull_secrets, patch_gpulease_status
from gpu_provider.kube.providernodes import ProviderNodeGone, read_provider_node
from gpu_provider.render.labels import LEASE_ID_LABEL
from gpu_provider.render.namespace import lease_namespace_name
from gpu_provider.render.objects import LeaseObjects, render_lease_objects
from gpu_provider.render.pullsecret import pull_secret_namespace
from gpu_provider.render.services import forwarded_ports, lease_uris

__all__ = ["LeaseLoop", "Outcome", "reconcile_gpulease", "teardown"]

log = logging.getLogger(__name__)

CLOSING_POLL_SECONDS: Final = 10.0
"""A backstop: the namespace's deletion event wakes the loop at once."""
_WORKLOAD_KINDS: Final = ("Deployment", "StatefulSet")
_QUOTA_KINDS: Final = ("ResourceQuota", "LimitRange")


@dataclass
class LeaseLoop:
    """What one GpuLease's loop keeps between reconciles (in memory only: a restart applies
    again, which changes nothing that is already right)."""

    applied: str | None = None
    """Fingerprint of the objects last applied."""
    written: dict[str, Any] = field(default_factory=dict)
    """The status patch last written, and the resourceVersion it was written over: Kopf's
    body catches up with our own write a moment later, and a Pod event in between must not
    see the old status (and apply everything again)."""
    written_over: str | None = None


@dataclass(frozen=True)
class Outcome:
    events: list[Event] = field(default_factory=list)
    wake_in: float | None = None
    """Reconcile again this soon (a deadline, a namespace going away)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _start_seconds(manifest_at: datetime | None, patch: Mapping[str, Any]) -> float | None:
    """Seconds from the manifest applied to Running, when this patch makes the lease Running
    (the manifest may be applied in the same patch: a workload ready at once)."""
    if patch.get("phase") != LeasePhase.RUNNING.value or not patch.get("runningAt"):
        return None
    applied = patch.get("manifestAt")
    since = datetime.fromisoformat(str(applied)) if applied else manifest_at
    if since is None:
        return None
    return max(0.0, (datetime.fromisoformat(str(patch["runningAt"])) - since).total_seconds())


def _fingerprint(objects: Sequence[Mapping[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(objects), sort_keys=True).encode()).hexdigest()


async def teardown(ctx: OperatorContext, lease_id: str) -> bool:
    """Delete the lease's pull Secrets and namespace; True once the namespace is gone."""
    # The stored credentials cannot be owned by the GpuLease (another namespace): the close
    # deletes them (again on each poll until the namespace is gone: cheap, and idempotent).
    await delete_pull_secrets(
        ctx.api, pull_secret_namespace(ctx.settings.namespace), f"{LEASE_ID_LABEL}={lease_id}"
    )
    namespace = lease_namespace_name(int(lease_id))
    if await delete_namespace(ctx.api, namespace):
        return True
    return not await namespace_exists(ctx.api, namespace)


async def reconcile_gpulease(
    ctx: OperatorContext,
    body: Mapping[str, Any],
    loop: LeaseLoop,
    *,
    resync: bool,
) -> Outcome:
    """Move the lease one step toward what its phase asks; only the Lease holder calls this."""
    metadata = body.get("metadata") or {}
    namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
    stored = dict(body.get("status") or {})
    if loop.written_over is not None and loop.written_over == metadata.get("resourceVersion"):
        stored.update(loop.written)  # our last write has not reached Kopf's body yet
    try:
        spec = GpuLeaseSpec.model_validate(body.get("spec") or {})
        status = GpuLeaseStatus.model_validate(stored)
    except ValidationError as error:
        log.warning("GpuLease %s/%s cannot be read: %s", namespace, name, error.errors()[0])
        return Outcome()
    op = ctx.settings.operator
    if status.phase is LeasePhase.CLOSED:
        return await _forget(ctx, namespace, name, status)
    if status.phase is LeasePhase.CLOSING:
        return await _close(ctx, namespace, name, spec, status)
    if spec.manifest is None:
        if status.phase is None:
            await patch_gpulease_status(
                ctx.api,
                namespace,
                name,
                {"phase": LeasePhase.AWAITING_MANIFEST.value},
                missing_ok=True,
            )
        return Outcome()
    drift = ctx.workloads.take_drift(spec.lease_id)
    digest = manifest_digest(spec.manifest)
    problem: Problem | None = None
    objects: LeaseObjects | None = None
    host = ""
    try:
        objects, host = await _render(ctx, namespace, spec, status)
    except ProviderNodeGone:
        problem = Problem(
            "ProviderNodeMissing", f"ProviderNode {spec.provider_node} does not exist"
        )
    except ValidationError as error:
        problem = Problem("InvalidProviderNode", f"ProviderNode {spec.provider_node}: {error}")
    applied_now = False
    if objects is not None:
        fingerprint = _fingerprint(objects.ordered())
        stale = status.applied_manifest_sha256 != digest
        if stale or resync or drift or loop.applied != fingerprint:
            try:
                await _apply(ctx, spec, objects, prune=stale and status.applied_manifest_sha256)
                loop.applied, applied_now = fingerprint, True
            except ApplyRefused as refused:
                problem = Problem("ApplyFailed", str(refused))
                loop.applied = None
    applied = problem is None and (applied_now or status.applied_manifest_sha256 == digest)
    seen = await _observe(ctx, spec, objects, digest, applied, problem, host)
    patch, events, wake = build_workload_status(
        spec, status, seen, _now(), timedelta(seconds=op.workload_failure_deadline_seconds)
    )
    if objects is not None and applied_now:
        desired = {(str(o["kind"]), str(o["metadata"]["name"])) for o in objects.ordered()}
        events.extend(_drift_events(drift, desired))
    if status_patch_changes(stored, patch):
        await patch_gpulease_status(ctx.api, namespace, name, patch, missing_ok=True)
        started = _start_seconds(status.manifest_at, patch)
        if started is not None:
            ctx.metrics.start_seconds.labels(spec.provider_node).observe(started)
        caught_up = loop.written_over != metadata.get("resourceVersion")
        loop.written = dict(patch) if caught_up else {**loop.written, **patch}
        loop.written_over = str(metadata.get("resourceVersion"))
    return Outcome(events=events, wake_in=wake)


async def _render(
    ctx: OperatorContext, namespace: str, spec: GpuLeaseSpec, status: GpuLeaseStatus
) -> tuple[LeaseObjects, str]:
    """The lease's objects, and the ProviderNode's public host (for Nodes with no address)."""
    provider = await read_provider_node(ctx.api, spec.provider_node)
    provider_spec = ProviderNodeSpec.model_validate(provider.get("spec") or {})
    network = await ctx.workloads.network(ctx.api, ctx.settings.operator)
    assert spec.manifest is not None
    wanted = sorted({s.image_pull_secret for s in spec.manifest.services if s.image_pull_secret})
    # The gateway stores the tenant's credentials in the pull-Secret namespace (read by name:
    # the operator may not list there); a copy goes into the lease namespace, same name.
    where = pull_secret_namespace(namespace)
    secrets = await read_secrets(ctx.api, where, wanted) if wanted else []
    objects = render_lease_objects(
        spec, status.placement, provider_spec.lease_defaults, network, pull_secrets=secrets
    )
    uri = str(provider_spec.host_uri)
    host = urlsplit(uri if "://" in uri else f"//{uri}").hostname or ""
    return objects, host


async def _apply(
    ctx: OperatorContext, spec: GpuLeaseSpec, objects: LeaseObjects, *, prune: object
) -> None:
    """Everything but the workloads, then (once the quota is counted) the workloads; a
    workload whose immutable fields changed (selector, claims) is replaced."""
    api = ctx.api
    ordered = objects.ordered()
    # The namespace first; then, together, policies, identity, Secrets, Services, Ingresses;
    # then the quota and limits; the workloads last, once the quota is counted (until then
    # the quota admission refuses every Pod). The Services go before the quota because the
    # quota admission charges a create before it is stored and never gives the charge back
    # when the store fails: a create cut off by a SIGKILL of the operator leaves `used` one
    # higher until the quota controller's periodic full recount (minutes), and the next
    # apply of that Service is refused (`exceeded quota: services=2`). A Service created
    # before the quota exists is never charged, only counted.
    await apply_object(api, objects.namespace)
    if prune:
        # What the new manifest dropped goes first: a renamed service's old Services would
        # otherwise still hold the quota's `services` when its new ones are created.
        selector = f"{LEASE_ID_LABEL}={spec.lease_id}"
        await prune_objects(api, lease_namespace_name(int(spec.lease_id)), selector, ordered)
    rest = [o for o in ordered[1:] if o["kind"] not in (*_WORKLOAD_KINDS, *_QUOTA_KINDS)]
    await asyncio.gather(*(_apply_charged(api, obj, objects.quota) for obj in rest))
    await asyncio.gather(*(apply_object(api, obj) for obj in objects.quota))
    if objects.workloads:
        await wait_quota_counted(api, objects.namespace["metadata"]["name"], "lease")
    await asyncio.gather(*(_apply_workload(api, obj) for obj in objects.workloads))


async def _apply_charged(
    api: Any, obj: Mapping[str, Any], quota: Sequence[Mapping[str, Any]]
) -> None:
    """Apply; a Service the quota refuses though the render fits it was refused on a stale
    count (a charge for a create that was never stored, see `_apply`): the ResourceQuota is
    deleted and the Service applied again without it. `_apply` creates the quota anew once
    every Service exists, so its first count is of what exists. (Re-created here, before the
    Service, the quota could be counted before the Service was stored and the Service created
    while it was not yet counted: neither charged nor counted until the quota controller's
    full resync, minutes later.)"""
    try:
        await apply_object(api, obj)
    except ApplyRefused as refused:
        if refused.kind != "Service" or "exceeded quota" not in str(refused):
            raise
        meta = obj["metadata"]
        for stale in (q for q in quota if q["kind"] == "ResourceQuota"):
            await delete_object(api, "ResourceQuota", meta["namespace"], stale["metadata"]["name"])
        await apply_object(api, obj)


async def _apply_workload(api: Any, obj: Mapping[str, Any]) -> None:
    """Apply a workload; one whose immutable fields changed (selector, claims) is replaced."""
    try:
        await apply_object(api, obj)
    except ApplyRefused as refused:
        immutable = "immutable" in str(refused) or "Forbidden" in str(refused)
        if refused.status != 422 or not immutable:
            raise
        meta = obj["metadata"]
        await delete_object(api, refused.kind, meta["namespace"], meta["name"])
        await apply_object(api, obj)


async def _observe(
    ctx: OperatorContext,
    spec: GpuLeaseSpec,
    objects: LeaseObjects | None,
    digest: str,
    applied: bool,
    problem: Problem | None,
    fallback: str,
) -> Observed:
    selector = f"{LEASE_ID_LABEL}={spec.lease_id}"
    children = await read_children(ctx.api, lease_namespace_name(int(spec.lease_id)), selector)
    hosts: dict[str, str] = {}
    for pod in children.pods:
        service = ((pod.get("metadata") or {}).get("labels") or {}).get("gpuprovider.dev/service")
        node = (pod.get("spec") or {}).get("nodeName")
        if service and node and service not in hosts:
            hosts[str(service)] = children.node_addresses.get(str(node), fallback)
    return Observed(
        digest=digest,
        applied=applied,
        apply_problem=problem,
        deployments=children.deployments,
        statefulsets=children.statefulsets,
        pods=children.pods,
        services=children.services,
        uris=lease_uris(objects.ingresses) if objects is not None else {},
        forwarded=forwarded_ports(children.services, hosts),
        notes=list(objects.notes) if objects is not None else [],
    )


def _drift_events(drift: Sequence[Drift], desired: set[tuple[str, str]]) -> list[Event]:
    # A deletion of something the manifest no longer renders was our own prune.
    kept = [d for d in drift if d.what != "deleted" or (d.kind, d.name) in desired]
    return [
        Event("Warning", "DriftCorrected", f"{d.kind} {d.name} was {d.what}; re-applied")
        for d in dict.fromkeys(kept)
    ]


async def _close(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    spec: GpuLeaseSpec,
    status: GpuLeaseStatus,
) -> Outcome:
    if not await teardown(ctx, spec.lease_id):
        return Outcome(wake_in=CLOSING_POLL_SECONDS)
    now = _now()
    conditions = set_condition(
        list(status.conditions),
        LeaseConditionType.CLOSED,
        ConditionStatus.TRUE,
        status.close_reason or "Closed",
        f"namespace {lease_namespace_name(int(spec.lease_id))} deleted",
        now=now.replace(microsecond=0),
    )
    conditions = set_condition(
        conditions,
        LeaseConditionType.READY,
        ConditionStatus.FALSE,
        "Closed",
        f"closed: {status.close_reason or 'no reason recorded'}",
        now=now.replace(microsecond=0),
    )
    await patch_gpulease_status(
        ctx.api,
        namespace,
        name,
        {
            "phase": LeasePhase.CLOSED.value,
            "closedAt": _time(now),
            "services": [],
            "conditions": [c.to_wire() for c in conditions],
        },
        missing_ok=True,
    )
    ctx.workloads.take_drift(spec.lease_id)
    reason = status.close_reason or "no reason recorded"
    return Outcome(events=[Event("Normal", "Closed", f"workload torn down ({reason})")])


async def _forget(
    ctx: OperatorContext, namespace: str, name: str, status: GpuLeaseStatus
) -> Outcome:
    """Delete a Closed GpuLease once its retention has passed (the record is kept until)."""
    retention = timedelta(seconds=ctx.settings.operator.closed_lease_retention_seconds)
    closed_at = status.closed_at
    if closed_at is None:
        return Outcome()  # no time recorded: nothing proves the retention is over
    left = (closed_at + retention - _now()).total_seconds()
    if left > 0:
        return Outcome(wake_in=left)
    await delete_gpulease(ctx.api, namespace, name)
    return Outcome()
