"""Pure marketplace logic: the order spec codec, the GPU catalog and the price math.

Nothing here does I/O (import-linter enforces it): chain and controller code hand in strings,
labels and numbers, and get typed answers or a `ValueError` subclass saying what is wrong.
"""

from gpu_provider.market.catalog import (
    GpuCatalog,
    GpuModel,
    GpuSegment,
    GpuTier,
    PciDevice,
    default_catalog,
    parse_catalog,
)
from gpu_provider.market.codec import decode, encode
from gpu_provider.market.errors import OrderSpecError, PricingError, UnpricedModelError
from gpu_provider.market.pricing import (
    DEFAULT_TERMS,
    OrderQuote,
    PriceTable,
    Rounding,
    ServiceQuote,
    TokenTerms,
    affordable_price_per_block,
    base_units_per_block_to_usd_per_hour,
    bid_price_per_block,
    blocks_to_seconds,
    escrow_needed,
    quote_order,
    seconds_to_blocks,
    usd_per_hour_to_base_units_per_block,
)
from gpu_provider.market.servable import unservable_reasons
from gpu_provider.market.spec import (
    Endpoint,
    EndpointKind,
    GpuModelRef,
    GpuNeed,
    GpuRequest,
    OrderSpec,
    Placement,
    Service,
    StorageVolume,
    VramComparison,
    VramRequirement,
)

__all__ = [
    "DEFAULT_TERMS",
    "Endpoint",
    "EndpointKind",
    "GpuCatalog",
    "GpuModel",
    "GpuModelRef",
    "GpuNeed",
    "GpuRequest",
    "GpuSegment",
    "GpuTier",
    "OrderQuote",
    "OrderSpec",
    "OrderSpecError",
    "PciDevice",
    "Placement",
    "PriceTable",
    "PricingError",
    "Rounding",
    "Service",
    "ServiceQuote",
    "StorageVolume",
    "TokenTerms",
    "UnpricedModelError",
    "VramComparison",
    "VramRequirement",
    "affordable_price_per_block",
    "base_units_per_block_to_usd_per_hour",
    "bid_price_per_block",
    "blocks_to_seconds",
    "decode",
    "default_catalog",
    "encode",
    "escrow_needed",
    "parse_catalog",
    "quote_order",
    "seconds_to_blocks",
    "unservable_reasons",
    "usd_per_hour_to_base_units_per_block",
]
