"""When a lease ends, and why: pure decisions from positive evidence only.

A workload is torn down and a `closeLease` sent only on something that was *seen*: the chain
read back a terminated lease, a head past the paid blocks or a locked escrow too small for
the next period; the GpuLease itself shows no manifest long after it was created; the
workload controller reported a failure it cannot recover from. Nothing here can be reached
from missing data: `ChainFacts` only exists for a read that succeeded (a failed RPC call
gives no `ChainFacts`, so the chain's reasons are not even considered), the escrow check
needs the balance it read, and the manifest deadline needs the time the GpuLease was created.
An operator restart, a dropped watch or an RPC outage therefore never closes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from gpu_provider.market.leases import ChainLease, LeaseState

__all__ = [
    "DEFAULT_ESCROW_PERIOD_BLOCKS",
    "DEFAULT_MANIFEST_DEADLINE",
    "ChainFacts",
    "CloseDecision",
    "CloseReason",
    "LeaseFacts",
    "WorkloadFailure",
    "blocks_left",
    "close_reason",
    "next_period_cost",
]

DEFAULT_MANIFEST_DEADLINE: Final = timedelta(minutes=5)
"""How long a tenant has to upload its manifest (the Akash-derived provider's default)."""
DEFAULT_ESCROW_PERIOD_BLOCKS: Final = 300
"""Blocks between two escrow checks: 10 minutes at Spheron's 2 s blocks."""


class CloseReason(StrEnum):
    """Why a lease ended, as `GpuLease.status.closeReason` says it."""

    TENANT_CLOSED = "TenantClosed"
    """The chain shows the lease terminated and we did not close it: the tenant did."""
    BLOCKS_RUN_OUT = "LeaseExpired"
    """The head passed `startBlock + numOfBlocks`: every paid block is used."""
    ESCROW_EXHAUSTED = "EscrowExhausted"
    """The tenant's locked escrow cannot pay for the next check period."""
    MANIFEST_DEADLINE = "ManifestDeadlinePassed"
    """No manifest arrived within `leaseDefaults.manifestDeadlineSeconds`."""
    WORKLOAD_FAILED = "WorkloadFailed"
    """The workload controller reported a failure it cannot recover from."""
    PROVIDER_NODE_DELETED = "ProviderNodeDeleted"
    """The provider deleted the ProviderNode: every lease of it is closed before it goes."""


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """One successful read of the chain: the lease, its paid blocks and the head it was read
    at. `tenant_locked` is the tenant's locked escrow in the lease's token
    (`EscrowUser.getUserData(tenant, token, false).lockedBalance`), or None when this
    round did not read it (the escrow check is periodic)."""

    head: int
    lease: ChainLease
    num_of_blocks: int
    """`numOfBlocks` of the lease's order (after any accepted update)."""
    tenant_locked: int | None = None

    def __post_init__(self) -> None:
        if self.head < 0 or self.num_of_blocks < 1:
            raise ValueError("head must be >= 0 and numOfBlocks >= 1")
        if self.tenant_locked is not None and self.tenant_locked < 0:
            raise ValueError("a locked balance is never negative")


@dataclass(frozen=True, slots=True)
class WorkloadFailure:
    """A failure the workload controller reported as unrecoverable (an image pull or crash
    loop past its deadline, a lost node), in a CamelCase reason and a sentence."""

    reason: str
    message: str = ""

    def __post_init__(self) -> None:
        if not self.reason or not self.reason[0].isupper() or not self.reason.isalnum():
            raise ValueError(f"a failure reason is CamelCase, not {self.reason!r}")


@dataclass(frozen=True, slots=True)
class LeaseFacts:
    """What the cluster shows about the lease: its GpuLease, as read.

    `created_at` is when the GpuLease was created (its `status.matchedAt`), the moment the
    gateway could first accept the manifest; None (not recorded) starts no deadline.
    `recorded_reason` is a `status.closeReason` already written: a close in progress keeps
    its reason."""

    lease_id: int
    manifest_received: bool
    created_at: datetime | None
    failure: WorkloadFailure | None = None
    recorded_reason: CloseReason | None = None


@dataclass(frozen=True, slots=True)
class CloseDecision:
    """Close the lease for `reason`; `send_close` is whether the provider sends
    `closeLease` (False when the chain already shows it terminated)."""

    reason: CloseReason
    send_close: bool
    detail: str = ""


def blocks_left(chain: ChainFacts) -> int:
    """Paid blocks after the head (0 once they have run out)."""
    return max(0, chain.lease.start_block + chain.num_of_blocks - chain.head)


def next_period_cost(chain: ChainFacts, period_blocks: int) -> int:
    """What the next `period_blocks` (at most the paid blocks left) cost, to the wei."""
    return chain.lease.accepted_price * min(period_blocks, blocks_left(chain))


def close_reason(
    lease: LeaseFacts,
    chain: ChainFacts | None,
    now: datetime,
    *,
    manifest_deadline: timedelta = DEFAULT_MANIFEST_DEADLINE,
    escrow_period_blocks: int = DEFAULT_ESCROW_PERIOD_BLOCKS,
) -> CloseDecision | None:
    """Why the lease must end now, or None to keep it.

    `chain` is None when the chain could not be read: then only the cluster's own evidence
    (no manifest by the deadline, a reported failure) can end the lease, and the caller's
    `closeLease` re-reads the lease before it sends anything.
    """
    if chain is not None and chain.lease.lease_id != lease.lease_id:
        raise ValueError(f"chain facts of lease {chain.lease.lease_id} for lease {lease.lease_id}")
    if manifest_deadline <= timedelta(0) or escrow_period_blocks < 1:
        raise ValueError("the manifest deadline and the escrow period must be positive")
    if chain is not None and chain.lease.state is LeaseState.TERMINATED:
        if lease.recorded_reason is not None:
            return CloseDecision(lease.recorded_reason, send_close=False, detail="closed on chain")
        return CloseDecision(
            CloseReason.TENANT_CLOSED, send_close=False, detail="the chain shows it terminated"
        )
    if lease.recorded_reason is not None:
        return CloseDecision(lease.recorded_reason, send_close=True, detail="closing")
    if chain is not None:
        decision = _chain_reason(chain, escrow_period_blocks)
        if decision is not None:
            return decision
    return _cluster_reason(lease, now, manifest_deadline)


def _chain_reason(chain: ChainFacts, period_blocks: int) -> CloseDecision | None:
    end = chain.lease.start_block + chain.num_of_blocks
    if chain.head >= end:
        return CloseDecision(
            CloseReason.BLOCKS_RUN_OUT,
            send_close=True,
            detail=f"block {chain.head} is past the last paid block {end - 1}",
        )
    if chain.tenant_locked is not None:
        cost = next_period_cost(chain, period_blocks)
        if chain.tenant_locked < cost:
            return CloseDecision(
                CloseReason.ESCROW_EXHAUSTED,
                send_close=True,
                detail=f"the tenant's locked escrow {chain.tenant_locked} cannot pay the next "
                f"{min(period_blocks, blocks_left(chain))} blocks ({cost})",
            )
    return None


def _cluster_reason(
    lease: LeaseFacts, now: datetime, manifest_deadline: timedelta
) -> CloseDecision | None:
    if lease.failure is not None:
        return CloseDecision(
            CloseReason.WORKLOAD_FAILED,
            send_close=True,
            detail=f"{lease.failure.reason}: {lease.failure.message}".rstrip(": "),
        )
    if not lease.manifest_received and lease.created_at is not None:
        waited = now - lease.created_at
        if waited >= manifest_deadline:
            return CloseDecision(
                CloseReason.MANIFEST_DEADLINE,
                send_close=True,
                detail=f"no manifest {int(waited.total_seconds())} s after the lease was "
                f"taken in (deadline {int(manifest_deadline.total_seconds())} s)",
            )
    return None
