"""Glue between the operator's objects and the pure bid engine: the ProviderNode spec as
`ProviderFacts`, the inventory as `Capacity`, the reservation book as inventory reservations.

No I/O here either; it lives in chain/ because market/ may not import the CRD models or the
inventory package (import-linter), and the bid engine (chain/bidding.py) is what needs it.
"""

from __future__ import annotations

from decimal import Decimal

from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.inventory import GpuReservation, InventoryReport
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.eligibility import AcceptedToken, BiddingLimits, ProviderFacts
from gpu_provider.market.pricing import PriceTable, TokenTerms
from gpu_provider.market.reservations import ReservationBook

__all__ = ["capacity_of", "inventory_reservations", "price_table", "provider_facts"]


def price_table(spec: ProviderNodeSpec) -> PriceTable:
    pricing = spec.pricing
    return PriceTable(
        gpu_usd_per_hour={price.model: Decimal(price.usd_per_hour) for price in pricing.gpu},
        cpu_core_usd_per_hour=Decimal(pricing.cpu_core_usd_per_hour),
        memory_gib_usd_per_hour=Decimal(pricing.memory_gib_usd_per_hour),
        storage_gib_usd_per_hour=Decimal(pricing.storage_gib_usd_per_hour),
    )


def provider_facts(
    spec: ProviderNodeSpec,
    *,
    address: str,
    tier: int,
    blocks_per_hour: int,
    active_leases: int = 0,
) -> ProviderFacts:
    """`tier` is the trust tier (1..7) the registry reports for us; `blocks_per_hour` the
    chain's (`chain.blocks_per_hour`); `active_leases` the GpuLeases not yet Closed."""
    bidding = spec.bidding
    return ProviderFacts(
        address=address,
        tier=tier,
        region=spec.region,
        tokens=tuple(
            AcceptedToken(
                address=token.address,
                symbol=token.symbol,
                terms=TokenTerms(
                    decimals=token.decimals,
                    usd_price=Decimal(token.usd_price),
                    blocks_per_hour=blocks_per_hour,
                ),
            )
            for token in spec.accepted_tokens
        ),
        prices=price_table(spec),
        limits=BiddingLimits(
            enabled=bidding.enabled,
            max_concurrent_leases=bidding.max_concurrent_leases,
            min_lease_blocks=bidding.min_lease_blocks,
            max_lease_blocks=bidding.max_lease_blocks,
        ),
        maintenance=spec.maintenance.enabled,
        active_leases=active_leases,
    )


def capacity_of(report: InventoryReport) -> Capacity:
    """What the offered nodes have free (see `Capacity.from_nodes` for reserved GPUs)."""
    return Capacity.from_nodes(report.nodes)


def inventory_reservations(book: ReservationBook) -> list[GpuReservation]:
    """The book's holds as `build_inventory(reservations=...)` takes them, so the advertised
    offer does not sell GPUs promised to a bid or a lease (one per order, node and model)."""
    held: list[GpuReservation] = []
    for reservation in book:
        for node, use in reservation.placement.by_node().items():
            held.extend(
                GpuReservation(
                    key=f"bid:{reservation.order_id}:{node}:{model}",
                    model=model,
                    gpus=gpus,
                    node=node,
                )
                for model, gpus in sorted(use.gpus.items())
            )
    return held
