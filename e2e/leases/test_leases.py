"""Leases matched to the provider become GpuLease records once, are recovered at start, are
closed for what the chain shows, and pay out exactly what they earned.

The tenant orders with the devnet tenant tool and the devnet matchmaker matches; the
provider bids with plain transaction-manager calls (the bid engine is not involved). The
cluster side is the in-memory `LeaseSink`: what the cluster would hold.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from web3.types import RPCEndpoint

from e2e.chain.conftest import TOKEN, Market
from e2e.leases.conftest import Marketplace, Provider, eventually
from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec
from gpu_provider.chain.earnings import EarningsCollector, earnings_status, read_earnings
from gpu_provider.chain.errors import TransactionTimeout
from gpu_provider.chain.events import Checkpoint, EventStream
from gpu_provider.chain.leases import (
    InMemoryLeaseSink,
    LeaseIntake,
    read_chain_facts,
    recover_leases,
)
from gpu_provider.chain.leasetx import CloseIntent, close_key, close_lease
from gpu_provider.chain.tx import TxTimings
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.market.closing import CloseReason, LeaseFacts, close_reason
from gpu_provider.market.earnings import withdraw_key
from gpu_provider.render import ProviderNodeRef, build_gpulease

pytestmark = pytest.mark.e2e

MAX_PRICE = 4 * TOKEN // 1800  # the example order: at most 4 USD/h
PRICE = MAX_PRICE // 2
CONFIRMATIONS = 2
NODE = ProviderNodeRef(name="devnet-provider", uid="0d7c2a8e-1111-4a1e-9c43-0b8d2f7e5a10")


def _stream(devnet: DevnetChain, intake: LeaseIntake, checkpoint: Checkpoint) -> EventStream:
    return EventStream(
        devnet.w3,
        intake.sources(),
        checkpoint,
        confirmations=CONFIRMATIONS,
        poll_interval=0.05,
    )


async def _follow_until(
    intake: LeaseIntake, stream: EventStream, saved: list[Checkpoint], block: int
) -> None:
    """Run intake until the checkpoint covers `block` (persisting every checkpoint)."""

    async def save(checkpoint: Checkpoint) -> None:
        saved.append(checkpoint)

    task = asyncio.create_task(intake.follow(stream, save))
    try:
        await eventually(
            lambda: bool(saved) and saved[-1].block_number >= block and saved[-1].log_index is None,
            f"intake's checkpoint reaching block {block}",
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()


async def test_matched_lease_is_taken_in_once_with_its_decoded_order_and_not_again_after_restart(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    start = Checkpoint.start_at(market.block() + 1)
    order = await marketplace.order()
    await provider.bid(order.order_id, PRICE)
    lease_id = await marketplace.match(order)
    market.mine(CONFIRMATIONS)

    sink = InMemoryLeaseSink()
    intake = LeaseIntake(devnet.marketplace, provider.address, sink)
    saved: list[Checkpoint] = []
    await _follow_until(
        intake, _stream(devnet, intake, start), saved, market.block() - CONFIRMATIONS
    )

    # LeaseCreated and OrderMatched both announced it: the cluster was asked once.
    assert sink.calls == [lease_id]
    record = sink.leases[lease_id]
    assert (record.lease.provider, record.lease.tenant) == (
        provider.address,
        market.people.tenant.address,
    )
    assert record.lease.accepted_price == PRICE
    assert record.order.num_of_blocks == 1800
    assert record.event is not None
    # The GpuLease the operator would create shows the tenant's order, decoded.
    rendered = build_gpulease(
        record.lease, record.order, NODE, "gpu-provider-system", taken_in_at=datetime.now(UTC)
    )
    spec = GpuLeaseSpec.model_validate(rendered.body["spec"])
    assert spec.lease_id == str(lease_id)
    assert spec.resources.total_gpus == 1
    vllm, ui = spec.resources.services
    assert (vllm.name, vllm.gpu.units, vllm.gpu.models) == ("vllm", 1, ["h100", "a100-80g"])
    assert (vllm.cpu_millis, vllm.memory_bytes) == (4000, 32 * 2**30)
    assert (ui.name, ui.replicas, ui.gpu.units) == ("ui", 2, 0)
    assert rendered.status["phase"] == "AwaitingManifest"

    # Restart from the persisted checkpoint: nothing is delivered twice.
    market.mine(3)
    restarted = LeaseIntake(devnet.marketplace, provider.address, sink)
    again: list[Checkpoint] = []
    await _follow_until(
        restarted,
        _stream(devnet, restarted, saved[-1]),
        again,
        market.block() - CONFIRMATIONS,
    )
    assert sink.calls == [lease_id]


async def test_recovery_finds_every_active_lease_and_a_tenant_close_needs_no_transaction(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    people = market.people
    ours = []
    for _ in range(2):
        order = await marketplace.order()
        await provider.bid(order.order_id, PRICE)
        ours.append(await marketplace.match(order))
    theirs = await marketplace.order()
    market.bid(people.other_provider, theirs.order_id, PRICE)
    await marketplace.match(theirs)

    # At start every active lease of ours is found, with its order decoded.
    found = await recover_leases(devnet.marketplace, provider.address)
    assert [r.lease_id for r in found] == ours
    assert all(r.order.spec is not None and r.order.spec.total_gpus == 1 for r in found)
    sink = InMemoryLeaseSink()
    await LeaseIntake(devnet.marketplace, provider.address, sink).recover()
    assert sorted(sink.leases) == ours

    # The tenant closes the first: the chain says so, the provider sends nothing.
    closed, kept = ours
    await marketplace.tenant.close(closed)
    nonce = provider.nonce()
    facts = await read_chain_facts(devnet.marketplace, closed, escrow=True)
    assert facts is not None
    now = datetime.now(UTC)
    decision = close_reason(LeaseFacts(closed, manifest_received=True, created_at=now), facts, now)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.TENANT_CLOSED, False)
    recorded: list[CloseIntent] = []

    async def record(intent: CloseIntent) -> None:
        recorded.append(intent)

    outcome = await close_lease(
        devnet.marketplace, provider.tx, closed, CloseReason.TENANT_CLOSED, before_send=record
    )
    assert (outcome.sent, recorded, provider.nonce()) == (False, [], nonce)
    # The other lease runs on, and its escrow pays the next period: nothing to close.
    kept_facts = await read_chain_facts(devnet.marketplace, kept, escrow=True)
    assert kept_facts is not None
    assert kept_facts.tenant_locked is not None
    running = LeaseFacts(kept, manifest_received=True, created_at=now)
    assert close_reason(running, kept_facts, now) is None
    assert [r.lease_id for r in await recover_leases(devnet.marketplace, provider.address)] == [
        kept
    ]


async def _expired_lease(market: Market, provider: Provider, marketplace: Marketplace) -> int:
    """A 20 s (10 block) lease of ours whose paid blocks have all passed."""
    order = await marketplace.order("20s")
    await provider.bid(order.order_id, PRICE)
    lease_id = await marketplace.match(order)
    start = market.lease(lease_id)["startBlock"]
    market.mine(max(1, start + 10 - market.block()))
    return lease_id


async def test_lease_out_of_blocks_is_closed_once_with_its_reason_recorded_first(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    lease_id = await _expired_lease(market, provider, marketplace)
    facts = await read_chain_facts(devnet.marketplace, lease_id)
    assert facts is not None
    now = datetime.now(UTC)
    decision = close_reason(LeaseFacts(lease_id, True, now), facts, now)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.BLOCKS_RUN_OUT, True)

    nonce = provider.nonce()
    recorded: list[tuple[CloseIntent, int, list[str]]] = []

    async def record(intent: CloseIntent) -> None:
        # Where the operator writes status.closeReason: nothing is journaled or sent yet.
        recorded.append((intent, provider.nonce(), [t.key for t in provider.status.pending_txs]))

    outcome = await close_lease(
        devnet.marketplace, provider.tx, lease_id, decision.reason, before_send=record
    )
    ((intent, nonce_then, journal_then),) = recorded
    assert (intent.reason, intent.key) == (CloseReason.BLOCKS_RUN_OUT, close_key(lease_id))
    assert nonce_then == nonce
    assert close_key(lease_id) not in journal_then
    assert outcome.sent
    assert outcome.tx_hash is not None
    assert market.lease(lease_id)["state"] == 1  # TERMINATED
    assert provider.nonce() == nonce + 1

    # Asked again (the next reconcile, or after a restart): nothing is sent.
    await provider.restart()
    again = await close_lease(
        devnet.marketplace, provider.tx, lease_id, decision.reason, before_send=record
    )
    assert (again.sent, len(recorded), provider.nonce()) == (False, 1, nonce + 1)
    # The tenant paid exactly the 10 blocks; the provider earned all of it (no protocol fee).
    earned = await read_earnings(devnet.marketplace, provider.address, _token(market))
    assert (earned.earned, earned.withdrawn, earned.balance) == (PRICE * 10, 0, PRICE * 10)


def _token(market: Market) -> str:
    return str(market.addresses.test_token)


async def test_earnings_are_withdrawn_to_the_wei_and_a_repeat_sends_nothing(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    lease_id = await _expired_lease(market, provider, marketplace)

    async def record(_intent: CloseIntent) -> None:
        return None

    await close_lease(
        devnet.marketplace, provider.tx, lease_id, CloseReason.BLOCKS_RUN_OUT, before_send=record
    )
    token, reward = _token(market), market.people.reward_wallet
    owed = PRICE * 10
    collector = EarningsCollector(devnet.marketplace, provider.tx, provider.store, provider.address)
    # Below the threshold nothing moves.
    assert await collector.withdraw_due(token, owed + 1) is None
    wallet_before, nonce = market.tokens_of(reward), provider.nonce()

    done = await collector.withdraw_due(token, owed)
    assert done is not None
    assert (done.amount, done.key, done.resumed) == (owed, withdraw_key(token, 0), False)
    assert market.tokens_of(reward) == wallet_before + owed
    after = await collector.earnings(token)
    assert (after.earned, after.withdrawn, after.balance) == (owed, owed, 0)
    assert earnings_status("USDT", token, after).to_wire() == {
        "token": "USDT",
        "address": token,
        "earned": str(owed),
        "withdrawn": str(owed),
        "balance": "0",
    }
    # Again: nothing is due, nothing is sent.
    assert await collector.withdraw_due(token, 0) is None
    assert provider.nonce() == nonce + 1


async def test_withdrawal_interrupted_before_its_receipt_resumes_under_the_same_key(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    lease_id = await _expired_lease(market, provider, marketplace)

    async def record(_intent: CloseIntent) -> None:
        return None

    await close_lease(
        devnet.marketplace, provider.tx, lease_id, CloseReason.BLOCKS_RUN_OUT, before_send=record
    )
    token, owed = _token(market), PRICE * 10
    wallet_before, nonce = market.tokens_of(market.people.reward_wallet), provider.nonce()
    short = TxTimings(poll_interval=0.05, replace_after=600, receipt_timeout=1.0, confirmations=0)

    def automine(enabled: bool) -> Any:
        return market.w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [enabled])

    automine(False)
    try:
        # The withdrawal is journaled and broadcast, then the operator stops waiting.
        await provider.restart(short)
        first = EarningsCollector(devnet.marketplace, provider.tx, provider.store, provider.address)
        with pytest.raises(TransactionTimeout):
            await first.withdraw_due(token, owed)
        # Restarted while it is still unmined: the same key, the journaled transaction.
        await provider.restart(short)
        second = EarningsCollector(
            devnet.marketplace, provider.tx, provider.store, provider.address
        )
        with pytest.raises(TransactionTimeout):
            await second.withdraw_due(token, owed)
        keys = [t.key for t in provider.status.pending_txs if t.key.startswith("withdraw:")]
        assert keys == [withdraw_key(token, 0)]
        pending = market.w3.eth.get_transaction_count(market.people.provider.address, "pending")
        assert pending == nonce + 1  # one transaction in flight, not two
    finally:
        automine(True)
    market.mine(1)
    await provider.restart()
    await provider.tx.recover()  # as ChainSession.open does before anything new
    collector = EarningsCollector(devnet.marketplace, provider.tx, provider.store, provider.address)
    assert await collector.withdraw_due(token, 0) is None
    after = await collector.earnings(token)
    assert (after.withdrawn, after.balance) == (owed, 0)
    assert market.tokens_of(market.people.reward_wallet) == wallet_before + owed
    assert provider.nonce() == nonce + 1


async def test_lease_without_a_manifest_by_the_deadline_is_closed_and_paid_for_what_it_ran(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    order = await marketplace.order()
    await provider.bid(order.order_id, PRICE)
    lease_id = await marketplace.match(order)
    start = market.lease(lease_id)["startBlock"]
    facts = await read_chain_facts(devnet.marketplace, lease_id, escrow=True)
    assert facts is not None
    taken_in = datetime.now(UTC)
    waiting = LeaseFacts(lease_id, manifest_received=False, created_at=taken_in)
    deadline = timedelta(seconds=30)  # set short, as a provider may
    assert (
        close_reason(waiting, facts, taken_in + timedelta(seconds=29), manifest_deadline=deadline)
        is None
    )
    decision = close_reason(waiting, facts, taken_in + deadline, manifest_deadline=deadline)
    assert decision is not None
    assert (decision.reason, decision.send_close) == (CloseReason.MANIFEST_DEADLINE, True)

    recorded: list[CloseIntent] = []

    async def record(intent: CloseIntent) -> None:
        recorded.append(intent)

    outcome = await close_lease(
        devnet.marketplace, provider.tx, lease_id, decision.reason, before_send=record
    )
    assert outcome.sent
    assert [i.reason for i in recorded] == [CloseReason.MANIFEST_DEADLINE]
    # Closing settles the blocks the lease ran; the rest of the escrow goes back to the tenant.
    assert market.lease(lease_id)["state"] == 1  # TERMINATED
    assert outcome.block_number is not None
    ran = outcome.block_number - start
    earned = await read_earnings(devnet.marketplace, provider.address, _token(market))
    assert earned.balance == PRICE * ran
    # Once closed on chain, the decision is the recorded one and sends nothing more.
    after = await read_chain_facts(devnet.marketplace, lease_id)
    assert after is not None
    closing = LeaseFacts(lease_id, False, taken_in, recorded_reason=CloseReason.MANIFEST_DEADLINE)
    final = close_reason(closing, after, taken_in + deadline, manifest_deadline=deadline)
    assert final is not None
    assert (final.reason, final.send_close) == (CloseReason.MANIFEST_DEADLINE, False)
