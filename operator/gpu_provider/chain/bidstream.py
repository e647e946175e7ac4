"""The bid engine's event stream: what it follows, from where, and the bid's idempotency key.

The bid stream follows the head with confirmations 0 (docs/bidding.md says why); lease intake
reads the confirmed stream, never this one.
"""

from __future__ import annotations

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.records import Checkpoint, EventSource, arg_equals
from gpu_provider.market.reservations import DEFAULT_MATCH_GRACE_BLOCKS

__all__ = ["bid_event_sources", "bid_key", "bid_stream_start"]


def bid_key(order_id: int) -> str:
    """The idempotency key of our bid on an order: one bid per order, ever."""
    return f"bid:{order_id}"


def bid_event_sources(contracts: Contracts, provider: str) -> list[EventSource]:
    """What the bid stream follows: orders, our bids, matches, closes and leases."""
    ours = {"BidPlaced": arg_equals("provider", provider)}
    return [
        contracts.event_source("OrderRequest", ["OrderCreated", "OrderMarkedAsClosed"]),
        contracts.event_source("Bid", ["OrderMatched", "BidPlaced"], ours),
        contracts.event_source("ComputeLease", ["LeaseCreated"]),
    ]


def bid_stream_start(
    head: int, bid_window_blocks: int, match_grace_blocks: int = DEFAULT_MATCH_GRACE_BLOCKS
) -> Checkpoint:
    """Where a (re)started bid stream begins: one window and the match grace back, so that
    orders that can still be bid on are seen, and so are our bids that can still be matched
    (their GPUs are held again: bidrestore.py). Older orders are over either way."""
    return Checkpoint.start_at(max(0, head - bid_window_blocks - match_grace_blocks))
