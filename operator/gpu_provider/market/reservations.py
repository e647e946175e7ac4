"""The reservation book: what we promised in bids and won leases, so nothing is promised twice.

Pure (time and block numbers are passed in). A bid holds its placement (`hold`) from the
moment we decide to bid. The hold ends:

- when the order is matched to someone else, or closed (`release`);
- when the bid window plus `match_grace_blocks` has passed without a match (`expire`): the
  matchmaker matches only after the window closes, so the window's end alone would free the
  GPUs just before the match that needs them; the default grace, 30 blocks, is the 60 s that
  Spheron's SDK tenant waits for its match at 2 s blocks;
- after `timeout_seconds` (`spec.bidding.reservationTimeoutSeconds`) in any case (`expire`).

When we win, the hold becomes a lease hold (`won`), which no timeout ends: the GPUs are ours
to run the lease on until its pods are placed and counted by the inventory as allocated, or
the lease closes; the lease controller then `release`s it.

A match seen at 0 confirmations can be rolled back by a reorg; no GpuLease will then ever
release its lease hold. So `won` records the match's block, and `rolled_back(fork)` turns the
lease holds of matches above the fork back into bid holds whose window ends at the current
head: the replayed stream wins them again within the grace if the match is still on the new
chain, and `expire` frees the GPUs if it is not.

`hold` checks the placement against the capacity left after every other hold and refuses
one that does not fit (`Overbooked`): the one invariant this module exists for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from gpu_provider.market.capacity import Capacity, OrderPlacement

DEFAULT_MATCH_GRACE_BLOCKS: Final = 30


class HoldState(StrEnum):
    BID = "bid"
    """We bid; not matched yet."""
    LEASED = "leased"
    """Matched to us: held for the lease until its pods are counted as allocated."""


class ReleaseReason(StrEnum):
    MATCHED_ELSEWHERE = "matched_elsewhere"
    ORDER_CLOSED = "order_closed"
    WINDOW_PASSED = "window_passed"
    TIMED_OUT = "timed_out"
    BID_FAILED = "bid_failed"
    LEASE_ALLOCATED = "lease_allocated"
    LEASE_CLOSED = "lease_closed"


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: int
    placement: OrderPlacement
    price_per_block: int
    last_bid_block: int
    """The last block in which the bid can be mined (`created + window`)."""
    held_at: float
    """Seconds on the caller's monotonic clock."""
    state: HoldState = HoldState.BID
    matched_block: int | None = None
    """The block of the match that made this a lease hold; None for a bid hold or a lease
    restored from its GpuLease (confirmed, so no reorg takes it back)."""


@dataclass(frozen=True, slots=True)
class Released:
    reservation: Reservation
    reason: ReleaseReason


class ReservationBook:
    def __init__(
        self,
        timeout_seconds: float,
        *,
        match_grace_blocks: int = DEFAULT_MATCH_GRACE_BLOCKS,
    ) -> None:
        if timeout_seconds <= 0 or match_grace_blocks < 0:
            raise ValueError("timeout_seconds must be > 0 and match_grace_blocks >= 0")
        self.timeout_seconds = timeout_seconds
        self.match_grace_blocks = match_grace_blocks
        self._holds: dict[int, Reservation] = {}

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._holds

    def __len__(self) -> int:
        return len(self._holds)

    def __iter__(self) -> Iterator[Reservation]:
        return iter(sorted(self._holds.values(), key=lambda r: r.order_id))

    def get(self, order_id: int) -> Reservation | None:
        return self._holds.get(order_id)

    @property
    def open_bids(self) -> int:
        """Holds for bids not matched yet (they count towards maxConcurrentLeases)."""
        return sum(1 for r in self._holds.values() if r.state is HoldState.BID)

    def capacity(self, base: Capacity) -> Capacity:
        """`base` (free after allocations) less every hold."""
        return base.minus(r.placement for r in self)

    def hold(
        self,
        order_id: int,
        placement: OrderPlacement,
        base: Capacity,
        *,
        price_per_block: int,
        last_bid_block: int,
        now: float,
    ) -> Reservation:
        """Hold `placement` for a bid on `order_id`; the existing hold when there is one.

        Raises `Overbooked` when the placement does not fit what `base` has left after the
        other holds: the caller computed it from stale capacity.
        """
        existing = self._holds.get(order_id)
        if existing is not None:
            return existing
        self.capacity(base).minus([placement], strict=True)
        reservation = Reservation(order_id, placement, price_per_block, last_bid_block, now)
        self._holds[order_id] = reservation
        return reservation

    def hold_lease(self, order_id: int, placement: OrderPlacement, *, now: float) -> Reservation:
        """Hold a lease's placement that the book did not hold as a bid (a restarted operator
        restoring a GpuLease whose pods are not placed yet). Not checked against capacity:
        the lease is ours whatever else was promised meanwhile."""
        existing = self._holds.get(order_id)
        if existing is not None:
            return self.won(order_id) or existing
        reservation = Reservation(order_id, placement, 0, -1, now, HoldState.LEASED)
        self._holds[order_id] = reservation
        return reservation

    def won(self, order_id: int, *, block: int | None = None) -> Reservation | None:
        """The order was matched to us (in `block`, when the match may still be rolled back):
        keep its placement for the lease (no expiry now). None when we held nothing for it
        (a restart lost the book)."""
        reservation = self._holds.get(order_id)
        if reservation is None:
            return None
        if reservation.state is HoldState.LEASED and reservation.matched_block is None:
            return reservation  # restored from its GpuLease: confirmed already
        leased = replace(reservation, state=HoldState.LEASED, matched_block=block)
        self._holds[order_id] = leased
        return leased

    def rolled_back(self, fork: int, *, head: int, now: float) -> list[Reservation]:
        """A reorg replaced the blocks after `fork`: lease holds won in them are bid holds
        again, expiring `match_grace_blocks` after `head` (or the timeout after `now`) unless
        the replayed match wins them back. Returns the holds changed."""
        changed: list[Reservation] = []
        for reservation in list(self):
            block = reservation.matched_block
            if reservation.state is not HoldState.LEASED or block is None or block <= fork:
                continue
            pending = replace(
                reservation,
                state=HoldState.BID,
                matched_block=None,
                last_bid_block=head,
                held_at=now,
            )
            self._holds[reservation.order_id] = pending
            changed.append(pending)
        return changed

    def release(self, order_id: int, reason: ReleaseReason) -> Released | None:
        reservation = self._holds.pop(order_id, None)
        return None if reservation is None else Released(reservation, reason)

    def expire(self, *, head: int, now: float) -> list[Released]:
        """Release bid holds whose window and grace passed (`head` is the newest block) or
        that are older than the timeout; lease holds stay."""
        released: list[Released] = []
        for reservation in list(self):
            if reservation.state is not HoldState.BID:
                continue
            if head > reservation.last_bid_block + self.match_grace_blocks:
                reason = ReleaseReason.WINDOW_PASSED
            elif now - reservation.held_at >= self.timeout_seconds:
                reason = ReleaseReason.TIMED_OUT
            else:
                continue
            del self._holds[reservation.order_id]
            released.append(Released(reservation, reason))
        return released
