"""Whether an order is one we may bid on, before asking where it would run.

The facts come in as plain values: the order as the chain has it (`OrderFacts`) and the
provider as its ProviderNode and the registry describe it (`ProviderFacts`). `check_order`
applies the rules in the order that is cheapest to evaluate and gives the first that fails as a
`Skip`: a stable `SkipReason` (the metric label) and a sentence for the debug log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from gpu_provider.market.pricing import PriceTable, TokenTerms
from gpu_provider.market.spec import OrderSpec

MODE_PROVIDER: Final = 1
"""`OrderRequest.Mode`: 0 is Fizz, 1 Provider; we are a provider."""
ANY_VALUE: Final = "any"
"""What the SDK writes for `cpu_model` and `bandwidth` when the tenant did not choose."""


class SkipReason(StrEnum):
    """Why no bid was placed: the label values of the skipped-bids metric (never renamed)."""

    BIDDING_DISABLED = "bidding_disabled"
    MAINTENANCE = "maintenance"
    NOT_PROVIDER_MODE = "not_provider_mode"
    ORDER_NOT_OPEN = "order_not_open"
    TIER_NOT_HELD = "tier_not_held"
    TOKEN_NOT_ACCEPTED = "token_not_accepted"  # noqa: S105 - a label, not a secret
    REGION_MISMATCH = "region_mismatch"
    REGION_EXCLUDED = "region_excluded"
    DESIRED_OTHER_PROVIDER = "desired_other_provider"
    PROVIDER_EXCLUDED = "provider_excluded"
    LEASE_TOO_SHORT = "lease_too_short"
    LEASE_TOO_LONG = "lease_too_long"
    MAX_CONCURRENT_LEASES = "max_concurrent_leases"
    INVALID_SPEC = "invalid_spec"
    UNSERVABLE_SPEC = "unservable_spec"
    UNSUPPORTED_CONSTRAINT = "unsupported_constraint"
    UNKNOWN_GPU_MODEL = "unknown_gpu_model"
    GPU_MODEL_NOT_OFFERED = "gpu_model_not_offered"
    NOT_ENOUGH_VRAM = "not_enough_vram"
    NO_NODE_FITS = "no_node_fits"
    UNPRICED = "unpriced"
    PRICE_BELOW_OURS = "price_below_ours"
    BIDDING_CLOSED = "bidding_closed"
    ALREADY_BID = "already_bid"


@dataclass(frozen=True, slots=True)
class Skip:
    order_id: int
    reason: SkipReason
    message: str


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """An order as the chain has it: the `OrderCreated` fields plus the tiers
    (`getOrderById`; the event does not carry them) as on-chain enum values (tier N is N-1)."""

    order_id: int
    max_price: int
    num_blocks: int
    token: str
    spec: str
    mode: int = MODE_PROVIDER
    tiers: tuple[int, ...] = ()
    creator: str = ""
    created_block: int = 0


@dataclass(frozen=True, slots=True)
class AcceptedToken:
    """A token we take, and how USD/hour becomes its base units per block."""

    address: str
    symbol: str
    terms: TokenTerms


@dataclass(frozen=True, slots=True)
class BiddingLimits:
    """`spec.bidding` of the ProviderNode."""

    enabled: bool = True
    max_concurrent_leases: int | None = None
    min_lease_blocks: int = 1
    max_lease_blocks: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """Who we are on chain and what we sell at what price.

    `tier` is the trust tier 1..7 the registry holds for us; `active_leases` the leases we run
    now (open bids are counted separately, from the reservation book).
    """

    address: str
    tier: int
    region: str
    tokens: tuple[AcceptedToken, ...]
    prices: PriceTable
    limits: BiddingLimits = field(default_factory=BiddingLimits)
    maintenance: bool = False
    active_leases: int = 0

    def token(self, address: str) -> AcceptedToken | None:
        return next((t for t in self.tokens if t.address.lower() == address.lower()), None)


def _skip(order: OrderFacts, reason: SkipReason, message: str) -> Skip:
    return Skip(order.order_id, reason, f"order {order.order_id}: {message}")


def check_terms(order: OrderFacts, provider: ProviderFacts, open_bids: int = 0) -> Skip | None:
    """The rules on the order's on-chain fields and our own state (no spec needed)."""
    limits = provider.limits
    if not limits.enabled:
        return _skip(order, SkipReason.BIDDING_DISABLED, "bidding is disabled (spec.bidding)")
    if provider.maintenance:
        return _skip(order, SkipReason.MAINTENANCE, "the provider is in maintenance")
    if order.mode != MODE_PROVIDER:
        return _skip(order, SkipReason.NOT_PROVIDER_MODE, f"mode {order.mode} is not Provider")
    if order.tiers and provider.tier - 1 not in order.tiers:
        wanted = ", ".join(str(t + 1) for t in sorted(order.tiers))
        return _skip(
            order, SkipReason.TIER_NOT_HELD, f"asks for tiers {wanted}; we hold {provider.tier}"
        )
    if provider.token(order.token) is None:
        return _skip(order, SkipReason.TOKEN_NOT_ACCEPTED, f"token {order.token} is not accepted")
    if order.num_blocks < limits.min_lease_blocks:
        return _skip(
            order,
            SkipReason.LEASE_TOO_SHORT,
            f"{order.num_blocks} blocks is below minLeaseBlocks {limits.min_lease_blocks}",
        )
    if limits.max_lease_blocks is not None and order.num_blocks > limits.max_lease_blocks:
        return _skip(
            order,
            SkipReason.LEASE_TOO_LONG,
            f"{order.num_blocks} blocks is above maxLeaseBlocks {limits.max_lease_blocks}",
        )
    taken = provider.active_leases + open_bids
    if limits.max_concurrent_leases is not None and taken >= limits.max_concurrent_leases:
        # Open bids count: each may still win, and winning them all must stay within the limit.
        return _skip(
            order,
            SkipReason.MAX_CONCURRENT_LEASES,
            f"{provider.active_leases} leases and {open_bids} open bids reach "
            f"maxConcurrentLeases {limits.max_concurrent_leases}",
        )
    return None


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def check_placement(order: OrderFacts, spec: OrderSpec, provider: ProviderFacts) -> Skip | None:
    """The order's placement attributes: region, exclusions, desired providers."""
    where = spec.placement
    if where.region is not None and not _same(where.region, provider.region):
        return _skip(
            order,
            SkipReason.REGION_MISMATCH,
            f"asks for region {where.region!r}; we are in {provider.region!r}",
        )
    if where.region_exclude is not None and any(
        _same(r, provider.region) for r in where.region_exclude
    ):
        return _skip(order, SkipReason.REGION_EXCLUDED, f"excludes our region {provider.region!r}")
    if where.provider_exclude is not None and any(
        _same(p, provider.address) for p in where.provider_exclude
    ):
        return _skip(order, SkipReason.PROVIDER_EXCLUDED, "excludes our provider address")
    desired = (*(where.desired_provider or ()), *where.provider_wallets)
    if desired and not any(_same(p, provider.address) for p in desired):
        return _skip(
            order, SkipReason.DESIRED_OTHER_PROVIDER, f"asks for provider(s) {', '.join(desired)}"
        )
    # We cannot check a CPU model or bandwidth we do not know, nor attributes we do not
    # understand; a wrongly served order costs the tenant more than a missed bid costs us.
    for key, value in (("cpu_model", where.cpu_model), ("bandwidth", where.bandwidth)):
        if value is not None and value.strip() and not _same(value, ANY_VALUE):
            return _skip(
                order, SkipReason.UNSUPPORTED_CONSTRAINT, f"asks for {key} {value!r}, not checked"
            )
    if where.extra_attributes:
        keys = ", ".join(key for key, _ in where.extra_attributes)
        return _skip(
            order, SkipReason.UNSUPPORTED_CONSTRAINT, f"has placement attributes we ignore: {keys}"
        )
    return None
