"""GpuLease status for the close path, and the facts `close_reason` reads from a GpuLease.

The controller writes `closing_status` before `close_lease` broadcasts anything (from its
`before_send` callback), then `closed_status` once the chain shows the lease terminated and
the lease namespace is gone. `lease_facts` reads the GpuLease as stored: what it does not
record (no `matchedAt`) stays unknown, and unknown never closes a lease.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gpu_provider.api.v1alpha1.gpulease import (
    ChainLeaseState,
    GpuLeaseSpec,
    GpuLeaseStatus,
    LeasePhase,
)
from gpu_provider.market.closing import CloseReason, LeaseFacts, WorkloadFailure

__all__ = ["closed_status", "closing_status", "lease_facts"]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def closing_status(reason: CloseReason) -> dict[str, Any]:
    """Merge patch of status when the provider starts closing: the reason, durable first."""
    return {"phase": LeasePhase.CLOSING.value, "closeReason": reason.value}


def closed_status(reason: CloseReason, closed_at: datetime) -> dict[str, Any]:
    """Merge patch of status once the lease is closed on chain and torn down."""
    return {
        "phase": LeasePhase.CLOSED.value,
        "closeReason": reason.value,
        "chainState": ChainLeaseState.TERMINATED.value,
        "closedAt": _time(closed_at),
    }


def lease_facts(
    spec: GpuLeaseSpec, status: GpuLeaseStatus, failure: WorkloadFailure | None = None
) -> LeaseFacts:
    """`LeaseFacts` of a stored GpuLease; `failure` is the workload controller's report,
    by default the one it recorded in `status.failure` (past its deadline, see
    docs/workloads.md).

    A `closeReason` this version does not know is refused (ValueError) rather than guessed:
    a newer operator wrote it, and closing for a reason we cannot name is not ours to do.
    """
    recorded = CloseReason(status.close_reason) if status.close_reason is not None else None
    if failure is None and status.failure is not None:
        failure = WorkloadFailure(status.failure.reason, status.failure.message)
    return LeaseFacts(
        lease_id=int(spec.lease_id),
        manifest_received=spec.manifest is not None,
        created_at=status.matched_at,
        failure=failure,
        recorded_reason=recorded,
    )
