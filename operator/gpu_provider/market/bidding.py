"""`evaluate_order`: bid (at what price, placed where) or skip (why), for one order.

Pure: the chain side hands in the order as the chain has it, the provider's facts and the
capacity left after reservations, and sends the bid this returns. Rules, cheapest first:
terms (bidding on, not in maintenance, Provider mode, our tier, our token, lease length, the
concurrent-lease limit), the spec (decodes, is servable, placement attributes), where it runs
(`fit.place_order`), and last the price.

We bid our own price, never the order's `maxPrice`: the matchmaker takes the cheapest eligible
bid and the lease pays the bid, so a bid at `maxPrice` loses to every honest competitor, and
what we charge is what the ProviderNode's pricing says, no more. The price is the exact USD/hour
of what we would allocate (`quote_order`, the models chosen by the placement) in the order's
token, rounded UP to whole base units per block, so we never earn less than the configured rate;
an order whose `maxPrice` is below it is skipped (`price_below_ours`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gpu_provider.market.capacity import Capacity, OrderPlacement
from gpu_provider.market.catalog import GpuCatalog, default_catalog
from gpu_provider.market.codec import decode
from gpu_provider.market.eligibility import (
    OrderFacts,
    ProviderFacts,
    Skip,
    SkipReason,
    check_placement,
    check_terms,
)
from gpu_provider.market.errors import OrderSpecError, PricingError
from gpu_provider.market.fit import Miss, candidate_models, place_order
from gpu_provider.market.pricing import quote_order
from gpu_provider.market.servable import unservable_reasons
from gpu_provider.market.spec import OrderSpec

__all__ = ["Bid", "BidDecision", "evaluate_order", "evaluate_spec", "placement_for"]


@dataclass(frozen=True, slots=True)
class Bid:
    """Bid `price_per_block` (base units of `token`) on the order, running it as `placement`."""

    order_id: int
    price_per_block: int
    token: str
    usd_per_hour: Decimal
    placement: OrderPlacement
    spec: OrderSpec


BidDecision = Bid | Skip


def evaluate_order(
    order: OrderFacts,
    provider: ProviderFacts,
    capacity: Capacity,
    *,
    open_bids: int = 0,
    catalog: GpuCatalog | None = None,
) -> BidDecision:
    """Decide on one order; `capacity` must already be net of reservations and allocations,
    `open_bids` the bids not yet matched (they count towards maxConcurrentLeases)."""
    skip = check_terms(order, provider, open_bids)
    if skip is not None:
        return skip
    try:
        spec = decode(order.spec)
    except OrderSpecError as error:
        return Skip(order.order_id, SkipReason.INVALID_SPEC, f"order {order.order_id}: {error}")
    return evaluate_spec(order, spec, provider, capacity, catalog=catalog)


def evaluate_spec(
    order: OrderFacts,
    spec: OrderSpec,
    provider: ProviderFacts,
    capacity: Capacity,
    *,
    catalog: GpuCatalog | None = None,
) -> BidDecision:
    """The spec-dependent half of `evaluate_order`, for a spec already decoded."""
    skip = check_placement(order, spec, provider)
    if skip is not None:
        return skip
    unservable = unservable_reasons(spec)
    if unservable:
        reason = (
            SkipReason.UNSUPPORTED_CONSTRAINT
            if all("not understood" in r for r in unservable)
            else SkipReason.UNSERVABLE_SPEC
        )
        return _skip(order, reason, "; ".join(unservable))
    placement = placement_for(order, spec, provider, capacity, catalog=catalog)
    if isinstance(placement, Skip):
        return placement
    return _price(order, spec, provider, placement)


def placement_for(
    order: OrderFacts,
    spec: OrderSpec,
    provider: ProviderFacts,
    capacity: Capacity,
    *,
    catalog: GpuCatalog | None = None,
) -> OrderPlacement | Skip:
    """Where the order would run on `capacity` at our cheapest fitting models, or why not.

    Also what a restarted engine uses to hold GPUs again for a bid it placed before.
    """
    catalog = catalog or default_catalog()
    candidates: dict[str, tuple[str, ...]] = {}
    for service in spec.services:
        if service.gpu.units:
            models = candidate_models(service, capacity, provider.prices, catalog)
            if isinstance(models, Miss):
                return _skip(order, models.reason, models.message)
            candidates[service.name] = models
    placement = place_order(spec, capacity, candidates)
    if isinstance(placement, Miss):
        return _skip(order, placement.reason, placement.message)
    return placement


def _price(
    order: OrderFacts, spec: OrderSpec, provider: ProviderFacts, placement: OrderPlacement
) -> BidDecision:
    token = provider.token(order.token)
    assert token is not None, "check_terms refused orders in tokens we do not accept"
    try:
        quote = quote_order(spec, provider.prices, token.terms, gpu_models=placement.gpu_models)
    except PricingError as error:
        return _skip(order, SkipReason.UNPRICED, str(error))
    if quote.price_per_block == 0:
        # The contract refuses a bid of 0 (InvalidAmount); a free order is a pricing mistake.
        return _skip(order, SkipReason.UNPRICED, "our price for it is 0 per block: check pricing")
    if order.max_price < quote.price_per_block:
        return _skip(
            order,
            SkipReason.PRICE_BELOW_OURS,
            f"maxPrice {order.max_price} per block is below our {quote.price_per_block} "
            f"({quote.usd_per_hour} USD/h in {token.symbol})",
        )
    return Bid(
        order_id=order.order_id,
        price_per_block=quote.price_per_block,
        token=token.address,
        usd_per_hour=quote.usd_per_hour,
        placement=placement,
        spec=spec,
    )


def _skip(order: OrderFacts, reason: SkipReason, message: str) -> Skip:
    return Skip(order.order_id, reason, f"order {order.order_id}: {message}")
