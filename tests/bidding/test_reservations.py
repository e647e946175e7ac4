"""The reservation book: a GPU promised to one bid or lease is never promised to another, and
holds end exactly when the rules say (matched elsewhere, window and grace passed, timeout)."""

from __future__ import annotations

import random

import pytest

from gpu_provider.market.bidding import Bid, evaluate_order
from gpu_provider.market.capacity import Capacity, Overbooked
from gpu_provider.market.eligibility import Skip, SkipReason
from gpu_provider.market.reservations import HoldState, ReleaseReason, ReservationBook
from tests.bidding.helpers import cluster, gpu, order, provider, service, spec

TIMEOUT = 300.0
GRACE = 30


def _bid(
    book: ReservationBook, base: Capacity, order_id: int, units: int, model: str = "h100"
) -> Bid | Skip:
    decision = evaluate_order(
        order(spec(service(gpus=gpu(units, model))), order_id=order_id),
        provider(),
        book.capacity(base),
        open_bids=book.open_bids,
    )
    if isinstance(decision, Bid):
        book.hold(
            order_id, decision.placement, base, price_per_block=1, last_bid_block=102, now=0.0
        )
    return decision


def test_holds_take_gpus_until_the_cluster_is_full() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    placed = [_bid(book, base, i, 4) for i in range(1, 6)]
    assert [isinstance(d, Bid) for d in placed] == [True, True, True, True, False]
    assert book.capacity(base).free_gpus("h100") == 0
    skip = placed[-1]
    assert isinstance(skip, Skip)
    assert skip.reason is SkipReason.NO_NODE_FITS
    # Releasing one makes room for exactly one more.
    book.release(2, ReleaseReason.MATCHED_ELSEWHERE)
    assert isinstance(_bid(book, base, 6, 4), Bid)
    assert not isinstance(_bid(book, base, 7, 1), Bid)


def test_a_stale_placement_is_refused_not_double_booked() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    first = evaluate_order(order(spec(service(gpus=gpu(8, "h100"))), order_id=1), provider(), base)
    second = evaluate_order(order(spec(service(gpus=gpu(8, "h100"))), order_id=2), provider(), base)
    assert isinstance(first, Bid)
    assert isinstance(second, Bid)
    assert first.placement == second.placement  # both computed from the same free capacity
    book.hold(1, first.placement, base, price_per_block=1, last_bid_block=102, now=0)
    with pytest.raises(Overbooked, match="gpu-h100-0 has 0 h100 free, not 8"):
        book.hold(2, second.placement, base, price_per_block=1, last_bid_block=102, now=0)
    assert 2 not in book


def test_holding_the_same_order_twice_keeps_one_hold() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    decision = _bid(book, base, 1, 8)
    assert isinstance(decision, Bid)
    again = book.hold(1, decision.placement, base, price_per_block=1, last_bid_block=102, now=5)
    assert again.held_at == 0
    assert len(book) == 1


@pytest.mark.parametrize("seed", range(20))
def test_random_orders_never_promise_more_gpus_than_a_node_has(seed: int) -> None:
    rng = random.Random(seed)
    base, book = cluster(), ReservationBook(TIMEOUT)
    for order_id in range(1, 60):
        if book and rng.random() < 0.3:
            victim = rng.choice([r.order_id for r in book])
            book.release(victim, ReleaseReason.MATCHED_ELSEWHERE)
        model = rng.choice(["h100", "a100-80g"])
        replicas = rng.randint(1, 3)
        decision = evaluate_order(
            order(
                spec(service(gpus=gpu(rng.randint(1, 8), model), replicas=replicas)),
                order_id=order_id,
            ),
            provider(),
            book.capacity(base),
        )
        if isinstance(decision, Bid):
            book.hold(
                order_id, decision.placement, base, price_per_block=1, last_bid_block=1, now=0
            )
        promised: dict[tuple[str, str], int] = {}
        for held in book:
            for name, use in held.placement.by_node().items():
                for model, gpus in use.gpus.items():
                    promised[name, model] = promised.get((name, model), 0) + gpus
        for node in base.nodes:
            for pool in node.gpus:
                taken = promised.get((node.name, pool.model), 0)
                assert taken <= pool.free, f"{node.name}: {taken} {pool.model} promised"


def test_the_window_and_grace_end_a_bid_hold_by_block() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT, match_grace_blocks=GRACE)
    _bid(book, base, 1, 1)  # last bid block 102
    assert book.expire(head=102 + GRACE, now=1) == []
    (released,) = book.expire(head=103 + GRACE, now=1)
    assert (released.reservation.order_id, released.reason) == (1, ReleaseReason.WINDOW_PASSED)
    assert book.capacity(base) == base


def test_the_timeout_ends_a_bid_hold_even_if_the_chain_stalls() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    _bid(book, base, 1, 1)
    assert book.expire(head=100, now=TIMEOUT - 1) == []
    (released,) = book.expire(head=100, now=TIMEOUT)
    assert released.reason is ReleaseReason.TIMED_OUT


def test_a_won_order_keeps_its_gpus_past_window_and_timeout_until_released() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    _bid(book, base, 1, 8)
    leased = book.won(1)
    assert leased is not None
    assert leased.state is HoldState.LEASED
    assert book.open_bids == 0
    assert book.expire(head=10_000, now=10 * TIMEOUT) == []
    assert book.capacity(base).free_gpus("h100") == 8
    released = book.release(1, ReleaseReason.LEASE_ALLOCATED)
    assert released is not None
    assert book.capacity(base) == base
    assert book.won(99) is None


def test_open_bids_count_towards_the_concurrent_lease_limit() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    _bid(book, base, 1, 1)
    _bid(book, base, 2, 1)
    assert book.open_bids == 2


def test_a_restored_lease_is_held_whatever_else_was_promised() -> None:
    base, book = cluster(), ReservationBook(TIMEOUT)
    decision = _bid(book, base, 1, 8)
    assert isinstance(decision, Bid)
    # After a restart the GpuLease of order 2 says it runs on the same 8 GPUs: it is ours.
    lease = book.hold_lease(2, decision.placement, now=0)
    assert lease.state is HoldState.LEASED
    assert book.capacity(base).free_gpus("h100") == 8  # clamped at 0 on the shared node
    assert book.hold_lease(1, decision.placement, now=0).state is HoldState.LEASED
    assert book.open_bids == 0
