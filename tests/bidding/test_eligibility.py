"""Every eligibility rule: an order that breaks it is skipped with its reason, and nothing else
about the order changes the answer. One table, one row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_provider.market.bidding import Bid, evaluate_order
from gpu_provider.market.eligibility import BiddingLimits, Skip, SkipReason
from gpu_provider.market.spec import GpuRequest, Placement, StorageVolume
from tests.bidding.helpers import (
    GIB,
    ME,
    OTHER_TOKEN,
    SOMEONE,
    cluster,
    gpu,
    order,
    provider,
    service,
    spec,
)

# (reason, order changes, provider changes, open bids)
RULES: list[tuple[SkipReason, dict[str, Any], dict[str, Any], int]] = [
    (SkipReason.BIDDING_DISABLED, {}, {"limits": BiddingLimits(enabled=False)}, 0),
    (SkipReason.MAINTENANCE, {}, {"maintenance": True}, 0),
    (SkipReason.NOT_PROVIDER_MODE, {"mode": 0}, {}, 0),
    (SkipReason.TIER_NOT_HELD, {"tiers": (0, 1, 2)}, {}, 0),
    (SkipReason.TOKEN_NOT_ACCEPTED, {"token": OTHER_TOKEN}, {}, 0),
    (
        SkipReason.LEASE_TOO_SHORT,
        {"num_blocks": 9},
        {"limits": BiddingLimits(min_lease_blocks=10)},
        0,
    ),
    (
        SkipReason.LEASE_TOO_LONG,
        {"num_blocks": 11},
        {"limits": BiddingLimits(max_lease_blocks=10)},
        0,
    ),
    (
        SkipReason.MAX_CONCURRENT_LEASES,
        {},
        {"limits": BiddingLimits(max_concurrent_leases=3), "active_leases": 3},
        0,
    ),
    (
        SkipReason.MAX_CONCURRENT_LEASES,
        {},
        {"limits": BiddingLimits(max_concurrent_leases=3), "active_leases": 1},
        2,
    ),
    (SkipReason.INVALID_SPEC, {"spec": "{n:ml,s:[]"}, {}, 0),
]

PLACEMENTS: list[tuple[SkipReason, Placement]] = [
    (SkipReason.REGION_MISMATCH, Placement(region="eu-west")),
    (SkipReason.REGION_EXCLUDED, Placement(region_exclude=("eu-west", "us-east"))),
    (SkipReason.PROVIDER_EXCLUDED, Placement(provider_exclude=(ME.lower(),))),
    (SkipReason.DESIRED_OTHER_PROVIDER, Placement(desired_provider=(SOMEONE,))),
    (SkipReason.DESIRED_OTHER_PROVIDER, Placement(provider_wallets=(SOMEONE,))),
    (SkipReason.UNSUPPORTED_CONSTRAINT, Placement(cpu_model="epyc-9654")),
    (SkipReason.UNSUPPORTED_CONSTRAINT, Placement(bandwidth="10gbps")),
    (SkipReason.UNSUPPORTED_CONSTRAINT, Placement(extra_attributes=(("datacenter", "fra1"),))),
]


def _reason(decision: Bid | Skip) -> SkipReason | None:
    return decision.reason if isinstance(decision, Skip) else None


def test_a_plain_h100_order_gets_a_bid() -> None:
    decision = evaluate_order(order(), provider(), cluster())
    assert isinstance(decision, Bid)
    assert decision.placement.gpu_models == {"py": "h100"}


@pytest.mark.parametrize(("reason", "order_changes", "provider_changes", "open_bids"), RULES)
def test_terms_rules(
    reason: SkipReason,
    order_changes: dict[str, Any],
    provider_changes: dict[str, Any],
    open_bids: int,
) -> None:
    changes = dict(order_changes)
    decision = evaluate_order(
        order(**changes), provider(**provider_changes), cluster(), open_bids=open_bids
    )
    assert _reason(decision) is reason, decision
    assert isinstance(decision, Skip)
    assert decision.message.startswith("order 7: ")


@pytest.mark.parametrize(("reason", "placement"), PLACEMENTS)
def test_placement_rules(reason: SkipReason, placement: Placement) -> None:
    decision = evaluate_order(order(spec(service(), placement=placement)), provider(), cluster())
    assert _reason(decision) is reason, decision


@pytest.mark.parametrize(
    "placement",
    [
        Placement(region="US-East"),
        Placement(region_exclude=("eu-west",)),
        Placement(desired_provider=(ME.lower(),)),
        Placement(provider_exclude=(SOMEONE,)),
        Placement(cpu_model="any", bandwidth="any"),
    ],
)
def test_placements_that_name_us_or_nobody_get_a_bid(placement: Placement) -> None:
    decision = evaluate_order(order(spec(service(), placement=placement)), provider(), cluster())
    assert isinstance(decision, Bid), decision


def test_an_order_with_no_tiers_is_open_to_every_tier() -> None:
    assert isinstance(evaluate_order(order(tiers=()), provider(tier=7), cluster()), Bid)


def test_the_lease_length_bounds_are_inclusive() -> None:
    limits = BiddingLimits(min_lease_blocks=10, max_lease_blocks=10)
    assert isinstance(evaluate_order(order(num_blocks=10), provider(limits=limits), cluster()), Bid)


@pytest.mark.parametrize(
    ("reason", "services"),
    [
        (SkipReason.UNSERVABLE_SPEC, (service(cpu=0),)),
        (SkipReason.UNSERVABLE_SPEC, (service(memory=0),)),
        (
            SkipReason.UNSERVABLE_SPEC,
            (service(storage=(StorageVolume(name="data", size_bytes=0),)),),
        ),
        (
            SkipReason.UNSUPPORTED_CONSTRAINT,
            (service(gpus=GpuRequest(units=1, extra_attributes=(("nvlink", "true"),))),),
        ),
        (SkipReason.UNKNOWN_GPU_MODEL, (service(gpus=gpu(1, "h999")),)),
        (SkipReason.GPU_MODEL_NOT_OFFERED, (service(gpus=gpu(1, "rtx4090")),)),
        (SkipReason.GPU_MODEL_NOT_OFFERED, (service(gpus=gpu(1, "l40s", "rtx4090")),)),
        (SkipReason.NO_NODE_FITS, (service(gpus=gpu(16, "h100")),)),
        (SkipReason.NO_NODE_FITS, (service(gpus=gpu(1, "h100"), cpu=193_000),)),
        (SkipReason.NO_NODE_FITS, (service(gpus=gpu(1, "h100"), memory=2049 * GIB),)),
        (SkipReason.NO_NODE_FITS, (service(gpus=gpu(5, "a100-80g")),)),
        (SkipReason.NOT_ENOUGH_VRAM, (service(gpus=gpu(1, "h100", vram="<50")),)),
    ],
)
def test_what_the_cluster_cannot_run(reason: SkipReason, services: tuple[Any, ...]) -> None:
    decision = evaluate_order(order(spec(*services)), provider(), cluster())
    assert _reason(decision) is reason, decision


def test_an_unknown_model_next_to_a_known_one_is_served_with_the_known_one() -> None:
    decision = evaluate_order(
        order(spec(service(gpus=gpu(1, "h999", "h100")))), provider(), cluster()
    )
    assert isinstance(decision, Bid)
    assert decision.placement.gpu_models == {"py": "h100"}


def test_a_model_we_have_but_do_not_price_is_not_offered() -> None:
    decision = evaluate_order(
        order(spec(service(gpus=gpu(1, "a100-80g")))),
        provider(prices=provider().prices.model_copy(update={"gpu_usd_per_hour": {"h100": 2}})),
        cluster(),
    )
    assert _reason(decision) is SkipReason.GPU_MODEL_NOT_OFFERED


def test_a_free_order_is_unpriced_not_bid_at_zero() -> None:
    free = provider().prices.model_copy(
        update={
            "gpu_usd_per_hour": {"h100": 0},
            "cpu_core_usd_per_hour": 0,
            "memory_gib_usd_per_hour": 0,
        }
    )
    decision = evaluate_order(order(), provider(prices=free), cluster())
    assert _reason(decision) is SkipReason.UNPRICED


def test_skip_reasons_are_stable_metric_labels() -> None:
    for reason in SkipReason:
        assert reason.value == reason.name.lower()
        assert reason.value.replace("_", "").isalpha()
