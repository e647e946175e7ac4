"""The bid engine reads the operator's own objects: the ProviderNode spec becomes its facts, the
inventory its capacity, and its holds go back into the inventory so the offer never sells them."""

from __future__ import annotations

from decimal import Decimal

from gpu_provider.chain.bidfacts import (
    capacity_of,
    inventory_reservations,
    placed_lease_gpus,
    provider_facts,
)
from gpu_provider.inventory import build_inventory
from gpu_provider.market.bidding import Bid, evaluate_order
from gpu_provider.market.reservations import ReservationBook
from tests.bidding.helpers import gpu, order, service, spec
from tests.inventory import builders

USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_provider_node_spec_becomes_the_engines_facts() -> None:
    facts = provider_facts(
        builders.spec(**_spec_overrides()),
        address="0xabc",
        tier=4,
        blocks_per_hour=3600,
        active_leases=2,
    )
    assert (facts.region, facts.tier, facts.maintenance, facts.active_leases) == (
        "us-east",
        4,
        True,
        2,
    )
    assert (facts.limits.max_concurrent_leases, facts.limits.min_lease_blocks) == (5, 10)
    assert facts.prices.gpu_price("H100") == Decimal("2.5")
    spon = facts.token("0x" + "42" * 20)
    assert spon is not None
    assert (spon.symbol, spon.terms.decimals, spon.terms.usd_price) == ("SPON", 6, Decimal("0.5"))
    assert spon.terms.blocks_per_hour == 3600


def _spec_overrides() -> dict[str, object]:
    return {
        "region": "us-east",
        "acceptedTokens": [
            {"symbol": "USDT", "address": USDT},
            {"symbol": "SPON", "address": "0x" + "42" * 20, "decimals": 6, "usdPrice": "0.5"},
        ],
        "pricing": {
            "token": "USDT",
            "gpu": [{"model": "h100", "usdPerHour": "2.5"}],
            "cpuCoreUsdPerHour": "0.01",
        },
        "bidding": {"maxConcurrentLeases": 5, "minLeaseBlocks": 10},
        "maintenance": {"enabled": True},
    }


def test_capacity_comes_from_the_inventory_and_holds_shrink_the_advertised_offer() -> None:
    node_spec = builders.spec()
    nodes = [builders.node("gpu-0"), builders.node("gpu-1")]
    busy = [builders.pod("gpu-1", gpus=3, cpu="4", memory="16Gi")]
    report = build_inventory(nodes, busy, node_spec)
    capacity = capacity_of(report)
    assert [(n.name, n.gpus[0].free) for n in capacity.nodes] == [("gpu-0", 8), ("gpu-1", 5)]
    assert capacity.node("gpu-1").cpu_millis == 60_000  # type: ignore[union-attr]

    book = ReservationBook(60)
    decision = evaluate_order(
        order(spec(service(gpus=gpu(5, "h100"))), token=USDT),
        provider_facts(node_spec, address="0xabc", tier=4, blocks_per_hour=1800),
        book.capacity(capacity),
    )
    assert isinstance(decision, Bid)
    book.hold(7, decision.placement, capacity, price_per_block=1, last_bid_block=1, now=0)
    held = inventory_reservations(book)
    assert [(r.key, r.node, r.model, r.gpus) for r in held] == [
        ("bid:7:gpu-1:h100", "gpu-1", "h100", 5)
    ]

    # The advertised offer loses the held GPUs; the engine's capacity is the same either way.
    advertised = build_inventory(nodes, busy, node_spec, reservations=held)
    assert advertised.offer_units() == {51: 8}
    assert capacity_of(advertised) == capacity
    assert book.capacity(capacity_of(advertised)).free_gpus("h100") == 8


def test_a_deploying_leases_gpus_leave_the_offer_once_not_twice() -> None:
    """Between its Pods being placed and the lease check releasing its hold, a won lease's
    GPUs were both held and allocated: the offer dropped by twice the lease's GPUs (12 → 14
    H100 in the demo's log two seconds later, one extra attributes transaction per deploy)."""
    node_spec = builders.spec()
    nodes = [builders.node("gpu-0"), builders.node("gpu-1")]
    capacity = capacity_of(build_inventory(nodes, [], node_spec))
    book = ReservationBook(60)
    decision = evaluate_order(
        order(spec(service(gpus=gpu(4, "h100"))), token=USDT),
        provider_facts(node_spec, address="0xabc", tier=4, blocks_per_hour=1800),
        book.capacity(capacity),
    )
    assert isinstance(decision, Bid)
    book.hold(9, decision.placement, capacity, price_per_block=1, last_bid_block=1, now=0)
    book.won(9)
    (node,) = decision.placement.by_node()

    def offered(pods: list[dict[str, object]]) -> int:
        held = inventory_reservations(book, placed_lease_gpus(pods))
        return sum(
            build_inventory(nodes, pods, node_spec, reservations=held).offer_units().values()
        )

    assert offered([]) == 12  # awaiting its manifest: held
    lease_pod = builders.pod(node, gpus=4)
    lease_pod["metadata"]["namespace"] = "lease-9"
    assert offered([lease_pod]) == 12  # deploying: allocated to its Pod, no longer held too
    half = builders.pod(node, gpus=2)
    half["metadata"]["namespace"] = "lease-9"
    assert offered([half]) == 12  # one of two replicas placed: 2 allocated + 2 still held
    other = builders.pod(node, gpus=4)
    other["metadata"]["namespace"] = "lease-10"
    assert offered([other]) == 8  # another lease's Pod does not free this one's hold
    pending = builders.pod(None, gpus=4)
    pending["metadata"]["namespace"] = "lease-9"
    assert offered([pending]) == 12  # not bound to a Node yet: still held
