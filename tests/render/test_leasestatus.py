"""The close path's status patches, and the facts a stored GpuLease gives `close_reason`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus
from gpu_provider.market.closing import CloseReason, close_reason
from gpu_provider.render import closed_status, closing_status, lease_facts

SPEC = GpuLeaseSpec.model_validate(
    {
        "leaseId": "42",
        "orderId": "42",
        "providerNode": "devnet-provider",
        "tenant": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "acceptedPrice": "1000",
        "startBlock": 10,
        "numOfBlocks": 100,
        "resources": {
            "totalGpus": 1,
            "services": [
                {"name": "py", "cpuMillis": 1000, "memoryBytes": 1024, "gpu": {"units": 1}}
            ],
        },
    }
)
TAKEN_IN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_stored_lease_without_manifest_closes_after_the_deadline() -> None:
    facts = lease_facts(SPEC, GpuLeaseStatus(phase="AwaitingManifest", matched_at=TAKEN_IN))
    assert (facts.lease_id, facts.manifest_received, facts.created_at) == (42, False, TAKEN_IN)
    decision = close_reason(facts, None, TAKEN_IN + timedelta(minutes=5))
    assert decision is not None
    assert decision.reason is CloseReason.MANIFEST_DEADLINE


def test_stored_lease_without_matched_at_is_never_closed_for_its_manifest() -> None:
    facts = lease_facts(SPEC, GpuLeaseStatus())
    assert close_reason(facts, None, TAKEN_IN + timedelta(days=7)) is None


def test_recorded_reason_is_kept_and_an_unknown_one_is_refused() -> None:
    closing = GpuLeaseStatus.model_validate(closing_status(CloseReason.BLOCKS_RUN_OUT))
    assert closing.phase == "Closing"
    assert lease_facts(SPEC, closing).recorded_reason is CloseReason.BLOCKS_RUN_OUT
    with pytest.raises(ValueError, match="SomethingNew"):
        lease_facts(SPEC, GpuLeaseStatus(close_reason="SomethingNew"))


def test_closed_status_is_a_valid_status() -> None:
    patch = closed_status(CloseReason.TENANT_CLOSED, TAKEN_IN)
    assert patch == {
        "phase": "Closed",
        "closeReason": "TenantClosed",
        "chainState": "Terminated",
        "closedAt": "2026-12-01T12:00:00Z",
    }
    assert GpuLeaseStatus.model_validate(patch).closed_at == TAKEN_IN
