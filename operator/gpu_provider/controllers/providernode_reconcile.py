"""One ProviderNode reconcile: inventory → prerequisites → chain → status and Events.

Level-triggered: it reads the Node and Pod indexes as they are now, computes the offer, asks
the `Advertiser` to make the chain say exactly that, and writes what it found into status.
It sees no Kopf types except the body (for Events); the handlers in `providernode` call it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gpu_provider.api.v1alpha1.common import Condition, ConditionStatus, status_patch_changes
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.chain.advertiser import AdvertiseOutcome
from gpu_provider.chain.bidfacts import capacity_of, inventory_reservations, placed_lease_gpus
from gpu_provider.chain.errors import ChainError, ChainIdMismatch, RpcUnavailable
from gpu_provider.controllers.chaindaemon import ChainDaemon, DaemonView
from gpu_provider.controllers.chainsession import (
    ChainSession,
    NotLeader,
    WalletProblem,
    load_wallet,
)
from gpu_provider.controllers.conditions import Findings, Problem, build_conditions, on_chain_of
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.controllers.events import Event, events_between
from gpu_provider.inventory import InventoryReport, build_inventory
from gpu_provider.inventory.report import ExclusionReason
from gpu_provider.kube.prerequisites import ingress_class_exists, runtime_class_exists
from gpu_provider.kube.providernodes import patch_status
from gpu_provider.kube.secrets import SecretKeyMissing, SecretMissing, read_secret_key
from gpu_provider.market.advertise import build_desired
from gpu_provider.market.capacity import Capacity

__all__ = ["LoopState", "ReconcileResult", "read_certificate", "reconcile_provider_node"]

log = logging.getLogger(__name__)

_STATUS_KEYS = ("providerId", "address", "onChain", "inventory", "conditions", "observedGeneration")


@dataclass
class LoopState:
    """What one ProviderNode's loop keeps between reconciles (in Kopf's per-object memo)."""

    session: ChainSession | None = None
    provider_id: int | None = None
    daemon: ChainDaemon | None = None
    """The chain daemon (bids, leases, earnings) of this term; it uses `session`."""

    async def close(self) -> None:
        self.provider_id = None
        if self.daemon is not None:
            daemon, self.daemon = self.daemon, None
            await daemon.stop()
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()


@dataclass(frozen=True)
class ReconcileResult:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    written: bool = False


def _prerequisites(report: InventoryReport) -> list[Problem]:
    problems = []
    if not report.nodes and not report.excluded:
        problems.append(
            Problem("NoNodesSelected", "no Node matches spec.nodeSelector: label the GPU Nodes")
        )
    elif not report.nodes and all(
        e.reason is ExclusionReason.DEVICE_PLUGIN_MISSING for e in report.excluded
    ):
        problems.append(
            Problem(
                "DevicePluginMissing",
                "no selected Node reports nvidia.com/gpu: install the NVIDIA device plugin",
            )
        )
    return problems


async def _class_problems(ctx: OperatorContext, spec: ProviderNodeSpec) -> list[Problem]:
    problems = []
    runtime = spec.lease_defaults.runtime_class_name
    if runtime and not await runtime_class_exists(ctx.api, runtime):
        problems.append(
            Problem(
                "RuntimeClassMissing",
                f"RuntimeClass {runtime!r} (spec.leaseDefaults.runtimeClassName) does not exist",
            )
        )
    ingress = spec.lease_defaults.ingress_class_name
    if ingress and not await ingress_class_exists(ctx.api, ingress):
        problems.append(
            Problem(
                "IngressClassMissing",
                f"IngressClass {ingress!r} (spec.leaseDefaults.ingressClassName) does not exist",
            )
        )
    return problems


async def read_certificate(ctx: OperatorContext, spec: ProviderNodeSpec) -> str:
    """The gateway certificate the registry advertises (`spec.certificateSecretRef`'s
    `tls.crt`), "" when none is named; raises `SecretMissing`/`SecretKeyMissing`."""
    if spec.certificate_secret_ref is None:
        return ""
    ns, name = ctx.settings.namespace, spec.certificate_secret_ref.name
    return (await read_secret_key(ctx.api, ns, name, "tls.crt")).decode("utf-8", "replace")


async def _chain(
    ctx: OperatorContext,
    name: str,
    spec: ProviderNodeSpec,
    report: InventoryReport,
    withhold: bool,
    state: LoopState,
) -> tuple[AdvertiseOutcome | None, Problem | None, str | None]:
    """Advertise; returns (what the advertiser did, why the chain was not reached, wallet)."""
    try:
        wallet = await load_wallet(ctx.api, ctx.settings.namespace, spec.wallet)
    except WalletProblem as problem:
        await state.close()
        return None, Problem(problem.reason, problem.message), None
    if state.session is not None and state.session.address != wallet.address:
        await state.close()  # the Secret now holds another key: a new journal owner
    try:
        certificate = await read_certificate(ctx, spec)
    except (SecretMissing, SecretKeyMissing) as error:
        return (
            None,
            Problem("CertificateSecretMissing", f"{error} (spec.certificateSecretRef)"),
            None,
        )
    try:
        if state.session is None:
            state.session = await ChainSession.open(
                ctx.api,
                name,
                wallet,
                ctx.settings.chain,
                lambda: ctx.is_leader,
                ctx.settings.namespace,
            )
        desired = build_desired(
            wallet=wallet.address,
            name=name,
            region=spec.region,
            host_uri=spec.host_uri,
            certificate=certificate,
            tokens=[t.address for t in spec.accepted_tokens],
            maintenance=spec.maintenance.enabled,
            gpu_offer={} if withhold else report.offer_units(),
            cpu_offer={} if withhold else report.cpu_offer_units(),
            reward_wallet=spec.reward_wallet,
        )
        outcome = await state.session.advertiser.reconcile(desired)
    except NotLeader:
        raise
    except (RpcUnavailable, ChainIdMismatch) as error:
        await state.close()
        return None, Problem("ChainUnreachable", f"{error}; retrying"), wallet.address
    except ChainError as error:
        return None, Problem("ChainError", str(error)), wallet.address
    return outcome, None, wallet.address


def _spec(body: Mapping[str, Any]) -> tuple[ProviderNodeSpec | None, Problem | None]:
    try:
        return ProviderNodeSpec.model_validate(body.get("spec") or {}), None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        return None, Problem("InvalidSpec", f"spec.{where}: {first['msg']}")


def _current(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    return {k: status[k] for k in _STATUS_KEYS if k in status}


async def reconcile_provider_node(
    ctx: OperatorContext,
    name: str,
    body: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    state: LoopState,
) -> ReconcileResult:
    """Compute, advertise and write status; only the Lease holder calls this."""
    metrics = ctx.metrics
    generation = (body.get("metadata") or {}).get("generation")
    current = _current(body)
    previous = [Condition.model_validate(c) for c in current.get("conditions", [])]
    spec, spec_problem = _spec(body)
    status: dict[str, Any] = {"observedGeneration": generation}
    findings = Findings(generation=generation, maintenance=False, spec_problem=spec_problem)
    if spec is not None:
        started = time.perf_counter()
        base = build_inventory(nodes, pods, spec)
        report = base
        if state.daemon is not None and len(state.daemon.book):
            # The offer never sells GPUs held for a bid or a lease that has no pods yet (nor
            # takes a deploying lease's GPUs off twice: once held, once allocated to its Pods).
            held = inventory_reservations(state.daemon.book, placed_lease_gpus(pods))
            report = build_inventory(nodes, pods, spec, reservations=held)
        metrics.inventory_seconds.labels(name).observe(time.perf_counter() - started)
        _record_inventory(ctx, name, report)
        problems = _prerequisites(report) + await _class_problems(ctx, spec)
        # Leases cannot run without the prerequisites, so nothing is offered until they are.
        outcome, chain_problem, address = await _chain(
            ctx, name, spec, report, bool(problems), state
        )
        findings = Findings(
            generation=generation,
            maintenance=spec.maintenance.enabled,
            offered_gpus=0 if problems else report.offered_gpus,
            prerequisites=tuple(problems),
            chain_problem=chain_problem,
            outcome=outcome,
        )
        status["inventory"] = report.to_status().to_wire()
        if address is not None:
            status["address"] = address
        if outcome is not None:
            status["onChain"] = on_chain_of(outcome.after, outcome).to_wire()
            if outcome.after.registered and state.session is not None:
                # Ids are never reused, so one read per leadership term is enough.
                if state.provider_id is None:
                    state.provider_id = await state.session.provider_id()
                status["providerId"] = state.provider_id
                _run_daemon(ctx, name, body, spec, base, outcome, state, withhold=bool(problems))
    conditions = build_conditions(previous, findings)
    status["conditions"] = [c.to_wire() for c in conditions]
    for c in conditions:
        metrics.condition.labels(name, c.type).set(c.status is ConditionStatus.TRUE)
    if state.session is not None:
        metrics.pending_txs.labels(name).set(len(await state.session.store.open_intents()))
    events = events_between(current, status)
    written = status_patch_changes(current, status)
    if written:
        await patch_status(ctx.api, name, status)
    return ReconcileResult(status=status, events=events, written=written)


def _run_daemon(
    ctx: OperatorContext,
    name: str,
    body: Mapping[str, Any],
    spec: ProviderNodeSpec,
    base: InventoryReport,
    outcome: AdvertiseOutcome,
    state: LoopState,
    *,
    withhold: bool,
) -> None:
    """Start the chain daemon once the provider is registered; refresh what it reads."""
    assert state.session is not None
    view = DaemonView(
        spec=spec,
        uid=str((body.get("metadata") or {}).get("uid") or ""),
        tier=outcome.after.tier or 1,
        capacity=capacity_of(base) if not withhold else Capacity.from_nodes([]),
    )
    if state.daemon is None:
        state.daemon = ChainDaemon(ctx, name, state.session, view)
        state.daemon.start()
    else:
        state.daemon.update(view)


def _record_inventory(ctx: OperatorContext, name: str, report: InventoryReport) -> None:
    gpus = ctx.metrics.gpus
    for model in report.models:
        for state, value in (
            ("total", model.total),
            ("allocated", model.allocated),
            ("unhealthy", model.unhealthy),
            ("offered", model.offered),
        ):
            gpus.labels(name, model.model, state).set(value)
    ctx.metrics.nodes.labels(name, "offered").set(len(report.nodes))
    ctx.metrics.nodes.labels(name, "excluded").set(len(report.excluded))
