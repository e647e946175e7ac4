"""The devnet matchmaker: every order goes to its cheapest eligible bid once its window closes.

On Spheron an access-controlled matchmaker (an EigenLayer AVS) does this; on the devnet one
process holding MATCHMAKER_ROLE does. Per poll it:

1. reads new `OrderCreated` events since its in-memory checkpoint (in bounded block ranges,
   so a long-running chain never asks for one huge `eth_getLogs`);
2. for each order still OPEN whose bid window has closed (block `created + bidWindow`, the
   last that accepts bids, is mined), or that has a bid already when `eager`, reads its bids
   and the bidders' registry facts;
3. picks the winner with `select_bid` (pure, unit-tested) and calls
   `Bid.matchOrder(orderId, provider, bidPrice)`, which starts the lease.

Every decision is logged with the reason each losing bid lost. An order whose window closed
with no eligible bid is left OPEN (the tenant can cancel it) and forgotten.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

from gpu_provider.devnet.client import DevnetClient
from gpu_provider.devnet.errors import DevnetError
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
    """Polls the chain and matches orders; `poll_once` is one pass, `run` loops."""

    client: DevnetClient
    account: LocalAccount
    eager: bool = False
    from_block: int | None = None
    log_range: int = DEFAULT_LOG_RANGE
    _next_block: int = field(init=False)
    _pending: dict[int, _PendingOrder] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.log_range < 1:
            raise ValueError("log_range must be at least one block")
        start = self.client.state.deploy_block if self.from_block is None else self.from_block
        self._next_block = max(0, start)

    @property
    def checkpoint(self) -> int:
        """The first block not yet scanned for orders."""
        return self._next_block

    @property
    def pending_orders(self) -> tuple[int, ...]:
        return tuple(sorted(self._pending))

    def poll_once(self) -> list[Decision]:
        """Scan for new orders, then decide every order that is ready; return the decisions."""
        head = self.client.head()
        self._scan(head)
        window = int(self.client.contract("Bid").functions.bidWindow().call())
        decisions = []
        for order_id in sorted(self._pending):
            decision = self._consider(self._pending[order_id], head, window)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def run(self, poll_interval: float, stop: threading.Event | None = None) -> None:
        """Poll until `stop` is set (or forever); an RPC outage is logged and waited out."""
        stop = stop or threading.Event()
        log.info(
            "matchmaker %s watching orders from block %d (%s)",
            self.account.address,
            self._next_block,
            "eager: match on the first eligible bid" if self.eager else "match when windows close",
        )
        while not stop.is_set():
            try:
                self.poll_once()
            except OSError as error:
                log.warning("RPC unavailable (%s); retrying in %.0f s", error, poll_interval)
            stop.wait(poll_interval)

    def _scan(self, head: int) -> None:
        events = self.client.contract("OrderRequest").events.OrderCreated
        for start in range(self._next_block, head + 1, self.log_range):
            end = min(start + self.log_range - 1, head)
            for entry in events.get_logs(from_block=start, to_block=end):
                order_id = int(entry["args"]["orderId"])
                if order_id not in self._pending:
                    self._pending[order_id] = _PendingOrder(order_id, int(entry["blockNumber"]))
                    log.info(
                        "order %d created in block %d by %s (max price %d per block)",
                        order_id,
                        entry["blockNumber"],
                        entry["args"]["creator"],
                        entry["args"]["maxPrice"],
                    )
            self._next_block = end + 1

    def _consider(self, pending: _PendingOrder, head: int, window: int) -> Decision | None:
        order_id = pending.order_id
        order = self.client.contract("OrderRequest").functions.getOrderById(order_id).call()
        state = int(order[5])
        if state != ORDER_OPEN:
            log.info("order %d is %s: nothing to match", order_id, _ORDER_STATES.get(state, state))
            del self._pending[order_id]
            return None
        max_price = int(order[1])
        tiers = {int(tier) + 1 for tier in order[6][3]}
        # Bids are accepted up to and including block created + window: once it is mined,
        # every bid the order will ever get is visible.
        closed = head >= pending.created_block + window
        bids = _bids(self.client.contract("Bid").functions.getAllBidsForOrder(order_id).call())
        if not closed and not (self.eager and bids):
            return None
        selection = select_bid(
            bids,
            max_price=max_price,
            tiers=tiers,
            providers=self._facts(bid.provider for bid in bids),
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
        return self._match(pending, selection)

    def _match(self, pending: _PendingOrder, selection: Selection) -> Decision:
        winner = selection.winner
        assert winner is not None
        order_id = pending.order_id
        self._log_rejections(order_id, selection)
        call = self.client.contract("Bid").functions.matchOrder(
            order_id, winner.provider, winner.price
        )
        try:
            receipt = self.client.send(call, self.account, f"matchOrder({order_id})")
        except DevnetError as error:
            pending.attempts += 1
            if pending.attempts >= MAX_MATCH_ATTEMPTS:
                del self._pending[order_id]
            log.error(
                "order %d: matching failed (attempt %d): %s", order_id, pending.attempts, error
            )
            return Decision(order_id=order_id, selection=selection, matched=False)
        del self._pending[order_id]
        created = self.client.events(receipt, "ComputeLease", "LeaseCreated")
        lease_id = int(created[0]["leaseId"]) if created else order_id
        usd = base_units_per_block_to_usd_per_hour(winner.price, self.client.state.token_terms())
        log.info(
            "order %d matched to %s at %d per block (%s USD/h): lease %d starts in block %d",
            order_id,
            winner.provider,
            winner.price,
            usd,
            lease_id,
            receipt["blockNumber"],
        )
        return Decision(order_id=order_id, selection=selection, matched=True, lease_id=lease_id)

    def _facts(self, providers: Iterable[str]) -> dict[str, ProviderFacts]:
        registry = self.client.contract("ProviderRegistry").functions
        facts: dict[str, ProviderFacts] = {}
        for provider in set(providers):
            address = Web3.to_checksum_address(provider)
            try:
                tier = int(registry.getProviderTrustTier(address).call()) + 1
            except ContractLogicError:
                continue  # not registered: select_bid says so
            facts[provider] = ProviderFacts(
                active=bool(registry.isActiveProvider(address).call()), tier=tier
            )
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
