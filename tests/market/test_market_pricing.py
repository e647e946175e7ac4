"""Price math: exact integer results, the rounding a provider relies on, order quotes."""

from __future__ import annotations

import ast
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import gpu_provider.market.pricing as pricing_module
from gpu_provider.market import (
    OrderSpec,
    PriceTable,
    PricingError,
    Rounding,
    TokenTerms,
    UnpricedModelError,
    affordable_price_per_block,
    base_units_per_block_to_usd_per_hour,
    bid_price_per_block,
    blocks_to_seconds,
    decode,
    escrow_needed,
    quote_order,
    seconds_to_blocks,
    usd_per_hour_to_base_units_per_block,
)
from gpu_provider.market.pricing import fraction_to_decimal

USDC = TokenTerms(decimals=6)


@pytest.mark.parametrize(
    ("usd_per_hour", "terms", "up", "down"),
    [
        ("2.50", TokenTerms(), 1388888888888889, 1388888888888888),
        (Decimal("2.5"), TokenTerms(), 1388888888888889, 1388888888888888),
        ("1", TokenTerms(), 555555555555556, 555555555555555),
        (18, TokenTerms(), 10**16, 10**16),  # divides exactly: both directions agree
        ("0", TokenTerms(), 0, 0),
        ("2.50", USDC, 1389, 1388),
        ("2.50", TokenTerms(usd_price="0.5"), 2777777777777778, 2777777777777777),
        ("2.50", TokenTerms(blocks_per_hour=3600), 694444444444445, 694444444444444),
        ("0.000001", TokenTerms(), 555555556, 555555555),
        ("123456.789", TokenTerms(), 68587105000000000000, 68587105000000000000),
    ],
)
def test_usd_per_hour_to_base_units_per_block_is_exact(
    usd_per_hour: str | Decimal | int, terms: TokenTerms, up: int, down: int
) -> None:
    assert bid_price_per_block(usd_per_hour, terms) == up
    assert affordable_price_per_block(usd_per_hour, terms) == down
    assert usd_per_hour_to_base_units_per_block(usd_per_hour, terms, rounding=Rounding.UP) == up
    assert usd_per_hour_to_base_units_per_block(usd_per_hour, terms, rounding=Rounding.DOWN) == down


def test_per_block_price_back_to_usd_is_exact() -> None:
    assert base_units_per_block_to_usd_per_hour(10**16) == Decimal(18)
    assert base_units_per_block_to_usd_per_hour(1388888888888889) == Decimal("2.5000000000000002")
    assert base_units_per_block_to_usd_per_hour(1389, USDC) == Decimal("2.5002")
    assert base_units_per_block_to_usd_per_hour(0) == 0


@pytest.mark.parametrize("amount", [2.5, float("nan"), True, None, [1]])
def test_floats_and_other_types_are_refused(amount: object) -> None:
    with pytest.raises(PricingError, match="must be a Decimal, an int or a decimal string"):
        bid_price_per_block(amount)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("-1", "must not be negative"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("2,50", "not a decimal"),
    ],
)
def test_bad_amounts_are_refused(amount: str, reason: str) -> None:
    with pytest.raises(PricingError, match=reason):
        bid_price_per_block(amount)


@pytest.mark.parametrize(
    "build",
    [
        lambda: PriceTable(cpu_core_usd_per_hour=0.5),
        lambda: PriceTable(gpu_usd_per_hour={"h100": 2.5}),
        lambda: TokenTerms(usd_price=1.0),
        lambda: TokenTerms(usd_price="0"),
        lambda: TokenTerms(blocks_per_hour=0),
        lambda: PriceTable(gpu_usd_per_hour={"H100": "1", "h100": "2"}),
    ],
)
def test_models_refuse_floats_and_nonsense(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_pricing_module_contains_no_float() -> None:
    """No float literal, no `float(...)`, no true division of ints that could produce one."""
    tree = ast.parse(Path(pricing_module.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), node.lineno
        assert not (isinstance(node, ast.Name) and node.id == "float"), node.lineno
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # Only Fraction / Fraction divisions are allowed: their operands are Fraction calls.
            operands = (node.left, node.right)
            assert any(
                isinstance(o, ast.Call) and getattr(o.func, "id", "") == "Fraction"
                for o in operands
            ), f"line {node.lineno}: a '/' whose operands are not Fractions"


_usd = st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False)
_terms = st.builds(
    TokenTerms,
    decimals=st.sampled_from([0, 6, 8, 18]),
    usd_price=st.decimals(
        min_value=Decimal("0.0001"),
        max_value=10**5,
        places=4,
        allow_nan=False,
        allow_infinity=False,
    ),
    blocks_per_hour=st.sampled_from([1, 7, 1800, 3600, 14400]),
)


@settings(max_examples=300, deadline=None)
@given(_usd, _terms)
def test_rounding_is_within_one_base_unit_in_the_stated_direction(
    usd: Decimal, terms: TokenTerms
) -> None:
    up = bid_price_per_block(usd, terms)
    down = affordable_price_per_block(usd, terms)
    assert 0 <= up - down <= 1
    back_up = base_units_per_block_to_usd_per_hour(up, terms)
    back_down = base_units_per_block_to_usd_per_hour(down, terms)
    assert back_down <= usd <= back_up  # the bid never under-charges, the budget never overspends
    if up > 0:
        assert base_units_per_block_to_usd_per_hour(up - 1, terms) < usd
    assert base_units_per_block_to_usd_per_hour(down + 1, terms) > usd
    # Converting an integer price to USD and back returns the same integer.
    assert bid_price_per_block(back_up, terms) == up
    assert affordable_price_per_block(back_down, terms) == down


@settings(max_examples=300, deadline=None)
@given(_usd, _usd, _terms)
def test_prices_are_monotonic(a: Decimal, b: Decimal, terms: TokenTerms) -> None:
    low, high = sorted((a, b))
    assert bid_price_per_block(low, terms) <= bid_price_per_block(high, terms)
    assert affordable_price_per_block(low, terms) <= affordable_price_per_block(high, terms)


@given(st.integers(0, 10**30), st.integers(0, 10**8))
def test_escrow_is_price_times_blocks(price: int, blocks: int) -> None:
    assert escrow_needed(price, blocks) == price * blocks


def test_escrow_refuses_negative_or_float() -> None:
    with pytest.raises(PricingError):
        escrow_needed(-1, 10)
    with pytest.raises(PricingError):
        escrow_needed(10, 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "blocks_per_hour", "blocks"),
    [(3600, 1800, 1800), (3601, 1800, 1801), (1, 1800, 1), (0, 1800, 0), (86400, 14400, 345600)],
)
def test_seconds_to_blocks_rounds_up(seconds: int, blocks_per_hour: int, blocks: int) -> None:
    assert seconds_to_blocks(seconds, blocks_per_hour) == blocks


@given(st.integers(0, 10**9), st.sampled_from([1, 7, 1800, 3600, 14400]))
def test_blocks_cover_the_duration_and_no_more_than_a_block_extra(
    seconds: int, blocks_per_hour: int
) -> None:
    blocks = seconds_to_blocks(seconds, blocks_per_hour)
    assert Fraction(blocks * 3600, blocks_per_hour) >= seconds
    assert blocks == 0 or Fraction((blocks - 1) * 3600, blocks_per_hour) < seconds
    assert blocks_to_seconds(blocks, blocks_per_hour) <= Fraction(blocks * 3600, blocks_per_hour)


def test_blocks_to_seconds_rounds_down() -> None:
    assert blocks_to_seconds(1801) == 3602
    assert blocks_to_seconds(1, 7) == 514


def test_fraction_to_decimal() -> None:
    assert fraction_to_decimal(Fraction(1, 2**30)) == Decimal(1) / Decimal(2**30)
    assert str(fraction_to_decimal(Fraction(5, 2))) == "2.5"
    with pytest.raises(PricingError, match="no exact decimal"):
        fraction_to_decimal(Fraction(1, 3))


# --- whole orders ---------------------------------------------------------------------------

ORDER = decode(
    "{n:mix,pr:{a:[]},s:["
    "{n:train,r:{i:1,c:{u:8000,a:[]},m:{u:68719476736,a:[]},"
    "s:[{n:data,a:[],u:107374182400},{n:shm,a:[{k:class,v:ram}],u:2147483648}],"
    "g:{a:[{k:vendor/nvidia/model/h100,v:true},{k:vendor/nvidia/model/a100-80g,v:true}],u:2},"
    "e:[]},c:1},"
    "{n:api,r:{i:2,c:{u:500,a:[]},m:{u:536870912,a:[]},s:[{n:d,a:[],u:1073741824}],"
    "g:{u:0,a:[]},e:[]},c:2}]}"
)
TABLE = PriceTable(
    gpu_usd_per_hour={"H100": "2.50", "a100-80g": "1.60"},
    cpu_core_usd_per_hour="0.01",
    memory_gib_usd_per_hour="0.005",
    storage_gib_usd_per_hour="0.0001",
)


def test_quote_sums_every_resource_of_every_replica() -> None:
    quote = quote_order(ORDER, TABLE, gpu_models="h100")
    # train: 2 x 2.50 + 8 x 0.01 + (64 + 2 shm) x 0.005 + 100 x 0.0001 = 5.42
    # api:   2 x (0.5 x 0.01 + 0.5 x 0.005 + 1 x 0.0001)               = 0.0152
    assert [(q.service, q.gpu_model, q.usd_per_hour) for q in quote.services] == [
        ("train", "h100", Decimal("5.42")),
        ("api", None, Decimal("0.0152")),
    ]
    assert quote.usd_per_hour == Decimal("5.4352")
    assert quote.price_per_block == bid_price_per_block("5.4352")


def test_quote_uses_the_model_assigned_per_service() -> None:
    quote = quote_order(ORDER, TABLE, gpu_models={"train": "a100-80g"})
    assert quote.services[0].usd_per_hour == Decimal("3.62")


def test_quote_rounds_once_from_the_exact_total() -> None:
    # Three services at 1/3 of a base unit each: rounding each would bid 3, not 1.
    table = PriceTable(cpu_core_usd_per_hour=Decimal(1) / Decimal(10**15))
    spec = decode(
        "{n:t,s:["
        + ",".join(f"{{n:s{i},r:{{i:{i},c:{{u:600}},m:{{u:1}},g:{{u:0}}}},c:1}}" for i in range(3))
        + "]}"
    )
    quote = quote_order(spec, table, TokenTerms(blocks_per_hour=1800))
    assert quote.price_per_block == bid_price_per_block(quote.usd_per_hour) == 1


def test_an_unpriced_model_is_a_clear_error() -> None:
    with pytest.raises(UnpricedModelError, match="'a100-80g' has no price") as caught:
        quote_order(
            ORDER,
            TABLE.model_copy(update={"gpu_usd_per_hour": {"h100": Decimal(2)}}),
            gpu_models="a100-80g",
        )
    assert caught.value.model == "a100-80g"


def test_a_model_the_service_does_not_accept_is_refused() -> None:
    with pytest.raises(PricingError, match="does not accept GPU model 'l4'"):
        quote_order(
            ORDER,
            TABLE.model_copy(update={"gpu_usd_per_hour": {"l4": Decimal(1)}}),
            gpu_models="l4",
        )


def test_a_gpu_service_without_an_assigned_model_is_refused() -> None:
    with pytest.raises(PricingError, match="no GPU model was assigned"):
        quote_order(ORDER, TABLE)


def test_cpu_only_orders_need_no_gpu_assignment() -> None:
    spec = OrderSpec(name="c", services=(ORDER.services[1],))
    assert quote_order(spec, TABLE).usd_per_hour == Decimal("0.0152")
