"""Tenants' order updates (`OrderUpdateRequested`) for leases of ours: accepted once when
they still fit (`market.updates.update_decision`: duration-only), declined with a reason
otherwise.

The event names the tenant, not the provider, so each one is checked against `leases(id)`:
updates of other providers' leases are ignored. An accepted update is sent under a key
naming the request's event (`leasetx.update_key`), so a restart that handles the event again
resumes the journaled `acceptUpdate` instead of sending a second one; the chain's answer
after it (the lease restarted at the acceptance block, the order's new `numOfBlocks`) goes
to the sink, which patches the GpuLease's terms (`render.build_terms_patch`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Protocol

from eth_utils.address import to_checksum_address

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import TransactionReverted
from gpu_provider.chain.intents import IntentStore
from gpu_provider.chain.leases import LeaseToCreate, read_lease, read_order, read_pending_update
from gpu_provider.chain.leasetx import accept_update, update_key
from gpu_provider.chain.records import ChainEvent, EventSource
from gpu_provider.chain.tx import TxManager
from gpu_provider.market.updates import UpdateDecision, update_decision

__all__ = ["UPDATE_EVENT", "LeaseUpdateSink", "LeaseUpdates", "UpdateHandled"]

log = logging.getLogger(__name__)

UPDATE_EVENT: Final = "OrderUpdateRequested"


class LeaseUpdateSink(Protocol):
    """The cluster side: the GpuLease's terms after an accepted update, or why an update
    was declined (an Event on the GpuLease). Raise only to be called again."""

    async def lease_updated(self, record: LeaseToCreate) -> None: ...

    async def update_declined(self, lease_id: int, decision: UpdateDecision) -> None: ...


@dataclass(frozen=True, slots=True)
class UpdateHandled:
    lease_id: int
    decision: UpdateDecision
    tx_hash: str | None = None
    """The `acceptUpdate` transaction, when accepted."""


class LeaseUpdates:
    """`OrderUpdateRequested` of our leases → `acceptUpdate` (or a declined reason)."""

    def __init__(
        self,
        contracts: Contracts,
        tx: TxManager,
        store: IntentStore,
        provider: str,
        sink: LeaseUpdateSink,
        *,
        max_lease_blocks: int | None = None,
    ) -> None:
        self.contracts = contracts
        self.tx = tx
        self.store = store
        self.provider = to_checksum_address(provider)
        self.sink = sink
        self.max_lease_blocks = max_lease_blocks

    def sources(self) -> list[EventSource]:
        return [self.contracts.event_source("OrderRequest", [UPDATE_EVENT])]

    async def handle(self, event: ChainEvent) -> UpdateHandled | None:
        """Decide (and accept) the update `event` requests; None when it is not for a lease
        of ours, or the tenant's request is no longer pending."""
        if event.name != UPDATE_EVENT:
            return None
        lease_id = int(event.args["_orderId"])
        lease = await read_lease(self.contracts, lease_id)
        if lease is None or lease.provider != self.provider or not lease.active:
            return None
        key = update_key(lease_id, event.block_number, event.log_index)
        journaled = await self.store.get(key) is not None
        update = await read_pending_update(self.contracts, lease_id)
        if update is None and not journaled:
            log.info("lease %d: the update request is no longer pending", lease_id)
            return None
        if update is not None and not journaled:
            current = await read_order(self.contracts, lease_id)
            decision = update_decision(
                lease, current, update, max_lease_blocks=self.max_lease_blocks
            )
            if not decision.accept:
                log.info("lease %d: update declined (%s)", lease_id, decision.reason)
                await self.sink.update_declined(lease_id, decision)
                return UpdateHandled(lease_id, decision)
        else:
            decision = UpdateDecision(True, "DurationOnly", "accepted before a restart")
        try:
            outcome = await accept_update(self.contracts, self.tx, lease_id, key=key)
        except TransactionReverted as error:
            # Raising would stop the event stream at this event for ever: a refusal (the
            # tenant replaced or withdrew the request meanwhile) is reported instead.
            log.warning("lease %d: acceptUpdate refused: %s", lease_id, error)
            refused = UpdateDecision(False, error.error_name or "AcceptRefused", str(error))
            await self.sink.update_declined(lease_id, refused)
            return UpdateHandled(lease_id, refused)
        after = await read_lease(self.contracts, lease_id)
        if after is not None:
            order = await read_order(self.contracts, lease_id)
            block = outcome.block_number
            await self.sink.lease_updated(LeaseToCreate(after, order, block, event=event))
        return UpdateHandled(lease_id, decision, outcome.tx_hash)
