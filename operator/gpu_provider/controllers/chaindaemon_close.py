"""The chain daemon's timers: lease close decisions, lease holds, and earnings.

Each lease check is level-triggered: list the ProviderNode's GpuLeases, and for each that is
not Closed read the chain (`read_chain_facts`; the tenant's escrow only on the slower escrow
timer) and ask `market.closing.close_reason`. Closing needs positive evidence: a failed read
gives no `ChainFacts`, which never closes anything on the chain's account.

When the provider closes, `status.closeReason` and phase Closing are written by
`close_lease`'s `before_send`, before `closeLease` is journaled and broadcast (key
`close:<leaseId>`); a restart finds the recorded reason and resumes the same transaction.
A lease the tenant closed becomes Closing with reason TenantClosed and nothing is sent. The
workload controller takes it from Closing to Closed.

Lease holds (`ReservationBook`): a lease keeps its GPUs held while it is AwaitingManifest (no
pods yet, so the inventory does not count them); from Deploying on the pods hold them and
the book releases it (LEASE_ALLOCATED); a closing lease releases it (LEASE_CLOSED). After a
restart `restore_holds` holds again the GPUs of AwaitingManifest leases from their
`status.placement`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from gpu_provider.api.v1alpha1.gpulease import (
    ChainLeaseState,
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeasePhase,
)
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.earnings import EarningsCollector, earnings_status
from gpu_provider.chain.leases import read_chain_facts
from gpu_provider.chain.leasetx import CloseIntent, CloseOutcome, LeaseNotFound, close_lease
from gpu_provider.chain.tx import TxManager
from gpu_provider.controllers.chainsession import NotLeader
from gpu_provider.kube.api import ApiClient
from gpu_provider.kube.leases import patch_gpulease_status
from gpu_provider.kube.leasesink import list_provider_leases
from gpu_provider.market.capacity import OrderPlacement, ReplicaPlacement
from gpu_provider.market.closing import ChainFacts, CloseReason, close_reason
from gpu_provider.market.earnings import threshold_base_units
from gpu_provider.market.reservations import HoldState, ReleaseReason, ReservationBook
from gpu_provider.metrics import OperatorMetrics
from gpu_provider.render.leasestatus import closing_status, lease_facts

__all__ = ["LeaseCloser", "close_on_chain", "collect_earnings", "lease_placement"]

log = logging.getLogger(__name__)

_DONE = {LeasePhase.CLOSED.value}
_HOLDING = {LeasePhase.AWAITING_MANIFEST.value}


def lease_placement(spec: GpuLeaseSpec, status: GpuLeaseStatus) -> OrderPlacement | None:
    """The GPUs a stored lease holds, from `status.placement` (one node, one model: the
    only shape status records in full); None when it cannot be rebuilt."""
    placed = status.placement
    if placed is None or placed.node is None:
        return None
    replicas = tuple(
        ReplicaPlacement(
            service=service.name,
            replica=index,
            node=placed.node,
            gpu_model=placed.model if service.gpu.units > 0 else None,
            gpus=service.gpu.units,
            cpu_millis=service.cpu_millis,
            memory_bytes=service.memory_bytes,
        )
        for service in spec.resources.services
        for index in range(service.replicas)
    )
    return OrderPlacement(replicas)


def _parse(body: Mapping[str, Any]) -> tuple[GpuLeaseSpec, GpuLeaseStatus] | None:
    try:
        return (
            GpuLeaseSpec.model_validate(body.get("spec") or {}),
            GpuLeaseStatus.model_validate(body.get("status") or {}),
        )
    except ValidationError as error:
        name = (body.get("metadata") or {}).get("name")
        log.warning("GpuLease %s does not parse (%s): not checked", name, error.errors()[0])
        return None


class LeaseCloser:
    """Close decisions and lease holds for one ProviderNode's GpuLeases."""

    def __init__(
        self,
        api: ApiClient,
        namespace: str,
        provider_node: str,
        contracts: Contracts,
        tx: TxManager,
        book: ReservationBook,
        metrics: OperatorMetrics,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = provider_node
        self.contracts = contracts
        self.tx = tx
        self.book = book
        self.metrics = metrics
        self.active = 0
        """GpuLeases not yet Closed, at the last check (`maxConcurrentLeases` counts them)."""

    async def restore_holds(self, now: float) -> int:
        """Hold again the GPUs of leases still waiting for their manifest (after a restart)."""
        held = 0
        for body in await list_provider_leases(self.api, self.namespace, self.name):
            parsed = _parse(body)
            if parsed is None or (parsed[1].phase or "") not in _HOLDING:
                continue
            spec, status = parsed
            placement = lease_placement(spec, status)
            order_id = int(spec.order_id)
            if placement is None or order_id in self.book:
                continue
            self.book.hold_lease(order_id, placement, now=now)
            held += 1
        if held:
            log.info("%s: GPUs held again for %d lease(s) awaiting their manifest", self.name, held)
        return held

    async def check(self, spec: ProviderNodeSpec, now: datetime, *, escrow: bool) -> None:
        """One pass over every GpuLease of ours."""
        leases = await list_provider_leases(self.api, self.namespace, self.name)
        phases: Counter[str] = Counter()
        for body in leases:
            phases[str((body.get("status") or {}).get("phase") or "Unknown")] += 1
        for phase in LeasePhase:
            self.metrics.leases.labels(self.name, phase.value).set(phases.get(phase.value, 0))
        self.active = sum(n for phase, n in phases.items() if phase not in _DONE)
        deadline = timedelta(seconds=spec.lease_defaults.manifest_deadline_seconds)
        for body in leases:
            parsed = _parse(body)
            if parsed is None:
                continue
            try:
                await self._one(body, *parsed, now, deadline, escrow)
            except NotLeader:
                raise
            except Exception:  # one lease's trouble must not stop the others' checks
                log.exception("lease %s: close check failed; again at the next", parsed[0].lease_id)

    def _release(self, order_id: int, phase: str) -> None:
        held = self.book.get(order_id)
        if held is None or held.state is not HoldState.LEASED or phase in _HOLDING:
            return
        closing = phase in (LeasePhase.CLOSING.value, LeasePhase.CLOSED.value)
        self.book.release(
            order_id, ReleaseReason.LEASE_CLOSED if closing else ReleaseReason.LEASE_ALLOCATED
        )

    async def _one(
        self,
        body: Mapping[str, Any],
        spec: GpuLeaseSpec,
        status: GpuLeaseStatus,
        now: datetime,
        deadline: timedelta,
        escrow: bool,
    ) -> None:
        phase = status.phase.value if status.phase is not None else ""
        self._release(int(spec.order_id), phase)
        if phase in _DONE or status.chain_state is ChainLeaseState.TERMINATED:
            return  # closed on chain: the workload controller finishes it
        lease_id = int(spec.lease_id)
        chain: ChainFacts | None
        try:
            chain = await read_chain_facts(self.contracts, lease_id, escrow=escrow)
        except Exception as error:  # an RPC failure is no evidence: the chain is not consulted
            log.warning("lease %d: chain not read (%s); checked again later", lease_id, error)
            chain = None
        try:
            # The workload controller's failure report is read from status by lease_facts.
            facts = lease_facts(spec, status)
        except ValueError as error:
            log.warning("lease %d: %s; not closing it", lease_id, error)
            return
        decision = close_reason(facts, chain, now, manifest_deadline=deadline)
        if decision is None:
            return
        name = str((body.get("metadata") or {})["name"])
        if decision.send_close:
            await self._close(name, lease_id, decision.reason)
        else:
            await patch_gpulease_status(
                self.api,
                self.namespace,
                name,
                {**closing_status(decision.reason), "chainState": ChainLeaseState.TERMINATED.value},
            )
            self.metrics.leases_closed.labels(self.name, decision.reason.value, "false").inc()
            log.info("lease %d: closed on chain (%s); Closing", lease_id, decision.reason.value)
        self._release(int(spec.order_id), LeasePhase.CLOSING.value)

    async def _close(self, name: str, lease_id: int, reason: CloseReason) -> None:
        outcome = await close_on_chain(
            self.api, self.namespace, self.contracts, self.tx, name, lease_id, reason
        )
        if outcome is not None:
            sent = str(outcome.sent).lower()
            self.metrics.leases_closed.labels(self.name, reason.value, sent).inc()


async def close_on_chain(
    api: ApiClient,
    namespace: str,
    contracts: Contracts,
    tx: TxManager,
    name: str,
    lease_id: int,
    reason: CloseReason,
) -> CloseOutcome | None:
    """Close GpuLease `name`'s lease on chain for `reason`: Closing with the reason in its
    status before anything is journaled or broadcast, then `closeLease` (once, under
    `close:<leaseId>`), then `chainState: Terminated`. None when the chain has no such lease."""

    async def before_send(intent: CloseIntent) -> None:
        # Durable before anything is journaled or broadcast.
        await patch_gpulease_status(api, namespace, name, closing_status(intent.reason))

    try:
        outcome = await close_lease(contracts, tx, lease_id, reason, before_send=before_send)
    except LeaseNotFound as error:
        log.error("lease %d: %s", lease_id, error)
        return None
    await patch_gpulease_status(
        api,
        namespace,
        name,
        {**closing_status(reason), "chainState": ChainLeaseState.TERMINATED.value},
    )
    return outcome


async def collect_earnings(
    collector: EarningsCollector,
    spec: ProviderNodeSpec,
    metrics: OperatorMetrics,
    provider_node: str,
) -> list[dict[str, Any]]:
    """Withdraw each accepted token's balance once it reaches its threshold; the
    `status.earnings` entries after that."""
    entries = []
    for token in spec.accepted_tokens:
        threshold = threshold_base_units(token.withdraw_threshold, token.decimals)
        withdrawal = await collector.withdraw_due(token.address, threshold)
        if withdrawal is not None:
            metrics.withdrawals.labels(provider_node, token.symbol).inc()
        earnings = await collector.earnings(token.address)
        for kind in ("earned", "withdrawn", "balance"):
            metrics.earnings.labels(provider_node, token.symbol, kind).set(getattr(earnings, kind))
        entries.append(earnings_status(token.symbol, token.address, earnings).to_wire())
    return entries


def utc_now() -> datetime:
    return datetime.now(UTC)
