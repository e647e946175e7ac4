"""What the bid engine remembers: each order's outcome, and which orders it has seen, in
bounded memory (the newest few thousand: replays reach back one window and the match grace,
never further)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from gpu_provider.chain.txtypes import TxResult
from gpu_provider.market.bidding import BidDecision

__all__ = ["BidOutcome", "Recent"]

RECENT: Final = 4096
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """What the engine did with one order: the decision, the head it was made at, and the
    mined bid (or why there is none)."""

    order_id: int
    decision: BidDecision
    head: int
    tx: TxResult | None = None
    error: str | None = None


class Recent(OrderedDict[int, T], Generic[T]):
    """An order id -> value map keeping the `limit` newest entries."""

    def __init__(self, limit: int = RECENT) -> None:
        super().__init__()
        self.limit = limit

    def put(self, order_id: int, value: T) -> None:
        self[order_id] = value
        self.move_to_end(order_id)
        while len(self) > self.limit:
            self.popitem(last=False)

    def remember(self: Recent[None], order_id: int) -> bool:
        """True when `order_id` was here already; added otherwise."""
        if order_id in self:
            return True
        self.put(order_id, None)
        return False
