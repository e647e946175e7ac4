"""A match the bid engine saw at 0 confirmations and a reorg then rolled back: the GPUs held
for that lease come free again (no GpuLease will ever exist to release them), while a match
the replayed chain still has keeps them."""

from __future__ import annotations

from typing import Any, cast

from gpu_provider.chain.bidding import BidEngine
from gpu_provider.chain.records import ChainEvent
from gpu_provider.market.bidding import Bid, evaluate_order
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.reservations import HoldState, ReleaseReason, ReservationBook
from tests.bidding.helpers import cluster, gpu, order, provider, service, spec

US = "0x00000000000000000000000000000000000000aa"
TIMEOUT = 300.0
GRACE = 30


class _Wallet:
    """The only part of the transaction manager a match touches: whose bids these are."""

    address = US


def _held(book: ReservationBook, base: Capacity, order_id: int, units: int) -> None:
    decision = evaluate_order(
        order(spec(service(gpus=gpu(units, "h100"))), order_id=order_id), provider(), base
    )
    assert isinstance(decision, Bid)
    book.hold(order_id, decision.placement, base, price_per_block=1, last_bid_block=102, now=0.0)


def _state(book: ReservationBook, order_id: int) -> HoldState | None:
    held = book.get(order_id)
    return None if held is None else held.state


def _lease_created(order_id: int, block: int) -> ChainEvent:
    args = {"requestId": order_id, "providerAddress": US}
    return ChainEvent("LeaseCreated", args, "0x", block, f"0x{block:064x}", "0x", 0, 0)


def _engine(book: ReservationBook, base: Capacity, clock: list[float]) -> BidEngine:
    return BidEngine(
        cast(Any, None),
        cast(Any, _Wallet()),
        facts=provider,
        capacity=lambda: base,
        book=book,
        bid_window_blocks=2,
        clock=lambda: clock[0],
    )


def test_a_match_rolled_back_frees_its_gpus_after_the_grace() -> None:
    base, book, clock = cluster(), ReservationBook(TIMEOUT, match_grace_blocks=GRACE), [0.0]
    _held(book, base, 1, 8)
    engine = _engine(book, base, clock)
    engine.handle(_lease_created(1, 104))
    assert _state(book, 1) is HoldState.LEASED
    engine.handle(_lease_created(2, 110), head=110)  # not ours to hold: nothing changes
    # The chain reorganised above block 103: the match in 104 is gone.
    engine.rolled_back(103)
    assert engine.expire(now=1.0) == []  # the replay may still deliver it: held for now
    engine.head = 110 + GRACE + 1
    (released,) = engine.expire(now=2.0)
    assert released.reservation.order_id == 1
    assert released.reason is ReleaseReason.WINDOW_PASSED
    assert book.capacity(base) == base
    assert engine.won == 1  # the rolled back win is no longer counted; order 2 was ours too


def test_a_match_the_replay_delivers_again_keeps_its_gpus() -> None:
    base, book, clock = cluster(), ReservationBook(TIMEOUT, match_grace_blocks=GRACE), [0.0]
    _held(book, base, 1, 8)
    engine = _engine(book, base, clock)
    engine.handle(_lease_created(1, 104))
    engine.rolled_back(103)
    engine.handle(_lease_created(1, 105))  # re-mined one block later on the new chain
    engine.head = 10_000
    clock[0] = 10 * TIMEOUT
    assert engine.expire() == []
    assert _state(book, 1) is HoldState.LEASED
    assert book.get(1).matched_block == 105  # type: ignore[union-attr]


def test_a_match_below_the_fork_and_a_restored_lease_are_untouched() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT, match_grace_blocks=GRACE)
    _held(book, base, 1, 8)
    book.won(1, block=100)
    restored = book.hold_lease(2, book.get(1).placement, now=0.0)  # type: ignore[union-attr]
    assert book.rolled_back(100, head=120, now=5.0) == []
    assert _state(book, 1) is HoldState.LEASED
    assert book.get(2) == restored
    (changed,) = book.rolled_back(99, head=120, now=5.0)
    assert (changed.order_id, changed.state, changed.last_bid_block) == (1, HoldState.BID, 120)
