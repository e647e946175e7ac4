"""Why a lease ends: every trigger closes for its reason, and missing data never closes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpu_provider.market.closing import (
    ChainFacts,
    CloseDecision,
    CloseReason,
    LeaseFacts,
    WorkloadFailure,
    close_reason,
    next_period_cost,
)
from gpu_provider.market.leases import ChainLease, LeaseState

PRICE = 1_383_333_333_333_333
START, BLOCKS = 1_000, 1_800
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = ChainLease(
    lease_id=7,
    fizz_id=0,
    request_id=7,
    accepted_price=PRICE,
    provider="0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    tenant="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    start_block=START,
    start_time=1_795_608_000,
    end_time=0,
    state=LeaseState.ACTIVE,
)
RUNNING = LeaseFacts(lease_id=7, manifest_received=True, created_at=NOW - timedelta(hours=1))


def chain(head: int = START + 10, locked: int | None = None, **lease: Any) -> ChainFacts:
    return ChainFacts(
        head=head, lease=replace(LEASE, **lease), num_of_blocks=BLOCKS, tenant_locked=locked
    )


def test_healthy_running_lease_is_kept() -> None:
    assert close_reason(RUNNING, chain(locked=PRICE * BLOCKS), NOW) is None


def test_tenant_closed_on_chain_closes_without_a_transaction() -> None:
    decision = close_reason(RUNNING, chain(state=LeaseState.TERMINATED), NOW)
    assert decision == CloseDecision(
        CloseReason.TENANT_CLOSED, send_close=False, detail="the chain shows it terminated"
    )


def test_our_own_close_seen_on_chain_keeps_our_reason_and_sends_nothing_more() -> None:
    ours = replace(RUNNING, recorded_reason=CloseReason.BLOCKS_RUN_OUT)
    decision = close_reason(ours, chain(state=LeaseState.TERMINATED), NOW)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.BLOCKS_RUN_OUT, False)


def test_close_in_progress_keeps_its_reason_even_when_the_chain_cannot_be_read() -> None:
    ours = replace(RUNNING, recorded_reason=CloseReason.MANIFEST_DEADLINE)
    decision = close_reason(ours, None, NOW)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.MANIFEST_DEADLINE, True)


@pytest.mark.parametrize(
    ("head", "expired"),
    [(START + BLOCKS - 1, False), (START + BLOCKS, True), (START + BLOCKS + 500, True)],
)
def test_lease_closes_once_every_paid_block_is_used(head: int, expired: bool) -> None:
    decision = close_reason(RUNNING, chain(head=head), NOW)
    if expired:
        assert decision is not None
        assert (decision.reason, decision.send_close) == (CloseReason.BLOCKS_RUN_OUT, True)
        assert f"last paid block {START + BLOCKS - 1}" in decision.detail
    else:
        assert decision is None


def test_escrow_that_cannot_pay_the_next_period_closes_the_lease() -> None:
    facts = chain(head=START + 100)
    cost = next_period_cost(facts, 300)
    assert cost == PRICE * 300  # exact integers, to the wei
    assert close_reason(RUNNING, replace(facts, tenant_locked=cost), NOW) is None
    decision = close_reason(RUNNING, replace(facts, tenant_locked=cost - 1), NOW)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.ESCROW_EXHAUSTED, True)


def test_near_the_end_the_escrow_only_has_to_pay_the_blocks_left() -> None:
    facts = chain(head=START + BLOCKS - 10, locked=PRICE * 10)
    assert next_period_cost(facts, 300) == PRICE * 10
    assert close_reason(RUNNING, facts, NOW) is None


@pytest.mark.parametrize(
    ("waited", "closes"), [(timedelta(minutes=4, seconds=59), False), (timedelta(minutes=5), True)]
)
def test_manifest_deadline_closes_a_lease_that_never_got_its_manifest(
    waited: timedelta, closes: bool
) -> None:
    waiting = LeaseFacts(lease_id=7, manifest_received=False, created_at=NOW - waited)
    decision = close_reason(waiting, chain(), NOW)
    if closes:
        assert decision is not None
        assert (decision.reason, decision.send_close) == (CloseReason.MANIFEST_DEADLINE, True)
    else:
        assert decision is None
    # The deadline is a setting: a short one in a test closes sooner.
    short = close_reason(waiting, chain(), NOW, manifest_deadline=timedelta(seconds=10))
    assert short is not None
    assert short.reason is CloseReason.MANIFEST_DEADLINE


def test_reported_unrecoverable_workload_failure_closes_with_its_reason() -> None:
    failing = replace(RUNNING, failure=WorkloadFailure("ImagePullBackOff", "pulling for 10 m"))
    decision = close_reason(failing, chain(), NOW)
    assert decision == CloseDecision(
        CloseReason.WORKLOAD_FAILED, send_close=True, detail="ImagePullBackOff: pulling for 10 m"
    )


def test_chain_reasons_come_before_cluster_ones() -> None:
    failing = replace(RUNNING, failure=WorkloadFailure("NodeLost"))
    decision = close_reason(failing, chain(state=LeaseState.TERMINATED), NOW)
    assert decision is not None
    assert decision.reason is CloseReason.TENANT_CLOSED


# --- missing data never closes ---------------------------------------------------------------


def test_failed_chain_read_alone_never_closes() -> None:
    """An RPC outage gives no ChainFacts; a running lease is then kept."""
    assert close_reason(RUNNING, None, NOW) is None


def test_escrow_not_read_this_round_never_closes() -> None:
    assert close_reason(RUNNING, chain(locked=None), NOW) is None


def test_lease_without_a_recorded_intake_time_starts_no_manifest_deadline() -> None:
    """A GpuLease whose status was lost (restored from a backup, an old operator) is not
    closed for a deadline nobody can compute."""
    unknown = LeaseFacts(lease_id=7, manifest_received=False, created_at=None)
    assert close_reason(unknown, chain(), NOW + timedelta(days=30)) is None


def test_restart_with_nothing_known_yet_closes_nothing() -> None:
    """Right after a restart: no chain read yet, the GpuLease as stored, no failure report."""
    restarted = LeaseFacts(lease_id=7, manifest_received=True, created_at=NOW)
    assert close_reason(restarted, None, NOW + timedelta(days=1)) is None


def test_chain_facts_of_another_lease_are_refused() -> None:
    with pytest.raises(ValueError, match="chain facts of lease 8 for lease 7"):
        close_reason(RUNNING, chain(lease_id=8), NOW)


@pytest.mark.parametrize("reason", ["", "imagePull", "Crash Loop"])
def test_workload_failure_needs_a_camelcase_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        WorkloadFailure(reason)
