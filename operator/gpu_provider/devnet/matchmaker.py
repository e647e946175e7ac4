"""The devnet matchmaker: every order goes to its cheapest eligible bid once its window closes.

On Spheron an access-controlled matchmaker (an EigenLayer AVS) does this; on the devnet one
process holding MATCHMAKER_ROLE does. Per poll it:

1. takes new `OrderCreated` and `BidPlaced` events from the chain layer's `EventStream`
   (bounded `eth_getLogs` ranges, reorg-checked; no confirmations needed on anvil), from an
   in-memory checkpoint;
2. for each order still OPEN whose bid window has closed (block `created + bidWindow`, the
   last that accepts bids, is mined), or that has a bid already when `eager`, reads its bids
   and the bidders' registry facts;
3. picks the winner with `select_bid` (pure, unit-tested) and calls
   `Bid.matchOrder(orderId, provider, bidPrice)` through the `TxManager` under the key
   `match:<orderId>`, which starts the lease.

Every decision is logged with the reason each losing bid lost. An order whose window closed
with no eligible bid is left OPEN (the tenant can cancel it) and forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from eth_account.signers.local import LocalAccount

from gpu_provider.chain.contracts import load_abi
from gpu_provider.chain.events import Checkpoint, Delivery, EventSource, EventStream
from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.following import catch_up, poll_until_cancelled
from gpu_provider.devnet.session import DevnetChain
from gpu_provider.market.pricing import base_units_per_block_to_usd_per_hour

__all__ = [
    "DEFAULT_LOG_RANGE",
    "BidState",
    "Decision",
    "Matchmaker",
    "OrderBid",
    "ProviderFacts",
    "Rejection",
    "Selection",
    "select_bid",
]

log = logging.getLogger(__name__)

DEFAULT_LOG_RANGE: Final = 1_000
"""Most blocks asked for in one eth_getLogs call."""
MAX_MATCH_ATTEMPTS: Final = 3
ORDER_OPEN: Final = 0
_ORDER_STATES: Final = {0: "OPEN", 1: "PROVISIONED", 2: "CLOSED", 3: "MATCHED"}


class BidState(IntEnum):
    """`Bid.BidState`."""

    PENDING = 0
    ACCEPTED = 1
    REJECTED = 2


@dataclass(frozen=True, slots=True)
class OrderBid:
    """One bid on an order. `index` is its position in `getAllBidsForOrder`: mined order."""

    index: int
    provider: str
    price: int
    state: BidState = BidState.PENDING


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """What the registry says about a bidder when the matchmaker decides."""

    active: bool
    tier: int
    """Trust tier 1 (most trusted) .. 7."""


@dataclass(frozen=True, slots=True)
class Rejection:
    bid: OrderBid
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    winner: OrderBid | None
    rejected: tuple[Rejection, ...]


def select_bid(
    bids: Sequence[OrderBid],
    *,
    max_price: int,
    tiers: Collection[int],
    providers: Mapping[str, ProviderFacts],
) -> Selection:
    """The cheapest eligible bid (ties: the earliest), and why every other bid lost.

    Eligible: still Pending, a price above zero and at most `max_price`, a provider that is
    Active in the registry and, when the order names trust tiers (1..7), in one of them.
    """
    rejected: list[Rejection] = []
    eligible: list[OrderBid] = []
    for bid in bids:
        reason = _ineligible(
            bid, max_price=max_price, tiers=tiers, facts=providers.get(bid.provider)
        )
        if reason is None:
            eligible.append(bid)
        else:
            rejected.append(Rejection(bid, reason))
    if not eligible:
        return Selection(winner=None, rejected=tuple(rejected))
    winner = min(eligible, key=lambda bid: (bid.price, bid.index))
    for bid in eligible:
        if bid is winner:
            continue
        if bid.price > winner.price:
            reason = f"outbid: {bid.price} per block > the winning {winner.price}"
        else:
            reason = f"same price as bid #{winner.index}, which came first"
        rejected.append(Rejection(bid, reason))
    rejected.sort(key=lambda rejection: rejection.bid.index)
    return Selection(winner=winner, rejected=tuple(rejected))


def _ineligible(
    bid: OrderBid, *, max_price: int, tiers: Collection[int], facts: ProviderFacts | None
) -> str | None:
    if bid.state is not BidState.PENDING:
        return f"the bid is already {bid.state.name.lower()}"
    if bid.price <= 0:
        return "the bid price is zero"
    if bid.price > max_price:
        return f"the bid {bid.price} per block exceeds the order's max price {max_price}"
    if facts is None:
        return "the provider is not in the provider registry"
    if not facts.active:
        return "the provider is not Active (maintenance, suspended or deactivated)"
    if tiers and facts.tier not in tiers:
        allowed = ", ".join(str(tier) for tier in sorted(tiers))
        return f"the provider's trust tier {facts.tier} is not one the order accepts ({allowed})"
    return None


@dataclass
class _PendingOrder:
    order_id: int
    created_block: int
    bids_seen: int = 0
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What the matchmaker did with one order in one poll."""

    order_id: int
    selection: Selection
    matched: bool
    lease_id: int | None = None


@dataclass
class Matchmaker:
    """Follows orders and bids on the chain and matches orders; `poll_once` is one pass."""

    chain: DevnetChain
    account: LocalAccount
    eager: bool = False
    from_block: int | None = None
    log_range: int = DEFAULT_LOG_RANGE
    poll_interval: float = 0.5
    _stream: EventStream = field(init=False)
    _pending: dict[int, _PendingOrder] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.log_range < 1:
            raise ValueError("log_range must be at least one block")
        state = self.chain.state
        start = state.deploy_block if self.from_block is None else self.from_block
        self._stream = EventStream(
            self.chain.w3,
            [
                EventSource(
                    state.address("OrderRequest"), load_abi("OrderRequest"), ["OrderCreated"]
                ),
                EventSource(state.address("Bid"), load_abi("Bid"), ["BidPlaced"]),
            ],
            Checkpoint.start_at(max(0, start)),
            confirmations=0,
            log_range=self.log_range,
            poll_interval=self.poll_interval,
        )

    @property
    def checkpoint(self) -> int:
        """The first block not yet scanned for orders."""
        done = self._stream.checkpoint
        return done.block_number + (1 if done.log_index is None else 0)

    @property
    def pending_orders(self) -> tuple[int, ...]:
        return tuple(sorted(self._pending))

    async def poll_once(self) -> list[Decision]:
        """Take in new orders and bids, then decide every order that is ready."""
        head = await self.chain.head()
        await self._catch_up(head)
        window = int(await self.chain.read("Bid", "bidWindow", what="bid window"))
        decisions = []
        for order_id in sorted(self._pending):
            decision = await self._consider(self._pending[order_id], head, window)
            if decision is not None:
                decisions.append(decision)
        return decisions

    async def run(self) -> None:
        """Poll until cancelled; an RPC outage is logged and waited out."""
        log.info(
            "matchmaker %s watching orders from block %d (%s)",
            self.account.address,
            self.checkpoint,
            "eager: match on the first eligible bid" if self.eager else "match when windows close",
        )
        await poll_until_cancelled(self.poll_once, self._stream, self.poll_interval, log)

    async def _catch_up(self, head: int) -> None:
        await catch_up(self._stream, head, self._take)

    def _take(self, delivery: Delivery) -> None:
        event = delivery.event
        if event is None:
            return
        args = event.args
        order_id = int(args["orderId"])
        if event.name == "OrderCreated":
            if order_id not in self._pending:
                self._pending[order_id] = _PendingOrder(order_id, event.block_number)
                log.info(
                    "order %d created in block %d by %s (max price %d per block)",
                    order_id,
                    event.block_number,
                    args["creator"],
                    args["maxPrice"],
                )
        elif order_id in self._pending:
            self._pending[order_id].bids_seen += 1

    async def _consider(self, pending: _PendingOrder, head: int, window: int) -> Decision | None:
        order_id = pending.order_id
        # Bids are accepted up to and including block created + window: once it is mined,
        # every bid the order will ever get is visible.
        closed = head >= pending.created_block + window
        if not closed and not (self.eager and pending.bids_seen):
            return None
        order = await self.chain.read(
            "OrderRequest", "getOrderById", order_id, what=f"order {order_id}"
        )
        state = int(order[5])
        if state != ORDER_OPEN:
            log.info("order %d is %s: nothing to match", order_id, _ORDER_STATES.get(state, state))
            del self._pending[order_id]
            return None
        max_price = int(order[1])
        tiers = {int(tier) + 1 for tier in order[6][3]}
        raw = await self.chain.read(
            "Bid", "getAllBidsForOrder", order_id, what=f"bids of order {order_id}"
        )
        bids = _bids(raw)
        selection = select_bid(
            bids,
            max_price=max_price,
            tiers=tiers,
            providers=await self._facts(bid.provider for bid in bids),
        )
        if selection.winner is None:
            if not closed:
                return None  # eager, but nothing eligible yet: wait for the window
            self._log_rejections(order_id, selection)
            log.warning(
                "order %d: the bid window closed with no eligible bid (%d bids); "
                "it stays OPEN until the tenant cancels it",
                order_id,
                len(bids),
            )
            del self._pending[order_id]
            return Decision(order_id=order_id, selection=selection, matched=False)
        return await self._match(pending, selection)

    async def _match(self, pending: _PendingOrder, selection: Selection) -> Decision:
        winner = selection.winner
        assert winner is not None
        order_id = pending.order_id
        self._log_rejections(order_id, selection)
        try:
            mined = await self.chain.call(
                self.account,
                f"match:{order_id}:{pending.attempts}",
                "Bid",
                "matchOrder",
                order_id,
                winner.provider,
                winner.price,
                what=f"matchOrder({order_id})",
            )
        except DevnetError as error:
            pending.attempts += 1
            if pending.attempts >= MAX_MATCH_ATTEMPTS:
                del self._pending[order_id]
            log.error(
                "order %d: matching failed (attempt %d): %s", order_id, pending.attempts, error
            )
            return Decision(order_id=order_id, selection=selection, matched=False)
        del self._pending[order_id]
        created = self.chain.events(mined, "ComputeLease", "LeaseCreated")
        lease_id = int(created[0]["leaseId"]) if created else order_id
        usd = base_units_per_block_to_usd_per_hour(winner.price, self.chain.state.token_terms())
        log.info(
            "order %d matched to %s at %d per block (%s USD/h): lease %d starts in block %d",
            order_id,
            winner.provider,
            winner.price,
            usd,
            lease_id,
            mined.block_number,
        )
        return Decision(order_id=order_id, selection=selection, matched=True, lease_id=lease_id)

    async def _facts(self, providers: Iterable[str]) -> dict[str, ProviderFacts]:
        facts: dict[str, ProviderFacts] = {}
        for provider in set(providers):
            try:
                tier = await self.chain.read(
                    "ProviderRegistry", "getProviderTrustTier", provider, what="tier"
                )
            except DevnetError:
                continue  # not registered: select_bid says so
            active = await self.chain.read(
                "ProviderRegistry", "isActiveProvider", provider, what="status"
            )
            facts[provider] = ProviderFacts(active=bool(active), tier=int(tier) + 1)
        return facts

    def _log_rejections(self, order_id: int, selection: Selection) -> None:
        for rejection in selection.rejected:
            log.info(
                "order %d: bid #%d by %s at %d per block rejected: %s",
                order_id,
                rejection.bid.index,
                rejection.bid.provider,
                rejection.bid.price,
                rejection.reason,
            )


def _bids(raw: Iterable[Any]) -> list[OrderBid]:
    """`getAllBidsForOrder` tuples (requestId, provider, bidPrice, fizzId, timestamp, state)."""
    return [
        OrderBid(index=index, provider=str(entry[1]), price=int(entry[2]), state=BidState(entry[5]))
        for index, entry in enumerate(raw)
    ]
