"""Glue between the operator's objects and the pure bid engine: the ProviderNode spec as
`ProviderFacts`, the inventory as `Capacity`, the reservation book as inventory reservations.

No I/O here either; it lives in chain/ because market/ may not import the CRD models or the
inventory package (import-linter), and the bid engine (chain/bidding.py) is what needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from gpu_provider.api.v1alpha1.providernode import ProviderNodeSpec
from gpu_provider.inventory import GPU_RESOURCE, GpuReservation, InventoryReport
from gpu_provider.inventory.objects import pod_node, pod_requests
from gpu_provider.market.capacity import Capacity
from gpu_provider.market.eligibility import AcceptedToken, BiddingLimits, ProviderFacts
from gpu_provider.market.pricing import PriceTable, TokenTerms
from gpu_provider.market.reservations import HoldState, ReservationBook

__all__ = [
    "capacity_of",
    "inventory_reservations",
    "placed_lease_gpus",
    "price_table",
    "provider_facts",
]

_LEASE_NAMESPACE: Final = re.compile(r"lease-(\d+)")


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


def placed_lease_gpus(pods: Iterable[Mapping[str, Any]]) -> dict[tuple[int, str], int]:
    """GPUs the Pods of each lease hold, by (lease id, Node): the Pods in `lease-<id>` that
    are bound to a Node and not finished (what the inventory counts as allocated)."""
    placed: dict[tuple[int, str], int] = {}
    for pod in pods:
        match = _LEASE_NAMESPACE.fullmatch(str((pod.get("metadata") or {}).get("namespace")))
        node = pod_node(pod)
        gpus = pod_requests(pod).get(GPU_RESOURCE, 0)
        if match is None or node is None or gpus <= 0:
            continue
        key = (int(match.group(1)), node)
        placed[key] = placed.get(key, 0) + gpus
    return placed


def inventory_reservations(
    book: ReservationBook, placed: Mapping[tuple[int, str], int] | None = None
) -> list[GpuReservation]:
    """The book's holds as `build_inventory(reservations=...)` takes them, so the advertised
    offer does not sell GPUs promised to a bid or a lease (one per order, node and model).

    `placed` (`placed_lease_gpus`): what a won lease's Pods already hold on a Node is counted
    by the inventory as allocated, so its hold no longer takes those GPUs off the offer too
    (the hold itself lasts until the lease check releases it). The lease id is the order id
    (Spheron's SDK and contracts use one for the other).
    """
    held: list[GpuReservation] = []
    for reservation in book:
        for node, use in reservation.placement.by_node().items():
            running = 0
            if reservation.state is HoldState.LEASED and placed:
                running = placed.get((reservation.order_id, node), 0)
            for model, gpus in sorted(use.gpus.items()):
                # A Node has one GPU model, so its lease Pods' GPUs are of this one.
                taken = min(running, gpus)
                running -= taken
                if gpus - taken > 0:
                    held.append(
                        GpuReservation(
                            key=f"bid:{reservation.order_id}:{node}:{model}",
                            model=model,
                            gpus=gpus - taken,
                            node=node,
                        )
                    )
    return held
