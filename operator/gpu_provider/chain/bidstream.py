"""The bid engine's event stream: what it follows, from where, and the bid's idempotency key.

The bid stream follows the head with confirmations 0 (docs/bidding.md says why); lease intake
reads the confirmed stream, never this one.
"""

from __future__ import annotations

from gpu_provider.chain.contracts import Contracts
from gpu_provider.chain.records import Checkpoint, EventSource

__all__ = ["bid_event_sources", "bid_key", "bid_stream_start"]


def bid_key(order_id: int) -> str:
    """The idempotency key of our bid on an order: one bid per order, ever."""
    return f"bid:{order_id}"


def bid_event_sources(contracts: Contracts) -> list[EventSource]:
    """What the bid stream follows: orders, their matches and closes, leases."""
    return [
        contracts.event_source("OrderRequest", ["OrderCreated", "OrderMarkedAsClosed"]),
        contracts.event_source("Bid", ["OrderMatched"]),
        contracts.event_source("ComputeLease", ["LeaseCreated"]),
    ]


def bid_stream_start(head: int, bid_window_blocks: int) -> Checkpoint:
    """Where a (re)started bid stream begins: orders older than the window cannot be bid on."""
    return Checkpoint.start_at(max(0, head - bid_window_blocks))
