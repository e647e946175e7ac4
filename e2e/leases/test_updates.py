"""A tenant's order update of a lease of ours: a longer lease on the same resources is
accepted once (the lease restarts on the chain, the GpuLease only gets new terms); one that
asks for other resources is declined with the reason, and nothing is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from e2e.chain.conftest import MODE_PROVIDER, Market
from e2e.leases.conftest import Marketplace, Provider
from e2e.leases.test_leases import MAX_PRICE, PRICE
from gpu_provider.chain.events import Checkpoint, EventStream
from gpu_provider.chain.leases import LeaseToCreate
from gpu_provider.chain.leaseupdates import LeaseUpdates, UpdateHandled
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.market.updates import UpdateDecision
from gpu_provider.render import build_terms_patch

pytestmark = pytest.mark.e2e


class Sink:
    """What the cluster would be told."""

    def __init__(self) -> None:
        self.updated: list[LeaseToCreate] = []
        self.declined: list[tuple[int, UpdateDecision]] = []

    async def lease_updated(self, record: LeaseToCreate) -> None:
        self.updated.append(record)

    async def update_declined(self, lease_id: int, decision: UpdateDecision) -> None:
        self.declined.append((lease_id, decision))


def _request_update(market: Market, lease_id: int, blocks: int, spec: str) -> None:
    """The tenant asks for new terms (`updateInitialOrder`), as Spheron's SDK does."""
    order = market.orders.functions.getOrderById(lease_id).call()
    details = (MAX_PRICE, blocks, order[3], spec, 1, MODE_PROVIDER, [0, 1, 2])
    market.send(market.orders.functions.updateInitialOrder(lease_id, details), market.people.tenant)


async def _handle_new_events(
    updates: LeaseUpdates, devnet: DevnetChain, start: int, head: int
) -> list[UpdateHandled]:
    stream = EventStream(
        devnet.w3,
        updates.sources(),
        Checkpoint.start_at(start),
        confirmations=0,
        poll_interval=0.05,
    )
    handled = []
    try:
        async with asyncio.timeout(20):
            while not (
                stream.checkpoint.block_number >= head and stream.checkpoint.log_index is None
            ):
                delivery = await anext(stream)
                if delivery.event is not None:
                    result = await updates.handle(delivery.event)
                    if result is not None:
                        handled.append(result)
    finally:
        await stream.aclose()
    return handled


async def test_duration_only_update_is_accepted_once_and_other_resources_are_declined(
    market: Market, devnet: DevnetChain, provider: Provider, marketplace: Marketplace
) -> None:
    order = await marketplace.order()
    await provider.bid(order.order_id, PRICE)
    lease_id = await marketplace.match(order)
    spec = market.orders.functions.getOrderById(lease_id).call()[6][0]
    sink = Sink()
    updates = LeaseUpdates(devnet.marketplace, provider.tx, provider.store, provider.address, sink)

    start = market.block() + 1
    _request_update(market, lease_id, 3600, spec)
    nonce = provider.nonce()
    (handled,) = await _handle_new_events(updates, devnet, start, market.block())
    assert (handled.decision.accept, handled.decision.reason) == (True, "DurationOnly")
    assert provider.nonce() == nonce + 1
    lease: dict[str, Any] = market.lease(lease_id)
    (record,) = sink.updated
    assert record.order.num_of_blocks == 3600
    assert record.lease.start_block == lease["startBlock"] > order.block
    assert record.lease.accepted_price == PRICE  # the lease's price, not the update's max
    patch = build_terms_patch(record.lease, record.order)
    assert patch["spec"]["numOfBlocks"] == 3600
    assert "resources" not in patch["spec"]  # nothing the workload is built from changes

    # The same event again (a restart before the checkpoint was saved): nothing new is sent.
    await provider.restart()
    updates = LeaseUpdates(devnet.marketplace, provider.tx, provider.store, provider.address, sink)
    again = await _handle_new_events(updates, devnet, start, market.block())
    assert [h.decision.accept for h in again] == [True]
    assert provider.nonce() == nonce + 1

    # An update asking for two GPUs per replica is declined, with the reason.
    start = market.block() + 1
    two_gpus = spec.replace("v:>=80}],u:1}", "v:>=80}],u:2}")
    assert two_gpus != spec
    _request_update(market, lease_id, 3600, two_gpus)
    (declined,) = await _handle_new_events(updates, devnet, start, market.block())
    assert (declined.decision.accept, declined.decision.reason) == (False, "ResourcesChanged")
    assert sink.declined == [(lease_id, declined.decision)]
    assert provider.nonce() == nonce + 1
