"""Leases matched to this provider: reading them, taking them in, recovering them at start.

Reads use named getters only: `ComputeLease.leases(id)` (Spheron's ABI names every field,
`providerAddress` before `tenantAddress`; `getLeaseDetails` returns the two addresses unnamed,
so it is never used), `ComputeLease.getProviderLeases(provider)` (active ids, all ids) and
`OrderRequest.getOrderById(id)`. The reads of one record are pinned to one block.

`LeaseIntake` turns the confirmed `LeaseCreated` and `OrderMatched` events for our address
into `LeaseToCreate` records handed to a `LeaseSink`, the cluster side (the operator
implements it with the Kubernetes API: render the GpuLease with
`gpu_provider.render.build_gpulease`, create it if absent, write its status). The caller
persists the stream's checkpoint after `handle` returns, so a restart re-delivers at most
the event being handled, and the sink's create-if-absent absorbs that one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from eth_utils.address import to_checksum_address
from web3.exceptions import ContractLogicError
from web3.types import BlockIdentifier

from gpu_provider.api.v1alpha1.gpulease import Placement
from gpu_provider.chain.contracts import ContractName, Contracts
from gpu_provider.chain.errors import ChainError
from gpu_provider.chain.records import ChainEvent, Checkpoint, Delivery, EventSource, arg_equals
from gpu_provider.market.closing import ChainFacts
from gpu_provider.market.codec import decode
from gpu_provider.market.errors import OrderSpecError
from gpu_provider.market.leases import ChainLease, ChainOrder, LeaseState, OrderState

__all__ = [
    "INTAKE_EVENTS",
    "InMemoryLeaseSink",
    "LeaseIntake",
    "LeaseNotVisible",
    "LeaseSink",
    "LeaseToCreate",
    "Placements",
    "read_active_lease_ids",
    "read_chain_facts",
    "read_lease",
    "read_order",
    "read_pending_update",
    "recover_leases",
]

log = logging.getLogger(__name__)

INTAKE_EVENTS: Final[tuple[tuple[ContractName, str, str], ...]] = (
    ("ComputeLease", "LeaseCreated", "leaseId"),
    ("Bid", "OrderMatched", "orderId"),
)
"""(contract, event, argument holding the lease id): Spheron's SDK uses the order id as the
lease id, and both events name the provider in `providerAddress`."""


class LeaseNotVisible(ChainError):
    """An event announced a lease that the node does not show (yet): a node behind a load
    balancer lagging the one that served the logs. Retry; never conclude it is absent."""


@dataclass(frozen=True, slots=True)
class LeaseToCreate:
    """A lease of ours and its order as the chain shows them, for a GpuLease to exist.

    `order.spec` is None when the spec did not decode (`order.spec_error` says why): the
    sink still records such a lease (an Event, a log line) so it is never silently lost.
    `block` is the block the records were read at; `event` the event that announced the
    lease (None when found by `recover_leases`)."""

    lease: ChainLease
    order: ChainOrder
    block: int
    placement: Placement | None = None
    event: ChainEvent | None = None

    @property
    def lease_id(self) -> int:
        return self.lease.lease_id


class LeaseSink(Protocol):
    """The cluster side of intake: makes sure lease `record.lease_id` has its GpuLease.

    `ensure_lease` creates it if absent (an existing one is left as it is: 409 is success)
    and returns whether it created it. It raises only when it should be called again (the
    API server unreachable): the event is then not checkpointed. A lease that cannot be a
    GpuLease (`render.LeaseNotRepresentable`) must be recorded and not raised, or intake
    would stop at it forever.
    """

    async def ensure_lease(self, record: LeaseToCreate) -> bool: ...


class InMemoryLeaseSink:
    """A `LeaseSink` over a dict (tests and tools): what the cluster would hold."""

    def __init__(self) -> None:
        self.leases: dict[int, LeaseToCreate] = {}
        self.calls: list[int] = []

    async def ensure_lease(self, record: LeaseToCreate) -> bool:
        self.calls.append(record.lease_id)
        if record.lease_id in self.leases:
            return False
        self.leases[record.lease_id] = record
        return True


Placements = Callable[[int], Placement | None]
"""The placement reserved for the bid on an order (from the bid engine), by order id."""


def _no_placement(_order_id: int) -> Placement | None:
    return None


# -- reads ---------------------------------------------------------------------------------


def _lease(raw: Any) -> ChainLease:
    (
        lease_id,
        fizz_id,
        request_id,
        price,
        provider,
        tenant,
        start_block,
        start_time,
        end,
        state,
    ) = raw
    return ChainLease(
        lease_id=int(lease_id),
        fizz_id=int(fizz_id),
        request_id=int(request_id),
        accepted_price=int(price),
        provider=to_checksum_address(provider),
        tenant=to_checksum_address(tenant),
        start_block=int(start_block),
        start_time=int(start_time),
        end_time=int(end),
        state=LeaseState(int(state)),
    )


def _order(raw: Any) -> ChainOrder:
    order_id, max_price, blocks, token, creator, state, (text, version, mode, tiers) = raw
    spec, error = None, None
    try:
        spec = decode(str(text))
    except OrderSpecError as exc:
        error = str(exc)
    return ChainOrder(
        order_id=int(order_id),
        max_price=int(max_price),
        num_of_blocks=int(blocks),
        token=to_checksum_address(token),
        creator=to_checksum_address(creator),
        state=OrderState(int(state)),
        spec_text=str(text),
        version=int(version),
        mode=int(mode),
        tiers=tuple(int(t) + 1 for t in tiers),
        spec=spec,
        spec_error=error,
    )


async def read_lease(
    contracts: Contracts, lease_id: int, *, block: BlockIdentifier = "latest"
) -> ChainLease | None:
    """`leases(id)`; None when no lease has that id (the getter returns zeros)."""
    raw = await contracts.compute_lease.functions.leases(lease_id).call(block_identifier=block)
    if int(str(raw[5]), 16) == 0:
        return None
    return _lease(raw)


async def read_order(
    contracts: Contracts, order_id: int, *, block: BlockIdentifier = "latest"
) -> ChainOrder:
    """`getOrderById(id)` with its spec decoded; web3's `ContractLogicError` if none."""
    raw = await contracts.order_request.functions.getOrderById(order_id).call(
        block_identifier=block
    )
    return _order(raw)


async def read_pending_update(
    contracts: Contracts, order_id: int, *, block: BlockIdentifier = "latest"
) -> ChainOrder | None:
    """The tenant's requested update of order `order_id` (`getPendingOrderById`), or None
    when the contract says there is none (it reverts `InvalidOrderState`)."""
    try:
        raw = await contracts.order_request.functions.getPendingOrderById(order_id).call(
            block_identifier=block
        )
    except ContractLogicError:
        return None
    return _order(raw)


async def read_active_lease_ids(
    contracts: Contracts, provider: str, *, block: BlockIdentifier = "latest"
) -> list[int]:
    """Ids of the provider's active leases (`getProviderLeases`' first list), oldest first."""
    active, _all = await contracts.compute_lease.functions.getProviderLeases(
        to_checksum_address(provider)
    ).call(block_identifier=block)
    return [int(lease_id) for lease_id in active]


async def _record(
    contracts: Contracts, lease_id: int, block: int, placements: Placements
) -> LeaseToCreate | None:
    lease = await read_lease(contracts, lease_id, block=block)
    if lease is None:
        return None
    order = await read_order(contracts, lease.order_id, block=block)
    return LeaseToCreate(lease, order, block, placements(lease.order_id))


async def recover_leases(
    contracts: Contracts, provider: str, *, placements: Placements = _no_placement
) -> list[LeaseToCreate]:
    """Every lease active on-chain for `provider`, with its order, read at one block: at
    start the caller makes sure each has its GpuLease (create-if-absent)."""
    block = await contracts.w3.eth.block_number
    records = []
    for lease_id in await read_active_lease_ids(contracts, provider, block=block):
        record = await _record(contracts, lease_id, block, placements)
        if record is None:  # listed but absent: a node answering inconsistently
            raise LeaseNotVisible(f"lease {lease_id} is listed as active but reads as absent")
        records.append(record)
    return records


async def read_chain_facts(
    contracts: Contracts, lease_id: int, *, escrow: bool = False
) -> ChainFacts | None:
    """What `market.closing.close_reason` needs from the chain, read at one block; with
    `escrow`, the tenant's locked balance too. None when no lease has this id. RPC
    failures raise: the caller then has no facts, which never closes a lease."""
    block = await contracts.w3.eth.block_number
    lease = await read_lease(contracts, lease_id, block=block)
    if lease is None:
        return None
    order = await read_order(contracts, lease.order_id, block=block)
    locked = None
    if escrow:
        locked, _unlocked = await contracts.escrow_user.functions.getUserData(
            lease.tenant, order.token, False
        ).call(block_identifier=block)
    return ChainFacts(
        head=block,
        lease=lease,
        num_of_blocks=order.num_of_blocks,
        tenant_locked=None if locked is None else int(locked),
    )


# -- intake --------------------------------------------------------------------------------


class LeaseIntake:
    """Confirmed lease events for `provider` → `LeaseToCreate` → `sink.ensure_lease`."""

    def __init__(
        self,
        contracts: Contracts,
        provider: str,
        sink: LeaseSink,
        *,
        placements: Placements = _no_placement,
    ) -> None:
        self.contracts = contracts
        self.provider = to_checksum_address(provider)
        self.sink = sink
        self.placements = placements
        # Both events of one match name the same lease: the second is not handled again.
        self._taken_in: set[int] = set()

    def sources(self) -> list[EventSource]:
        """What the event stream must follow for intake: our `LeaseCreated`/`OrderMatched`."""
        return [
            self.contracts.event_source(
                contract, [event], {event: arg_equals("providerAddress", self.provider)}
            )
            for contract, event, _ in INTAKE_EVENTS
        ]

    def lease_id_of(self, event: ChainEvent) -> int | None:
        """The lease an intake event of ours announces; None for any other event."""
        for _contract, name, argument in INTAKE_EVENTS:
            if event.name == name:
                provider = str(event.args.get("providerAddress", ""))
                if provider.lower() == self.provider.lower():
                    return int(event.args[argument])
        return None

    async def handle(self, event: ChainEvent) -> LeaseToCreate | None:
        """Take in the lease `event` announces (once per lease and run); None when the event
        is not one of ours or its lease was already taken in. Raises to be called again."""
        lease_id = self.lease_id_of(event)
        if lease_id is None or lease_id in self._taken_in:
            return None
        block = await self.contracts.w3.eth.block_number
        record = await _record(self.contracts, lease_id, block, self.placements)
        if record is None:
            raise LeaseNotVisible(
                f"{event.name} in block {event.block_number} announced lease {lease_id}, "
                f"which the node does not show at block {block}; retrying"
            )
        record = LeaseToCreate(record.lease, record.order, block, record.placement, event)
        if record.lease.provider != self.provider:
            log.warning("lease %d belongs to %s, not us: ignored", lease_id, record.lease.provider)
            return None
        created = await self.sink.ensure_lease(record)
        self._taken_in.add(lease_id)
        log.info("lease %d %s", lease_id, "taken in" if created else "already in the cluster")
        return record

    async def recover(self) -> list[LeaseToCreate]:
        """Start-up recovery: every active lease of ours gets its GpuLease (if absent)."""
        records = await recover_leases(self.contracts, self.provider, placements=self.placements)
        for record in records:
            await self.sink.ensure_lease(record)
            self._taken_in.add(record.lease_id)
        return records

    async def follow(
        self,
        deliveries: AsyncIterator[Delivery],
        save: Callable[[Checkpoint], Awaitable[None]],
    ) -> None:
        """Handle deliveries for ever, saving each checkpoint once its event is handled."""
        async for delivery in deliveries:
            if delivery.event is not None:
                await self.handle(delivery.event)
            await save(delivery.checkpoint)
