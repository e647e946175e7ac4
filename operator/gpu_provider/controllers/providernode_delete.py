"""A deleted ProviderNode ends its business before it goes (the finalizer holds it).

Without this, deleting a ProviderNode stopped its chain daemon and let the garbage collector
take its GpuLeases, whose finalizer deletes each lease's namespace: the tenants' workloads
went while their leases stayed active on chain, paid for and never closed, and the offer
stayed advertised with nobody bidding. Now, once its reconcile loop has stopped (one
transaction manager per wallet), the Lease holder:

1. closes every lease of it that is not closed yet, as the chain daemon does (reason in
   `status.closeReason` first, then `closeLease` under the key `close:<leaseId>`, so a lease
   the daemon was already closing is not closed twice); reason `ProviderNodeDeleted`, unless
   one was recorded already;
2. withdraws the offer: Maintenance, no GPU or CPU units (the registration stays: the wallet's
   tier and history are the provider's, and a new ProviderNode with the wallet resumes it);
3. waits until the workload controller has torn every lease down (`Closed`);
4. withdraws every positive earnings balance to the reward wallet.

Each pass is idempotent (Kopf retries it until it returns; a new leader resumes from the
journal in status). What cannot be done is said in the error Kopf records and logs: a missing
wallet Secret blocks the deletion while leases are open (docs/provider-guide.md, "Stuck
finalizers"); with none open, the ProviderNode goes and the offer stays on chain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gpu_provider.api.v1alpha1.gpulease import ChainLeaseState, GpuLeaseSpec, LeasePhase
from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.chain.earnings import EarningsCollector
from gpu_provider.controllers.chaindaemon_close import close_on_chain
from gpu_provider.controllers.chainsession import ChainSession, WalletProblem, load_wallet
from gpu_provider.controllers.context import OperatorContext
from gpu_provider.controllers.providernode_reconcile import read_certificate
from gpu_provider.kube.leasesink import list_provider_leases
from gpu_provider.kube.secrets import SecretKeyMissing, SecretMissing
from gpu_provider.market.advertise import DesiredProvider, build_desired
from gpu_provider.market.closing import CloseReason

__all__ = ["Decommissioned", "decommission"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decommissioned:
    """One pass: `done` when the ProviderNode may go; otherwise what it waits for."""

    done: bool
    message: str


def _open_leases(
    leases: Sequence[Mapping[str, Any]],
) -> list[tuple[str, GpuLeaseSpec, dict[str, Any]]]:
    found = []
    for body in leases:
        status = dict(body.get("status") or {})
        if status.get("phase") == LeasePhase.CLOSED.value:
            continue
        try:
            spec = GpuLeaseSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue  # not ours to interpret; the workload controller reports it
        found.append((str((body.get("metadata") or {})["name"]), spec, status))
    return found


def _reason(recorded: object) -> CloseReason:
    """The reason already recorded (a close under way keeps its reason), else ours."""
    try:
        return CloseReason(str(recorded))
    except ValueError:
        return CloseReason.PROVIDER_NODE_DELETED


async def decommission(ctx: OperatorContext, name: str, body: Mapping[str, Any]) -> Decommissioned:
    """One pass of the steps in the module doc."""
    namespace = ctx.settings.namespace
    open_leases = _open_leases(await list_provider_leases(ctx.api, namespace, name))
    registered = bool((body.get("status") or {}).get("providerId"))
    try:
        spec = ProviderNodeSpec.model_validate(body.get("spec") or {})
        wallet = await load_wallet(ctx.api, namespace, spec.wallet)
    except (ValidationError, WalletProblem) as problem:
        why = problem.message if isinstance(problem, WalletProblem) else "its spec is invalid"
        if open_leases:
            return Decommissioned(
                False,
                f"{len(open_leases)} lease(s) cannot be closed on chain: {why}; fix it, or "
                "close them by other means and remove the finalizer (docs/provider-guide.md)",
            )
        if registered:
            log.warning("%s: deleted with its offer still on chain: %s", name, why)
        return Decommissioned(True, "no lease open; nothing sent")
    if not registered and not open_leases:
        return Decommissioned(True, "never registered, no lease: nothing on chain")
    session = await ChainSession.open(
        ctx.api, name, wallet, ctx.settings.chain, lambda: ctx.is_leader, namespace
    )
    try:
        for lease_name, lease, status in open_leases:
            if status.get("chainState") == ChainLeaseState.TERMINATED.value:
                continue  # closed on chain: the workload controller finishes it
            outcome = await close_on_chain(
                ctx.api,
                namespace,
                session.contracts,
                session.tx,
                lease_name,
                int(lease.lease_id),
                _reason(status.get("closeReason")),
            )
            if outcome is not None:
                sent = str(outcome.sent).lower()
                ctx.metrics.leases_closed.labels(name, outcome.reason.value, sent).inc()
        if registered:
            await session.advertiser.reconcile(
                await _withdrawn_offer(ctx, name, spec, wallet.address)
            )
        left = _open_leases(await list_provider_leases(ctx.api, namespace, name))
        if left:
            return Decommissioned(
                False, f"waiting for {len(left)} lease(s) to be torn down (Closing → Closed)"
            )
        collector = EarningsCollector(session.contracts, session.tx, session.store, session.address)
        for token in spec.accepted_tokens:
            withdrawal = await collector.withdraw_due(token.address, 1)
            if withdrawal is not None:
                ctx.metrics.withdrawals.labels(name, token.symbol).inc()
    finally:
        await session.close()
    return Decommissioned(True, "leases closed, offer withdrawn, earnings withdrawn")


async def _withdrawn_offer(
    ctx: OperatorContext, name: str, spec: ProviderNodeSpec, address: str
) -> DesiredProvider:
    """What the registry should say of a provider that takes no more orders."""
    try:
        certificate = await read_certificate(ctx, spec)
    except (SecretMissing, SecretKeyMissing):
        certificate = ""  # gone with the rest: nothing will connect to this provider any more
    return build_desired(
        wallet=address,
        name=name,
        region=spec.region,
        host_uri=spec.host_uri,
        certificate=certificate,
        tokens=[t.address for t in spec.accepted_tokens],
        maintenance=True,
        gpu_offer={},
        cpu_offer={},
        reward_wallet=spec.reward_wallet,
    )
