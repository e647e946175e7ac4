"""Kopf handlers for GpuLease: one loop per lease, wake-ups from the lease and its children,
drift reports, and the finalizer that tears the namespace down when a GpuLease is deleted.

Thin on purpose: each handler parses what Kopf hands it and calls one function. The loop of a
lease wakes on a change of the GpuLease, on a change of one of its children (Pods for status;
Deployments, StatefulSets, Services, NetworkPolicies and ResourceQuotas for drift), at a
deadline it asked for, or every `reconcile_interval_seconds` (when it applies everything
again, so drift missed while no operator ran is corrected too). Only the Lease holder acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import kopf

from gpu_provider.api.v1alpha1.common import GROUP, VERSION
from gpu_provider.api.v1alpha1.gpulease import GPU_LEASE_PLURAL
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.controllers.gpulease_reconcile import LeaseLoop, reconcile_gpulease, teardown
from gpu_provider.controllers.gpulease_runtime import Drift
from gpu_provider.kube.leases import read_gpulease
from gpu_provider.render.labels import LEASE_ID_LABEL

log = logging.getLogger(__name__)

GL: Final = (GROUP, VERSION, GPU_LEASE_PLURAL)
OURS: Final = {LEASE_ID_LABEL: kopf.PRESENT}
STOP_GRACE_SECONDS: Final = 10.0
"""Kopf cancels a loop this long after its stop flag (a reconcile in progress finishes first:
without `cancellation_backoff` Kopf cancels at once); a reconcile is idempotent, so a cancelled
one is simply done again by the next leader."""
STOP_BACKSTOP_SECONDS: Final = 30.0
DEBOUNCE_SECONDS: Final = 0.01
"""A Pod burst (a Deployment's replicas turning Ready together) is one reconcile."""
# Managers whose writes to our objects are the cluster working, not someone's hand.
SYSTEM_MANAGERS: Final = frozenset({"gpu-provider", "kube-controller-manager", "kube-scheduler"})
DRIFT_KINDS: Final = (
    "deployments",
    "statefulsets",
    "services",
    "networkpolicies",
    "resourcequotas",
)


def _context(memo: kopf.Memo) -> OperatorContext:
    context: OperatorContext = memo["context"]
    return context


def _lease_id(body: kopf.Body) -> str | None:
    value = body.metadata.labels.get(LEASE_ID_LABEL)
    return str(value) if value else None


@kopf.on.event(*GL, id="gpulease-changes")
def lease_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    lease_id = body.spec.get("leaseId")
    if lease_id:
        _context(memo).workloads.wake(str(lease_id))


@kopf.on.event("namespaces", id="gpulease-namespaces", labels=OURS)
@kopf.on.event("pods", id="gpulease-pods", labels=OURS)
def child_changed_wakes(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    lease_id = _lease_id(body)
    if lease_id:
        _context(memo).workloads.wake(lease_id)


def _hand_edit(body: kopf.Body) -> tuple[str, str] | None:
    """(manager, time) of the newest write by someone else than us or the cluster."""
    edits = [
        (str(entry.get("manager")), str(entry.get("time")))
        for entry in body.metadata.get("managedFields") or []
        if entry.get("manager") not in SYSTEM_MANAGERS and not entry.get("subresource")
    ]
    return max(edits, key=lambda edit: edit[1]) if edits else None


def child_changed(body: kopf.Body, type: str, memo: kopf.Memo, **_: Any) -> None:
    lease_id = _lease_id(body)
    if not lease_id:
        return
    workloads = _context(memo).workloads
    kind, name = str(body.get("kind")), str(body.metadata.name)
    if type == "DELETED":
        workloads.report(lease_id, Drift(kind, name, "deleted"))
        return
    edit = _hand_edit(body)
    if edit is not None and workloads.first_edit(lease_id, (str(body.metadata.uid), *edit)):
        workloads.report(lease_id, Drift(kind, name, f"changed by {edit[0]}"))
    else:
        # A workload's status moved (ready replicas): the lease's status follows it.
        workloads.wake(lease_id)


for _plural in DRIFT_KINDS:
    kopf.on.event(_plural, id=f"gpulease-children-{_plural}", labels=OURS)(child_changed)


@kopf.daemon(
    *GL,
    id="gpulease-deploy",
    cancellation_backoff=STOP_GRACE_SECONDS,
    cancellation_timeout=STOP_BACKSTOP_SECONDS,
)
async def gpulease_loop(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    ctx = _context(memo)
    op = ctx.settings.operator
    lease_id = str(body.spec.get("leaseId") or "")
    waker = asyncio.Event()
    waker.set()
    ctx.workloads.register(lease_id, waker)
    loop = LeaseLoop()
    within: float = op.reconcile_interval_seconds
    resync_at = 0.0
    stop: asyncio.Future[Any] = asyncio.ensure_future(stopped.wait())
    try:
        while not stopped:
            await _first(waker.wait(), stop, within=within)
            if stopped:
                break
            await _first(asyncio.sleep(DEBOUNCE_SECONDS), stop)
            waker.clear()
            within = op.reconcile_interval_seconds
            if not ctx.is_leader:
                loop = LeaseLoop()  # a new term applies everything again
                continue
            now = asyncio.get_running_loop().time()
            resync = now >= resync_at
            try:
                outcome = await reconcile_gpulease(ctx, body, loop, resync=resync)
            except Exception:
                log.exception("reconcile of GpuLease %s failed; retrying", body.metadata.name)
                within = min(within, 5.0)
                continue
            if resync:
                resync_at = now + op.reconcile_interval_seconds
            if outcome.wake_in is not None:
                within = max(0.05, min(within, outcome.wake_in))
            for event in outcome.events:
                kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    finally:
        stop.cancel()
        ctx.workloads.unregister(lease_id, waker)


@kopf.on.delete(*GL, id="gpulease-finalize")
async def gpulease_deleted(
    body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    """The GpuLease is being deleted: its namespace goes first (the finalizer holds it).

    A standby waits here until it leads or the object is gone (finalized by the leader);
    it never lets Kopf drop the finalizer without the namespace being deleted."""
    ctx = _context(memo)
    lease_id = str(body.spec.get("leaseId") or "")
    while not ctx.is_leader:
        if await read_gpulease(ctx.api, str(namespace), name) is None:
            return
        await asyncio.sleep(ctx.settings.operator.lease_renew_seconds)
    if not lease_id or await teardown(ctx, lease_id):
        return
    raise kopf.TemporaryError("waiting for the lease namespace to be deleted", delay=1)


async def _first(awaitable: Any, stop: asyncio.Future[Any], within: float | None = None) -> None:
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task, stop}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
