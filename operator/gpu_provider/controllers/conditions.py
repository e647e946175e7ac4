"""ProviderNode conditions from what one reconcile found (pure).

Each condition has a CamelCase reason a provider can act on and a sentence saying what to do;
docs/operator.md lists them. `Ready` is True only when the prerequisites are met, the provider
is registered, the chain is in step and the offer is on chain; otherwise it carries the
reason of the first of those that is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from gpu_provider.api.v1alpha1.common import Condition, ConditionStatus, set_condition
from gpu_provider.api.v1alpha1.providernode import OnChain, OnChainStatus
from gpu_provider.chain.advertiser import AdvertiseOutcome
from gpu_provider.market.advertise import CATEGORIES, ActionKind, ActualProvider, ProviderStatus

__all__ = ["CONDITION_TYPES", "Findings", "Problem", "build_conditions", "on_chain_of"]

READY: Final = "Ready"
PREREQUISITES: Final = "PrerequisitesMet"
REGISTERED: Final = "Registered"
ADVERTISED: Final = "Advertised"
MAINTENANCE: Final = "Maintenance"
CHAIN_SYNCED: Final = "ChainSynced"
CONDITION_TYPES: Final = (READY, PREREQUISITES, REGISTERED, ADVERTISED, MAINTENANCE, CHAIN_SYNCED)

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class Findings:
    """What one reconcile saw. `chain_problem` is set when the chain was not reached (a
    wallet Secret at fault, the RPC down, not the Lease holder); `outcome` when it was."""

    generation: int | None
    maintenance: bool
    offered_gpus: int = 0
    spec_problem: Problem | None = None
    prerequisites: tuple[Problem, ...] = ()
    chain_problem: Problem | None = None
    outcome: AdvertiseOutcome | None = None
    unknown_products: tuple[str, ...] = field(default=())


def _refusal(outcome: AdvertiseOutcome, kind: ActionKind | None = None) -> str | None:
    for refusal in outcome.refused:
        if kind is None or refusal.action.kind is kind:
            return f"{refusal.action.summary}: {refusal.error}"
    return None


def _registered(f: Findings) -> tuple[ConditionStatus, str, str]:
    if f.outcome is None:
        problem = f.chain_problem or Problem("ChainNotRead", "the chain has not been read yet")
        return F, problem.reason, problem.message
    after = f.outcome.after
    if after.registered:
        return T, "Registered", f"registered on chain, trust tier {after.tier}"
    refused = _refusal(f.outcome, ActionKind.REGISTER)
    if refused:
        return F, "RegistrationRefused", refused
    if any(a.kind is ActionKind.REGISTER for a in f.outcome.in_flight):
        return F, "Registering", "the registration transaction is sent and not yet mined"
    return F, "NotRegistered", "the wallet is not registered yet; it will be"


def _advertised(f: Findings) -> tuple[ConditionStatus, str, str]:
    if f.outcome is None:
        problem = f.chain_problem or Problem("ChainNotRead", "the chain has not been read yet")
        return F, problem.reason, problem.message
    o = f.outcome
    if o.rejected:
        return (
            F,
            "AttributesRejected",
            f"the marketplace verifier rejected the {', '.join(o.rejected)} offer; it is "
            "submitted again when the offer changes",
        )
    if _refusal(o):
        return F, "TransactionRefused", str(_refusal(o))
    if o.in_flight:
        return F, "TransactionPending", "an advertising transaction is sent and not yet mined"
    if o.awaiting_approval:
        return (
            F,
            "AwaitingApproval",
            f"the {', '.join(o.awaiting_approval)} offer is submitted and awaits the "
            "marketplace verifier's approval",
        )
    if not o.in_sync:
        return F, "Advertising", "the offer on chain differs from the cluster's; correcting it"
    return T, "OfferOnChain", f"{f.offered_gpus} GPUs offered, equal to the approved attributes"


def _chain_synced(f: Findings) -> tuple[ConditionStatus, str, str]:
    if f.outcome is None:
        problem = f.chain_problem or Problem("ChainNotRead", "the chain has not been read yet")
        return F, problem.reason, problem.message
    if _refusal(f.outcome):
        return F, "TransactionRefused", str(_refusal(f.outcome))
    if f.outcome.in_flight:
        return F, "TransactionPending", "a transaction is sent and not yet mined"
    if not f.outcome.in_sync:
        return F, "Drift", "the chain differs from the ProviderNode; correcting it"
    return T, "InSync", "the registration, tokens, status and attributes match the spec"


def _maintenance(f: Findings) -> tuple[ConditionStatus, str, str]:
    status = f.outcome.after.status if f.outcome is not None else None
    if f.maintenance:
        if status is ProviderStatus.MAINTENANCE:
            return T, "MaintenanceOnChain", "in maintenance on chain: no new orders are won"
        return T, "MaintenanceRequested", "spec.maintenance.enabled; the chain is not yet told"
    if status is ProviderStatus.MAINTENANCE:
        return F, "LeavingMaintenance", "maintenance is off; setting the provider Active"
    return F, "Serving", "not in maintenance"


def _prerequisites(f: Findings) -> tuple[ConditionStatus, str, str]:
    if not f.prerequisites:
        return T, "AllPresent", "GPU device plugin resources and the configured classes exist"
    first = f.prerequisites[0]
    return F, first.reason, "; ".join(p.message for p in f.prerequisites)


def build_conditions(
    previous: list[Condition], f: Findings, now: datetime | None = None
) -> list[Condition]:
    """The six conditions, each keeping its transition time while its status stays."""
    parts: dict[str, tuple[ConditionStatus, str, str]] = {
        PREREQUISITES: _prerequisites(f),
        REGISTERED: _registered(f),
        CHAIN_SYNCED: _chain_synced(f),
        ADVERTISED: _advertised(f),
        MAINTENANCE: _maintenance(f),
    }
    if f.spec_problem is not None:
        ready = (F, f.spec_problem.reason, f.spec_problem.message)
    else:
        blocking = [parts[t] for t in (PREREQUISITES, REGISTERED, CHAIN_SYNCED, ADVERTISED)]
        failed = next((p for p in blocking if p[0] is not T), None)
        ready = failed or (T, "Ready", f"{f.offered_gpus} GPUs offered on chain")
    conditions = [c for c in previous if c.type not in CONDITION_TYPES]
    old = {c.type: c for c in previous}
    for type_, (status, reason, message) in [(READY, ready), *parts.items()]:
        kept = [old[type_]] if type_ in old else []
        conditions += set_condition(
            kept, type_, status, reason, message[:2048], f.generation, now=now
        )
    return conditions


_STATUS: Final = {
    ProviderStatus.UNREGISTERED: OnChainStatus.UNREGISTERED,
    ProviderStatus.REGISTERED: OnChainStatus.REGISTERED,
    ProviderStatus.ACTIVE: OnChainStatus.ACTIVE,
    ProviderStatus.MAINTENANCE: OnChainStatus.MAINTENANCE,
    ProviderStatus.SUSPENDED: OnChainStatus.SUSPENDED,
    ProviderStatus.DEACTIVATED: OnChainStatus.DEACTIVATED,
}


def on_chain_of(actual: ActualProvider, outcome: AdvertiseOutcome) -> OnChain:
    submitted = any(actual.pending_units(c) for c in CATEGORIES) or bool(outcome.awaiting_approval)
    return OnChain(
        status=_STATUS[actual.status],
        tier=actual.tier,
        attributes_submitted=submitted,
        attributes_approved=outcome.in_sync and not outcome.awaiting_approval,
    )
