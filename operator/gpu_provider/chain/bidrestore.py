"""After a restart: hold GPUs again for bids an earlier run placed and that may still win.

The reservation book lives in memory. A restarted engine replays the bid stream from one
window plus the match grace back (`bid_stream_start`), so it sees again the `OrderCreated` of
every order that may still be matched, and the `BidPlaced` of our own bids on them. An order
still in its window goes through the normal path (its keyed transaction is looked up, or the
contract answers `ProviderHasActiveBid`); for one whose window closed, our `BidPlaced` is the
proof that we bid, and this module places it again and holds it, so a match that comes after
the restart finds its GPUs free. No I/O: the events carry everything.
"""

from __future__ import annotations

from gpu_provider.chain.records import ChainEvent
from gpu_provider.market.bidding import placement_for
from gpu_provider.market.capacity import Capacity, Overbooked
from gpu_provider.market.catalog import GpuCatalog
from gpu_provider.market.codec import decode
from gpu_provider.market.eligibility import OrderFacts, ProviderFacts, Skip
from gpu_provider.market.errors import OrderSpecError
from gpu_provider.market.reservations import ReservationBook

__all__ = ["restore_bid_hold"]


def restore_bid_hold(
    book: ReservationBook,
    created: ChainEvent,
    placed: ChainEvent,
    *,
    provider: ProviderFacts,
    capacity: Capacity,
    window: int,
    now: float,
    catalog: GpuCatalog | None = None,
) -> str | None:
    """Hold the order of `created` for our bid `placed`; None, or why it could not be held."""
    order_id = int(created.args["orderId"])
    try:
        spec = decode(str(created.args["specs"]))
    except OrderSpecError as error:
        return f"order {order_id}: {error}"
    order = OrderFacts(
        order_id=order_id,
        max_price=int(created.args["maxPrice"]),
        num_blocks=int(created.args["numOfBlocks"]),
        token=str(created.args["token"]),
        spec=str(created.args["specs"]),
        created_block=created.block_number,
    )
    placement = placement_for(order, spec, provider, book.capacity(capacity), catalog=catalog)
    if isinstance(placement, Skip):
        return f"{placement.message} ({placement.reason})"
    try:
        book.hold(
            order_id,
            placement,
            capacity,
            price_per_block=int(placed.args["bidPrice"]),
            last_bid_block=created.block_number + window,
            now=now,
        )
    except Overbooked as error:
        return f"order {order_id}: {error}"
    return None
