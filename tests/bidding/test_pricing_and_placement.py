"""What we bid and where the order would run: the price never below ours (1 wei matters), and
every replica on one node that has its GPUs, VRAM, CPU and memory free."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpu_provider.market.bidding import Bid, evaluate_order
from gpu_provider.market.capacity import Capacity, GpuPool, NodeCapacity
from gpu_provider.market.eligibility import AcceptedToken, Skip, SkipReason
from gpu_provider.market.pricing import TokenTerms, base_units_per_block_to_usd_per_hour
from gpu_provider.market.spec import StorageVolume
from tests.bidding.helpers import (
    A100_MIB,
    GIB,
    H100_MIB,
    USDT,
    cluster,
    gpu,
    node,
    order,
    provider,
    service,
    spec,
)

# 1 x H100 (2.50) + 4 cores (0.04) + 16 GiB (0.016) = 2.556 USD/h; at 1800 blocks per hour in
# an 18-decimal token that is exactly 1420000000000000 base units per block.
OUR_PRICE = 1_420_000_000_000_000


@pytest.mark.parametrize(
    ("max_price", "bids"),
    [(OUR_PRICE + 1, True), (OUR_PRICE, True), (OUR_PRICE - 1, False)],
    ids=["1 wei above", "exact", "1 wei below"],
)
def test_max_price_against_our_price(max_price: int, bids: bool) -> None:
    decision = evaluate_order(order(max_price=max_price), provider(), cluster())
    if bids:
        assert isinstance(decision, Bid)
        # We bid our price, not the tenant's maximum: the matchmaker takes the cheapest bid.
        assert decision.price_per_block == OUR_PRICE
        assert decision.usd_per_hour == Decimal("2.556")
    else:
        assert isinstance(decision, Skip)
        assert decision.reason is SkipReason.PRICE_BELOW_OURS
        assert str(OUR_PRICE) in decision.message


def test_the_price_is_rounded_up_so_we_never_earn_less_than_our_rate() -> None:
    # 1 USD/h in a 6-decimal token at 7 blocks per hour: 142857.14... -> 142858 per block.
    token = AcceptedToken(USDT, "USDC", TokenTerms(decimals=6, blocks_per_hour=7))
    prices = provider().prices.model_copy(
        update={
            "gpu_usd_per_hour": {"h100": Decimal(1)},
            "cpu_core_usd_per_hour": 0,
            "memory_gib_usd_per_hour": 0,
        }
    )
    decision = evaluate_order(order(), provider(tokens=(token,), prices=prices), cluster())
    assert isinstance(decision, Bid)
    assert decision.price_per_block == 142_858
    assert base_units_per_block_to_usd_per_hour(142_858, token.terms) >= 1


def test_a_token_worth_two_dollars_halves_the_price() -> None:
    token = AcceptedToken(USDT, "TWO", TokenTerms(usd_price=Decimal(2)))
    decision = evaluate_order(order(), provider(tokens=(token,)), cluster())
    assert isinstance(decision, Bid)
    assert decision.price_per_block == OUR_PRICE // 2


def test_the_cheapest_accepted_model_that_fits_is_chosen_and_priced() -> None:
    either = service(gpus=gpu(2, "h100", "a100-80g"))
    decision = evaluate_order(order(spec(either)), provider(), cluster())
    assert isinstance(decision, Bid)
    assert decision.placement.gpu_models == {"py": "a100-80g"}
    # Too many for an A100 node: the H100s serve it, at the H100 price.
    decision = evaluate_order(
        order(spec(service(gpus=gpu(6, "h100", "a100-80g")))), provider(), cluster()
    )
    assert isinstance(decision, Bid)
    assert decision.placement.gpu_models == {"py": "h100"}


def test_replicas_spread_over_nodes_each_on_one_node() -> None:
    big = service(gpus=gpu(6, "h100"), replicas=2)
    decision = evaluate_order(order(spec(big)), provider(), cluster())
    assert isinstance(decision, Bid)
    nodes = [(r.node, r.gpus) for r in decision.placement.replicas]
    assert sorted(nodes) == [("gpu-h100-0", 6), ("gpu-h100-1", 6)]
    # A third replica of 6 finds no node with 6 left.
    decision = evaluate_order(
        order(spec(service(gpus=gpu(6, "h100"), replicas=3))), provider(), cluster()
    )
    assert isinstance(decision, Skip)
    assert decision.reason is SkipReason.NO_NODE_FITS


def test_small_replicas_share_a_node_and_best_fit_keeps_whole_nodes_free() -> None:
    capacity = Capacity.of([node("a", ("h100", 8, H100_MIB)), node("b", ("h100", 2, H100_MIB))])
    decision = evaluate_order(
        order(spec(service(gpus=gpu(1, "h100"), replicas=2))), provider(), capacity
    )
    assert isinstance(decision, Bid)
    assert [r.node for r in decision.placement.replicas] == ["b", "b"]


def test_several_services_are_placed_together_without_sharing_a_gpu() -> None:
    trainer = service("trainer", gpus=gpu(4, "a100-80g"), replicas=2)
    api = service("api", gpus=gpu(0), replicas=3, cpu=500, memory=GIB // 2)
    worker = service("worker", gpus=gpu(8, "h100"))
    decision = evaluate_order(order(spec(trainer, api, worker)), provider(), cluster())
    assert isinstance(decision, Bid)
    by_node = decision.placement.by_node()
    assert by_node["gpu-a100-0"].gpus == {"a100-80g": 4}
    assert by_node["gpu-a100-1"].gpus == {"a100-80g": 4}
    assert sum(use.gpus.get("h100", 0) for use in by_node.values()) == 8
    assert cluster().fits(decision.placement) is None
    # Replicas keep the spec's service order.
    assert [r.service for r in decision.placement.replicas] == [
        "trainer",
        "trainer",
        "api",
        "api",
        "api",
        "worker",
    ]
    # One more A100 than the cluster has: no bid at all.
    greedy = service("trainer", gpus=gpu(4, "a100-80g"), replicas=3)
    decision = evaluate_order(order(spec(greedy, api)), provider(), cluster())
    assert isinstance(decision, Skip)
    assert decision.reason is SkipReason.NO_NODE_FITS


@pytest.mark.parametrize(
    ("vram", "free_mib", "bids"),
    [
        (">=80", H100_MIB, True),
        (">=80", H100_MIB * 79 // 100, False),
        (">=80", H100_MIB * 80 // 100 + 1, True),
        ("<50", H100_MIB, False),
        (">99", H100_MIB, True),
    ],
)
def test_req_vram_is_a_share_of_each_gpu_that_must_be_free(
    vram: str, free_mib: int, bids: bool
) -> None:
    partly_used = Capacity.of(
        [NodeCapacity("a", (GpuPool("h100", 8, H100_MIB, free_mib),), 64_000, 512 * GIB)]
    )
    decision = evaluate_order(
        order(spec(service(gpus=gpu(1, "h100", vram=vram)))), provider(), partly_used
    )
    assert isinstance(decision, Bid) is bids, decision
    if not bids:
        assert isinstance(decision, Skip)
        assert decision.reason is SkipReason.NOT_ENOUGH_VRAM


def test_ram_volumes_take_node_memory() -> None:
    capacity = Capacity.of([node("a", ("a100-80g", 4, A100_MIB), memory=20)])
    shm = StorageVolume(name="shm", size_bytes=8 * GIB, storage_class="ram")
    decision = evaluate_order(
        order(spec(service(gpus=gpu(1, "a100-80g"), memory=16 * GIB, storage=(shm,)))),
        provider(),
        capacity,
    )
    assert isinstance(decision, Skip)
    assert decision.reason is SkipReason.NO_NODE_FITS
