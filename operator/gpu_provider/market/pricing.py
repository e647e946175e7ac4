"""Price math: USD per hour <-> token base units per block, order quotes, escrow, durations.

Everything is exact: amounts enter as `Decimal`, `int` or decimal strings, are carried as
`Fraction`s, and become integers only at the single rounding step the caller names. A float
anywhere would make a bid differ by a few wei between runs or machines, and a float is
rejected at the door.

    base units per block = usd_per_hour * 10**decimals / (token_usd * blocks_per_hour)

Rounding: a provider's bid is rounded UP (`bid_price_per_block`), so the provider never
charges less than the USD rate it configured; the error is below one base unit per block.
Rounding DOWN is there for the other question (the most a budget buys).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gpu_provider.market.errors import PricingError, UnpricedModelError
from gpu_provider.market.spec import OrderSpec, Service

DEFAULT_BLOCKS_PER_HOUR: Final = 1800
"""The SDK's assumption: one block every 2 seconds."""
DEFAULT_TOKEN_DECIMALS: Final = 18
SECONDS_PER_HOUR: Final = 3600
_GIB: Final = 2**30
_MILLICORES_PER_CORE: Final = 1000

AmountInput = Decimal | int | str
"""What callers may pass as a USD amount: never a float."""


class Rounding(StrEnum):
    UP = "up"
    DOWN = "down"


def to_decimal(value: object, what: str = "amount") -> Decimal:
    """An exact, finite, non-negative Decimal from Decimal/int/str; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise PricingError(
            f"{what} must be a Decimal, an int or a decimal string, not {type(value).__name__}"
        )
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise PricingError(f"{what} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise PricingError(f"{what} must be a finite number, got {value!r}")
    if number < 0:
        raise PricingError(f"{what} must not be negative, got {value!r}")
    return number


def _decimal_field(value: object) -> Decimal:
    try:
        return to_decimal(value)
    except PricingError as exc:
        raise ValueError(str(exc)) from None


UsdAmount = Annotated[Decimal, BeforeValidator(_decimal_field)]
"""A non-negative USD amount, exact (floats rejected)."""


def fraction_to_decimal(value: Fraction) -> Decimal:
    """The exact Decimal of a fraction whose denominator has only the factors 2 and 5.

    Every amount here is such a fraction (decimal inputs, millicores / 1000, bytes / 2**30),
    so results are exact; the Decimal is built from a string, which never rounds.
    """
    numerator, denominator = value.numerator, value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        raise PricingError(f"{value} has no exact decimal representation")
    exponent = max(twos, fives)
    digits = numerator * 10**exponent // value.denominator
    while exponent > 0 and digits % 10 == 0:
        digits //= 10
        exponent -= 1
    return Decimal(f"{digits}E-{exponent}")


def _divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    if rounding is Rounding.UP:
        return -(-numerator // denominator)
    return numerator // denominator


class TokenTerms(BaseModel):
    """How a payment token and the chain turn USD/hour into base units per block."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decimals: int = Field(default=DEFAULT_TOKEN_DECIMALS, ge=0, le=36)
    usd_price: UsdAmount = Decimal(1)
    """USD value of one whole token (1 for a USD stablecoin)."""
    blocks_per_hour: int = Field(default=DEFAULT_BLOCKS_PER_HOUR, ge=1, le=3_600_000)

    @field_validator("usd_price")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("a token's USD price must be greater than zero")
        return value


DEFAULT_TERMS: Final = TokenTerms()


def usd_per_hour_to_base_units_per_block(
    usd_per_hour: AmountInput, terms: TokenTerms = DEFAULT_TERMS, *, rounding: Rounding
) -> int:
    """Token base units per block for a USD/hour rate, rounded as the caller says."""
    exact = _per_block_exact(Fraction(to_decimal(usd_per_hour, "USD per hour")), terms)
    return _divide(exact.numerator, exact.denominator, rounding)


def _per_block_factor(terms: TokenTerms) -> Fraction:
    """Base units per block for 1 USD/hour."""
    return Fraction(10**terms.decimals) / (Fraction(terms.usd_price) * terms.blocks_per_hour)


def _per_block_exact(usd_per_hour: Fraction, terms: TokenTerms) -> Fraction:
    return usd_per_hour * _per_block_factor(terms)


def bid_price_per_block(usd_per_hour: AmountInput, terms: TokenTerms = DEFAULT_TERMS) -> int:
    """A bid price: rounded UP so the provider never earns less than its USD rate."""
    return usd_per_hour_to_base_units_per_block(usd_per_hour, terms, rounding=Rounding.UP)


def affordable_price_per_block(usd_per_hour: AmountInput, terms: TokenTerms = DEFAULT_TERMS) -> int:
    """The most a USD/hour budget pays per block: rounded DOWN so it never overspends."""
    return usd_per_hour_to_base_units_per_block(usd_per_hour, terms, rounding=Rounding.DOWN)


def base_units_per_block_to_usd_per_hour(
    base_units_per_block: int, terms: TokenTerms = DEFAULT_TERMS
) -> Decimal:
    """The exact USD/hour a per-block price pays (no rounding: the result is a finite decimal)."""
    if isinstance(base_units_per_block, bool) or not isinstance(base_units_per_block, int):
        raise PricingError("a per-block price must be an int of token base units")
    if base_units_per_block < 0:
        raise PricingError("a per-block price must not be negative")
    return fraction_to_decimal(Fraction(base_units_per_block) / _per_block_factor(terms))


def escrow_needed(max_price_per_block: int, num_blocks: int) -> int:
    """What the tenant must lock for an order: maxPrice x numOfBlocks, in base units."""
    for name, value in (("max price per block", max_price_per_block), ("blocks", num_blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PricingError(f"{name} must be a non-negative int, got {value!r}")
    return max_price_per_block * num_blocks


def seconds_to_blocks(seconds: int, blocks_per_hour: int = DEFAULT_BLOCKS_PER_HOUR) -> int:
    """Blocks covering a duration, rounded UP so the whole duration is paid for."""
    _check_duration(seconds, blocks_per_hour)
    return _divide(seconds * blocks_per_hour, SECONDS_PER_HOUR, Rounding.UP)


def blocks_to_seconds(blocks: int, blocks_per_hour: int = DEFAULT_BLOCKS_PER_HOUR) -> int:
    """Seconds a number of blocks lasts, rounded DOWN (the runtime the lease guarantees)."""
    _check_duration(blocks, blocks_per_hour)
    return _divide(blocks * SECONDS_PER_HOUR, blocks_per_hour, Rounding.DOWN)


def _check_duration(amount: int, blocks_per_hour: int) -> None:
    for value in (amount, blocks_per_hour):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PricingError(
                f"durations and block rates must be non-negative ints, got {value!r}"
            )
    if blocks_per_hour == 0:
        raise PricingError("blocks per hour must be at least 1")


class PriceTable(BaseModel):
    """A provider's prices in USD per hour: per GPU by catalog short name, and per unit.

    RAM-backed volumes (`class: ram`) are priced as memory: they take node RAM, not disk.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gpu_usd_per_hour: dict[str, UsdAmount] = Field(default_factory=dict)
    cpu_core_usd_per_hour: UsdAmount = Decimal(0)
    memory_gib_usd_per_hour: UsdAmount = Decimal(0)
    storage_gib_usd_per_hour: UsdAmount = Decimal(0)

    @field_validator("gpu_usd_per_hour")
    @classmethod
    def _lowercase_models(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        lowered = {name.strip().casefold(): price for name, price in prices.items()}
        if len(lowered) != len(prices):
            raise ValueError("a GPU model is priced twice (names are case-insensitive)")
        return lowered

    def gpu_price(self, short_name: str) -> Decimal:
        """USD/hour for one GPU of a model; UnpricedModelError when it has no price."""
        price = self.gpu_usd_per_hour.get(short_name.strip().casefold())
        if price is None:
            raise UnpricedModelError(short_name)
        return price


class ServiceQuote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    gpu_model: str | None
    usd_per_hour: Decimal
    """For all replicas of the service, exact."""


class OrderQuote(BaseModel):
    """What an order costs at a provider's prices: exact USD/hour and the per-block bid."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd_per_hour: Decimal
    price_per_block: int
    """Token base units per block, rounded up once from the exact total."""
    services: tuple[ServiceQuote, ...]


def quote_order(
    spec: OrderSpec,
    table: PriceTable,
    terms: TokenTerms = DEFAULT_TERMS,
    *,
    gpu_models: Mapping[str, str] | str | None = None,
) -> OrderQuote:
    """Price a whole order; the per-block price is rounded up once, from the exact total.

    `gpu_models` says which catalog model serves each GPU-using service (service name ->
    short name), or one short name for all of them: the provider decides what it allocates,
    so the quote prices what it will actually give. Every assigned model must be one the
    service accepts and one the table prices.
    """
    quotes: list[ServiceQuote] = []
    total = Fraction(0)
    for service in spec.services:
        model = _assigned_model(service, gpu_models)
        cost = _service_cost(service, model, table)
        total += cost
        quotes.append(
            ServiceQuote(
                service=service.name, gpu_model=model, usd_per_hour=fraction_to_decimal(cost)
            )
        )
    exact = _per_block_exact(total, terms)
    return OrderQuote(
        usd_per_hour=fraction_to_decimal(total),
        price_per_block=_divide(exact.numerator, exact.denominator, Rounding.UP),
        services=tuple(quotes),
    )


def _assigned_model(service: Service, gpu_models: Mapping[str, str] | str | None) -> str | None:
    if service.gpu.units == 0:
        return None
    if isinstance(gpu_models, str):
        model: str | None = gpu_models
    else:
        model = None if gpu_models is None else gpu_models.get(service.name)
    if model is None:
        raise PricingError(f"service {service.name!r} needs GPUs but no GPU model was assigned")
    if not service.gpu.accepts(model):
        raise PricingError(f"service {service.name!r} does not accept GPU model {model!r}")
    return model


def _service_cost(service: Service, model: str | None, table: PriceTable) -> Fraction:
    """USD/hour for all replicas of one service, exact."""
    ram_bytes = sum(volume.size_bytes for volume in service.storage if volume.is_ram)
    disk_bytes = sum(volume.size_bytes for volume in service.storage if not volume.is_ram)
    cores = Fraction(service.cpu_millicores, _MILLICORES_PER_CORE)
    memory_gib = Fraction(service.memory_bytes + ram_bytes, _GIB)
    disk_gib = Fraction(disk_bytes, _GIB)
    per_replica = (
        Fraction(table.cpu_core_usd_per_hour) * cores
        + Fraction(table.memory_gib_usd_per_hour) * memory_gib
        + Fraction(table.storage_gib_usd_per_hour) * disk_gib
    )
    if model is not None:
        per_replica += Fraction(table.gpu_price(model)) * service.gpu.units
    return per_replica * service.replicas
