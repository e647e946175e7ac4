"""A tenant's order YAML becomes the exact OrderSpec and on-chain terms it describes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gpu_provider.devnet.errors import DevnetError
from gpu_provider.devnet.orderfile import (
    order_terms,
    parse_duration,
    parse_order_yaml,
    parse_quantity,
)
from gpu_provider.market import (
    EndpointKind,
    GpuModelRef,
    TokenTerms,
    VramComparison,
    decode,
    encode,
)

EXAMPLE = Path(__file__).parents[2] / "manifests/examples/order.yaml"
GI = 2**30

MINIMAL = """
name: job
duration: 30m
maxUsdPerHour: 2
services:
  - name: train
    cpu: 2
    memory: 8Gi
    gpu: {units: 1, models: [rtx4090]}
"""


def test_the_example_order_describes_an_h100_or_a100_job_and_a_web_ui() -> None:
    order = parse_order_yaml(EXAMPLE.read_text())
    assert (order.duration_seconds, order.max_usd_per_hour, order.tiers) == (
        3600,
        Decimal("4.00"),
        (1, 2, 3),
    )
    spec = order.spec
    assert spec.name == "llm"
    assert spec.placement.region == "eu-west"
    vllm, ui = spec.services
    assert (vllm.name, vllm.resource_id, vllm.replicas) == ("vllm", 1, 1)
    assert (vllm.cpu_millicores, vllm.memory_bytes) == (4000, 32 * GI)
    assert [(v.name, v.size_bytes, v.storage_class, v.persistent) for v in vllm.storage] == [
        ("models", 100 * GI, "beta3", True),
        ("shm", 8 * GI, "ram", None),
    ]
    assert vllm.gpu.units == 1
    assert vllm.gpu.models == (
        GpuModelRef(vendor="nvidia", model="h100"),
        GpuModelRef(vendor="nvidia", model="a100-80g"),
    )
    assert vllm.gpu.vram is not None
    assert (vllm.gpu.vram.op, vllm.gpu.vram.percent) == (VramComparison.AT_LEAST, 80)
    assert [e.kind for e in vllm.endpoints] == [EndpointKind.SHARED_HTTP]
    assert (ui.name, ui.resource_id, ui.replicas, ui.cpu_millicores) == ("ui", 2, 2, 500)
    assert ui.gpu.units == 0
    assert spec.total_gpus == 1


def test_the_example_order_encodes_to_the_sdk_notation_and_back() -> None:
    spec = parse_order_yaml(EXAMPLE.read_text()).spec
    text = encode(spec)
    assert text.startswith("{n:llm,pr:{a:[{k:region,v:eu-west}]},s:[{n:vllm,r:{i:1,c:{u:4000,")
    assert "{k:vendor/nvidia/model/h100,v:true}" in text
    assert "{k:req_vram,v:>=80}" in text
    assert decode(text) == spec


@pytest.mark.parametrize(
    ("block_time_terms", "blocks", "max_price"),
    [
        # 1 h at 2 s blocks; 4 USD/h = 4e18 / 1800 per block, rounded down.
        (TokenTerms(), 1800, 4 * 10**18 // 1800),
        # 1 s blocks: twice the blocks, half the price per block.
        (TokenTerms(blocks_per_hour=3600), 3600, 4 * 10**18 // 3600),
        # A 6-decimal token.
        (TokenTerms(decimals=6), 1800, 4 * 10**6 // 1800),
    ],
)
def test_terms_follow_the_market_price_math(
    block_time_terms: TokenTerms, blocks: int, max_price: int
) -> None:
    terms = order_terms(parse_order_yaml(EXAMPLE.read_text()), block_time_terms)
    assert (terms.num_blocks, terms.max_price_per_block) == (blocks, max_price)
    assert terms.escrow == blocks * max_price
    # Rounded down: the order never promises more than the tenant's USD budget.
    assert terms.escrow <= 4 * 10**block_time_terms.decimals


def test_a_duration_between_blocks_is_rounded_up_so_all_of_it_is_paid_for() -> None:
    order = parse_order_yaml(MINIMAL.replace("30m", "91s"))
    assert order_terms(order, TokenTerms()).num_blocks == 46


def test_a_budget_below_one_base_unit_per_block_is_refused() -> None:
    order = parse_order_yaml(MINIMAL.replace("maxUsdPerHour: 2", "maxUsdPerHour: '0.001'"))
    with pytest.raises(DevnetError, match="less than one token base unit per block"):
        order_terms(order, TokenTerms(decimals=6))


@pytest.mark.parametrize(
    ("written", "usd"),
    [("2", "2"), ("'3.50'", "3.50"), ("3.5", "3.5"), ("0.1", "0.1"), ("12", "12")],
)
def test_the_budget_is_exactly_what_was_written(written: str, usd: str) -> None:
    order = parse_order_yaml(MINIMAL.replace("maxUsdPerHour: 2", f"maxUsdPerHour: {written}"))
    assert order.max_usd_per_hour == Decimal(usd)


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ("secured", (1, 2, 3)),
        ("community", (4, 5, 6, 7)),
        ("any", tuple(range(1, 8))),
        ("[2, 1]", (1, 2)),
    ],
)
def test_trust_tiers(tiers: str, expected: tuple[int, ...]) -> None:
    assert parse_order_yaml(MINIMAL + f"tiers: {tiers}\n").tiers == expected


def test_tiers_default_to_any() -> None:
    assert parse_order_yaml(MINIMAL).tiers == tuple(range(1, 8))


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("512Mi", 512 * 2**20),
        ("32Gi", 32 * GI),
        ("1.5Gi", 3 * GI // 2),
        ("1Ti", 2**40),
        ("1G", 10**9),
        ("2k", 2000),
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_quantity(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12XB", "unknown unit"),
        ("lots", "not a size"),
        ("1.5", "not a whole number of bytes"),
        ("0.3Ki", "not a whole number of bytes"),
        (True, "must be a number"),
    ],
)
def test_bad_sizes(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quantity(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("90s", 90),
        ("45m", 2700),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1h 30m", 5400),
    ],
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1w", "not a duration"),
        ("h", "not a duration"),
        ("1h30", "not a duration"),
        ("soon", "not a duration"),
        ("0s", "longer than zero"),
        (0, "longer than zero"),
        (-5, "longer than zero"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("cpu", "millicores"), [("2", 2000), ("0.5", 500), ("'500m'", 500), ("'1.25'", 1250)]
)
def test_cpu(cpu: str, millicores: int) -> None:
    order = parse_order_yaml(MINIMAL.replace("cpu: 2", f"cpu: {cpu}"))
    assert order.spec.services[0].cpu_millicores == millicores


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("models: [rtx4090]", "models: [h1000]"), "unknown GPU model 'h1000'"),
        (("memory: 8Gi", "memroy: 8Gi"), "memroy"),
        (("memory: 8Gi", "memory: 8XB"), "unknown unit"),
        (("duration: 30m", "duration: 1w"), "not a duration"),
        (("maxUsdPerHour: 2", "maxUsdPerHour: 0"), "more than zero"),
        (("maxUsdPerHour: 2", "maxUsdPerHour: cheap"), "not a number"),
        (("cpu: 2", "cpu: 0.0001"), "finer than a millicore"),
        (("gpu: {units: 1, models: [rtx4090]}", "gpu: {units: 1, vram: '>>80'}"), "req_vram"),
        (("name: job", "name: 'a,b'"), "must not contain ','"),
    ],
)
def test_mistakes_are_named(change: tuple[str, str], message: str) -> None:
    with pytest.raises(DevnetError, match=message) as refused:
        parse_order_yaml(MINIMAL.replace(*change), "order.yaml")
    assert str(refused.value).startswith("order.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("name: [unclosed", "not valid YAML"),
        (MINIMAL + "tiers: [0, 8]\n", "from 1"),
        (MINIMAL + "tiers: [1, 1]\n", "listed twice"),
        ("name: x\nduration: 1h\nmaxUsdPerHour: 1\nservices: []\n", "services"),
    ],
)
def test_unusable_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(DevnetError, match=message):
        parse_order_yaml(text)
