"""The bid engine reads the operator's own objects: the ProviderNode spec becomes its facts, the
inventory its capacity, and its holds go back into the inventory so the offer never sells them."""

from __future__ import annotations

from decimal import Decimal

from gpu_provider.chain.bidfacts import capacity_of, inventory_reservations, provider_facts
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
