"""Kopf handlers for ProviderNode: indexes of Nodes and Pods, change wake-ups, one loop each.

Thin on purpose: each handler parses what Kopf hands it and calls one function. The loop per
ProviderNode (a Kopf daemon) wakes on a change of a watched Node or Pod (compared without
heartbeats), on a spec change, or every `reconcile_interval_seconds`; it waits
`debounce_seconds` so a burst (a drained node, a scaled deployment) is one reconcile.
Only the Lease holder reconciles; a standby keeps its indexes warm and does nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import kopf

from gpu_provider.api.v1alpha1.common import GROUP, VERSION
from gpu_provider.api.v1alpha1.providernode import PROVIDER_NODE_PLURAL
from gpu_provider.controllers.chainsession import NotLeader
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.controllers.providernode_delete import decommission
from gpu_provider.controllers.providernode_reconcile import LoopState, reconcile_provider_node
from gpu_provider.controllers.slim import fingerprint, holds_resources, slim_node, slim_pod
from gpu_provider.kube.providernodes import ProviderNodeGone, read_provider_node

log = logging.getLogger(__name__)

PN: Final = (GROUP, VERSION, PROVIDER_NODE_PLURAL)
STOP_GRACE_SECONDS: Final = 60.0
"""Kopf cancels a loop this long after its stop flag. The loop itself gives a reconcile step
`operator.stop_timeout_seconds` (30 by default) and then cancels it; a cancelled loop still
winds down (step, daemon, session) before it exits. Without a `cancellation_backoff` Kopf
cancels at once, never letting the stop flag work."""
STOP_BACKSTOP_SECONDS: Final = 30.0
"""How long Kopf then waits for the cancelled loop to exit."""


def _context(memo: kopf.Memo) -> OperatorContext:
    context: OperatorContext = memo["context"]
    return context


@kopf.index("nodes", id="providernode_nodes")
def node_index(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: slim_node(body)}


@kopf.index("pods", id="providernode_pods", when=lambda body, **_: holds_resources(body))
def pod_index(body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    return {str(spec.get("nodeName")): slim_pod(body)}


@kopf.on.event("nodes", id="providernode-node-changes")
def node_changed(name: str, body: kopf.Body, type: str, memo: kopf.Memo, **_: Any) -> None:
    ctx = _context(memo)
    seen = None if type == "DELETED" else fingerprint(slim_node(body))
    if ctx.changed(f"node/{name}", seen):
        ctx.wake_all()


@kopf.on.event("pods", id="providernode-pod-changes")
def pod_changed(
    name: str, namespace: str | None, body: kopf.Body, type: str, memo: kopf.Memo, **_: Any
) -> None:
    ctx = _context(memo)
    held = type != "DELETED" and holds_resources(body)
    if ctx.changed(f"pod/{namespace}/{name}", fingerprint(slim_pod(body)) if held else None):
        ctx.wake_all()


@kopf.on.event(*PN, id="providernode-spec-changes")
def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Our own status writes change no generation: they wake nothing.
    if body.metadata.get("generation") != body.status.get("observedGeneration"):
        _context(memo).wake_all()


def _values(index: kopf.Index[str, dict[str, Any]]) -> list[Mapping[str, Any]]:
    stores: Iterable[kopf.Store[dict[str, Any]]] = index.values()
    return [value for store in stores for value in store]


@kopf.daemon(
    *PN,
    id="providernode-reconcile",
    cancellation_backoff=STOP_GRACE_SECONDS,
    cancellation_timeout=STOP_BACKSTOP_SECONDS,
)
async def providernode_loop(
    name: str,
    body: kopf.Body,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **kwargs: Any,
) -> None:
    # Kopf hands each index over as a keyword named by the index's handler id.
    nodes: kopf.Index[str, dict[str, Any]] = kwargs["providernode_nodes"]
    pods: kopf.Index[str, dict[str, Any]] = kwargs["providernode_pods"]
    ctx = _context(memo)
    op = ctx.settings.operator
    waker = asyncio.Event()
    waker.set()
    ctx.wakers.add(waker)
    state = LoopState()
    stop = asyncio.ensure_future(_stopped(stopped))
    ctx.reconciling.add(name)
    step: asyncio.Future[None] | None = None
    try:
        while not stopped:
            await _first(waker.wait(), stop, within=op.reconcile_interval_seconds)
            if stopped:
                break
            await _first(asyncio.sleep(op.debounce_seconds), stop)
            waker.clear()
            if not ctx.is_leader:
                await state.close()  # a new term starts from what status holds then
                continue
            step = asyncio.ensure_future(_reconcile(ctx, name, body, nodes, pods, state))
            await _first(step, stop)
            if not step.done():
                # SIGTERM: give the step its chance to finish, then abandon it. Whatever it
                # was waiting for is journaled in status and is resumed by the next leader.
                await asyncio.wait({step}, timeout=op.stop_timeout_seconds)
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)
    finally:
        stop.cancel()
        ctx.wakers.discard(waker)
        # Shielded: even a cancelled loop ends its reconcile step before its chain session
        # and daemon close, and only then lets the decommission open a session of its own.
        await asyncio.shield(_wind_down(ctx, name, step, state))


async def _wind_down(
    ctx: OperatorContext, name: str, step: asyncio.Future[None] | None, state: LoopState
) -> None:
    try:
        if step is not None and not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
        await state.close()
    finally:
        ctx.reconciling.discard(name)


@kopf.on.delete(*PN, id="providernode-decommission")
async def providernode_deleted(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Close its leases, withdraw its offer and earnings before it goes
    (`providernode_delete`). Kopf retries until this returns; a standby waits to lead."""
    ctx = _context(memo)
    while not ctx.is_leader:
        # A standby waits here (recording no retries on the object) until it leads or the
        # leader has finished and the object is gone.
        try:
            await read_provider_node(ctx.api, name)
        except ProviderNodeGone:
            return
        await asyncio.sleep(ctx.settings.operator.lease_renew_seconds)
    if name in ctx.reconciling:
        # Its chain session must be closed first: one transaction manager per wallet.
        raise kopf.TemporaryError("waiting for its reconcile loop to stop", delay=1)
    result = await decommission(ctx, name, body)
    if not result.done:
        raise kopf.TemporaryError(result.message, delay=3)
    log.info("%s: decommissioned (%s)", name, result.message)


async def _reconcile(
    ctx: OperatorContext,
    name: str,
    body: kopf.Body,
    nodes: kopf.Index[str, dict[str, Any]],
    pods: kopf.Index[str, dict[str, Any]],
    state: LoopState,
) -> None:
    with ctx.metrics.reconcile_seconds.labels(name).time():
        try:
            result = await reconcile_provider_node(
                ctx, name, body, _values(nodes), _values(pods), state
            )
        except NotLeader:
            ctx.metrics.reconciles.labels(name, "not-leader").inc()
            await state.close()
            return
        except Exception:
            ctx.metrics.reconciles.labels(name, "error").inc()
            log.exception("reconcile of ProviderNode %s failed; retrying at the next wake", name)
            return
    ctx.metrics.reconciles.labels(name, "ok").inc()
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


async def _stopped(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


async def _first(awaitable: Any, stop: asyncio.Future[None], within: float | None = None) -> None:
    """Wait for `awaitable` or the stop flag, at most `within` seconds; never cancels `awaitable`
    when it is a task the caller keeps."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.wait({task, stop}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    if task is not awaitable and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
