"""The bid engine: `OrderCreated` -> evaluate -> hold a placement -> `placeBid`, in the window.

It reads a head-following event stream (confirmations 0: Spheron's window is 1-2 blocks, so
an order seen only once confirmed is an order we can no longer bid on). That is safe because
nothing it does there is irreversible for a reorged order: the bid is keyed `bid:<orderId>`
in the transaction manager's journal (a replay resumes, never resends) and the contract refuses
a second bid (`ProviderHasActiveBid`, taken as "already bid"). Leases are not taken from this
stream (intake follows the confirmed one); a match it saw that a reorg rolls back turns its
lease hold back into a bid hold that expires unless the replay matches it again.

The margin: gas is estimated against the latest block, and the bid is mined in a later one, so
a bid for an order whose window ends at the head would pass estimation and revert when mined.
The engine bids only while `head < created + window`, i.e. while the next block still
accepts it, and checks again just before sending.

Each order is handled in its own task (an order's tier read and its transaction do not hold up
the next order of the same block); deciding and holding run without an await in between, so
two orders never take the same GPU. Counters (`skips`, `placed`, `won`, `lost`, `expired`,
`failed`) are plain data for the metrics module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from gpu_provider.chain.bidrecords import BidOutcome, Recent
from gpu_provider.chain.bidrestore import restore_bid_hold
from gpu_provider.chain.bidstream import bid_key
from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.errors import (
    ChainError,
    ContractRevert,
    IntentConflict,
    ReorgBeyondConfirmations,
    TransactionReverted,
    TransactionTimeout,
)
from gpu_provider.chain.events import EventStream
from gpu_provider.chain.records import ChainEvent, Checkpoint
from gpu_provider.chain.tx import TxManager, TxRequest
from gpu_provider.market.bidding import Bid, BidDecision, evaluate_order
from gpu_provider.market.capacity import Capacity, Overbooked
from gpu_provider.market.catalog import GpuCatalog
from gpu_provider.market.eligibility import OrderFacts, ProviderFacts, Skip, SkipReason
from gpu_provider.market.reservations import (
    HoldState,
    Released,
    ReleaseReason,
    ReservationBook,
)

__all__ = ["BidEngine", "BidOutcome"]

log = logging.getLogger(__name__)

ORDER_OPEN: Final = 0
# Spheron's errors that mean "no bid now" rather than a failure of ours.
_ALREADY_BID: Final = "ProviderHasActiveBid"
_REFUSALS: Final = {
    "BiddingClosed": SkipReason.BIDDING_CLOSED,
    "OrderNotActive": SkipReason.ORDER_NOT_OPEN,
}


class BidEngine:
    """Bids for one provider address; `facts` and `capacity` are read at each decision
    (`capacity`: free after allocations, before reservations; the book subtracts those)."""

    def __init__(
        self,
        contracts: Contracts,
        tx: TxManager,
        *,
        facts: Callable[[], ProviderFacts],
        capacity: Callable[[], Capacity],
        book: ReservationBook,
        bid_window_blocks: int,
        clock: Callable[[], float] = time.monotonic,
        catalog: GpuCatalog | None = None,
        max_in_flight: int = 256,
    ) -> None:
        if bid_window_blocks < 1:
            raise ValueError("bid_window_blocks must be at least 1")
        self._contracts = contracts
        self._tx = tx
        self._facts = facts
        self._capacity = capacity
        self.book = book
        self.window = bid_window_blocks
        self._clock = clock
        self._catalog = catalog
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.head = -1
        self.skips: Counter[SkipReason] = Counter()
        self.failed: Counter[str] = Counter()
        self.placed = self.won = self.lost = self.expired = 0
        self.outcomes: Recent[BidOutcome] = Recent()
        self._seen: Recent[None] = Recent()
        self._matched: Recent[int] = Recent()
        """Order id -> the block of its match (a reorg above it forgets the match)."""
        self._late: Recent[ChainEvent] = Recent()
        self._first_head: int | None = None

    @property
    def address(self) -> str:
        return self._tx.address

    # -- events ------------------------------------------------------------------------------

    async def follow(
        self, open_stream: Callable[[Checkpoint], EventStream], start: Checkpoint
    ) -> None:
        """Handle the bid stream forever; a reorg under delivered blocks restarts it where
        the chains agree (replayed orders are not bid twice: see the module docstring)."""
        checkpoint = start
        while True:
            stream = open_stream(checkpoint)
            try:
                async for delivery in stream:
                    self.head = max(self.head, stream.head or -1)
                    if delivery.event is not None:
                        self.handle(delivery.event)
                    checkpoint = delivery.checkpoint
                    self.expire()
            except ReorgBeyondConfirmations as error:
                log.warning(
                    "bid stream: %s; following again from block %d", error, error.resume_from
                )
                self.rolled_back(error.resume_from)
                checkpoint = Checkpoint(error.resume_from)
            finally:
                await stream.aclose()

    def handle(self, event: ChainEvent, head: int | None = None) -> None:
        """Take one event; an order's bid runs in a task (`drain` waits for them)."""
        if head is not None:
            self.head = max(self.head, head)
        self.head = max(self.head, event.block_number)
        if self._first_head is None:
            self._first_head = self.head
        args = event.args
        match event.name:
            case "OrderCreated":
                self._order_created(event)
            case "OrderMatched":
                self._matched_to(int(args["orderId"]), str(args["providerAddress"]), event)
            case "LeaseCreated":
                self._matched_to(int(args["requestId"]), str(args["providerAddress"]), event)
            case "BidPlaced":
                self._bid_placed(event)
            case "OrderMarkedAsClosed":
                self._release(int(args["_orderId"]), ReleaseReason.ORDER_CLOSED)

    def expire(self, now: float | None = None) -> list[Released]:
        """Release bid holds past their window and grace, or past the timeout."""
        released = self.book.expire(head=self.head, now=self._clock() if now is None else now)
        for item in released:
            self.expired += 1
            log.debug("order %d: reservation released (%s)", item.reservation.order_id, item.reason)
        return released

    async def drain(self) -> None:
        """Wait until every order handed in so far is decided and its bid sent or refused."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- orders ------------------------------------------------------------------------------

    def _order_created(self, event: ChainEvent) -> None:
        order_id = int(event.args["orderId"])
        if self._seen.remember(order_id):
            return  # a replayed delivery (reorg restart): decided already
        last = event.block_number + self.window
        if self._first_head is not None and last < self._first_head:
            # Closed before this engine was running: a replay after a restart. Not a skip of
            # ours to count; kept in case our own BidPlaced follows (bidrestore.py).
            self._late.put(order_id, event)
            return
        if self.head >= last:
            late = f"order {order_id}: seen at block {self.head}, its window ended at {last}"
            self._skipped(Skip(order_id, SkipReason.BIDDING_CLOSED, late))
            return
        task = asyncio.create_task(self._bid(event, last), name=f"bid-{order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _bid_placed(self, event: ChainEvent) -> None:
        if str(event.args["provider"]).lower() != self.address.lower():
            return
        order_id = int(event.args["orderId"])
        created = self._late.pop(order_id, None)
        if created is None or order_id in self.book or order_id in self._matched:
            return
        problem = restore_bid_hold(
            self.book,
            created,
            event,
            provider=self._facts(),
            capacity=self._capacity(),
            window=self.window,
            now=self._clock(),
            catalog=self._catalog,
        )
        if problem is not None:
            self._failed(order_id, "restore", f"our earlier bid holds no GPUs: {problem}")
        else:
            log.info("order %d: GPUs held again for the bid an earlier run placed", order_id)

    async def _bid(self, event: ChainEvent, last: int) -> None:
        order_id = int(event.args["orderId"])
        async with self._slots:
            try:
                await self._bid_on(event, last)
            except Exception:  # one order's surprise must not pass silently or stop the rest
                log.exception("order %d: the bid engine failed on it", order_id)
                self.failed["internal"] += 1
                self._release(order_id, ReleaseReason.BID_FAILED)

    async def _bid_on(self, event: ChainEvent, last: int) -> None:
        order_id = int(event.args["orderId"])
        try:
            order, state = await self._read_order(event)
        except ChainError as error:
            self._failed(order_id, "read_order", f"reading order {order_id}: {error}")
            return
        if state != ORDER_OPEN:
            reason = SkipReason.ORDER_NOT_OPEN
            self._skipped(Skip(order_id, reason, f"order {order_id} is not open"))
            return
        decision = self._decide(order)
        if decision is None or isinstance(decision, Skip):
            return
        if self.head >= last:
            self._release(order_id, ReleaseReason.BID_FAILED)
            self._skipped(
                Skip(order_id, SkipReason.BIDDING_CLOSED, f"order {order_id}: window ended")
            )
            return
        await self._send(decision)

    def _decide(self, order: OrderFacts) -> BidDecision | None:
        """Evaluate and hold, with no await in between: the capacity cannot change under it."""
        base = self._capacity()
        decision = evaluate_order(
            order,
            self._facts(),
            self.book.capacity(base),
            open_bids=self.book.open_bids,
            catalog=self._catalog,
        )
        if isinstance(decision, Skip):
            self._skipped(decision)
            return decision
        try:
            self.book.hold(
                order.order_id,
                decision.placement,
                base,
                price_per_block=decision.price_per_block,
                last_bid_block=order.created_block + self.window,
                now=self._clock(),
            )
        except Overbooked as error:  # evaluate_order saw the same capacity: a bug if reached
            self._failed(order.order_id, "overbooked", f"order {order.order_id}: {error}")
            return None
        self._record(BidOutcome(order.order_id, decision, self.head))
        return decision

    async def _send(self, bid: Bid) -> None:
        order_id = bid.order_id
        request = TxRequest.call(self._contracts.bid, "placeBid", order_id, bid.price_per_block, 0)
        try:
            result = await self._tx.send(bid_key(order_id), request)
        except ContractRevert as error:
            self._refused(bid, error.error_name, error.sentence)
            return
        except IntentConflict:
            # The key holds a bid at another price (pricing changed since): we bid already.
            self._skipped(Skip(order_id, SkipReason.ALREADY_BID, f"order {order_id}: bid before"))
            return
        except TransactionTimeout as error:
            # Journaled and maybe still mined: keep the hold; the window or timeout ends it.
            self._failed(order_id, "timeout", str(error))
            return
        except TransactionReverted as error:
            self._release(order_id, ReleaseReason.BID_FAILED)
            self._failed(order_id, error.error_name or "reverted", str(error))
            return
        except ChainError as error:
            self._release(order_id, ReleaseReason.BID_FAILED)
            self._failed(order_id, type(error).__name__, str(error))
            return
        self.placed += 1
        self._record(BidOutcome(order_id, bid, self.outcome_head(order_id), tx=result))
        price, usd, block = bid.price_per_block, bid.usd_per_hour, result.block_number
        log.info("order %d: bid %d per block (%s USD/h) in block %d", order_id, price, usd, block)

    def _refused(self, bid: Bid, name: str, sentence: str) -> None:
        order_id = bid.order_id
        if name == _ALREADY_BID:
            # Our bid is on chain (an earlier run whose journal is gone): it may still win,
            # so the hold stays.
            self._skipped(Skip(order_id, SkipReason.ALREADY_BID, f"order {order_id}: {sentence}"))
            return
        self._release(order_id, ReleaseReason.BID_FAILED)
        reason = _REFUSALS.get(name)
        if reason is None:
            self._failed(order_id, name, f"order {order_id}: the bid was refused: {sentence}")
        else:
            self._skipped(Skip(order_id, reason, f"order {order_id}: {sentence}"))

    async def _read_order(self, event: ChainEvent) -> tuple[OrderFacts, int]:
        """The order's tiers and state (`OrderCreated` carries neither)."""
        order_id = int(event.args["orderId"])
        try:
            raw: Any = await self._contracts.order_request.functions.getOrderById(order_id).call()
        except Exception as error:  # web3 wraps transport and decoding errors in many types
            if isinstance(error, ChainError):
                raise
            raise ChainError(f"getOrderById({order_id}) failed: {error}") from error
        tiers = tuple(int(t) for t in raw[6][3])
        args = event.args
        order = OrderFacts(
            order_id=order_id,
            max_price=int(args["maxPrice"]),
            num_blocks=int(args["numOfBlocks"]),
            token=str(args["token"]),
            spec=str(args["specs"]),
            mode=int(args["mode"]),
            tiers=tiers,
            creator=str(args["creator"]),
            created_block=event.block_number,
        )
        return order, int(raw[5])

    # -- matches -----------------------------------------------------------------------------

    def rolled_back(self, fork: int) -> None:
        """The blocks after `fork` were replaced: matches seen in them are forgotten (the
        replay delivers those still on the chain), and their lease holds go back to bid holds
        that `expire` frees if no replayed match wins them again (no GpuLease would)."""
        for order_id, block in list(self._matched.items()):
            if block > fork:
                del self._matched[order_id]
        for reservation in self.book.rolled_back(fork, head=self.head, now=self._clock()):
            self.won -= 1
            log.info("order %d: its match was rolled back by a reorg", reservation.order_id)

    def _matched_to(self, order_id: int, provider: str, event: ChainEvent) -> None:
        if order_id in self._matched:
            return  # OrderMatched and LeaseCreated name the same match
        self._matched.put(order_id, event.block_number)
        if provider.lower() == self.address.lower():
            self.won += 1
            self.book.won(order_id, block=event.block_number)
            log.info("order %d: matched to us", order_id)
            return
        outcome = self.outcomes.get(order_id)
        if outcome is not None and isinstance(outcome.decision, Bid):
            self.lost += 1
            log.info("order %d: matched to %s, not us", order_id, provider)
        self._release(order_id, ReleaseReason.MATCHED_ELSEWHERE)

    # -- bookkeeping -------------------------------------------------------------------------

    def outcome_head(self, order_id: int) -> int:
        return self.outcomes[order_id].head if order_id in self.outcomes else self.head

    def _release(self, order_id: int, reason: ReleaseReason) -> None:
        """Release a bid hold; a lease hold is the lease controller's to release."""
        held = self.book.get(order_id)
        if held is not None and held.state is HoldState.BID:
            self.book.release(order_id, reason)
            log.debug("order %d: reservation released (%s)", order_id, reason)

    def _skipped(self, skip: Skip) -> None:
        self.skips[skip.reason] += 1
        self._record(BidOutcome(skip.order_id, skip, self.outcome_head(skip.order_id)))
        log.debug("skip (%s): %s", skip.reason, skip.message)

    def _failed(self, order_id: int, what: str, message: str) -> None:
        self.failed[what] += 1
        previous = self.outcomes.get(order_id)
        if previous is not None:
            self._record(BidOutcome(order_id, previous.decision, previous.head, error=message))
        log.warning("order %d: no bid: %s", order_id, message)

    def _record(self, outcome: BidOutcome) -> None:
        self.outcomes.put(outcome.order_id, outcome)
