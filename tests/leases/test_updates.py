"""Which order updates a lease accepts: duration-only ones, at no lower price, within limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpu_provider.market import decode
from gpu_provider.market.leases import ChainLease, ChainOrder, LeaseState, OrderState
from gpu_provider.market.updates import update_decision
from gpu_provider.render import build_terms_patch

SPEC = (
    "{n:ml,s:[{n:py,r:{i:1,c:{u:4000},m:{u:17179869184},"
    "g:{u:1,a:[{k:vendor/nvidia/model/h100,v:true}]}},c:1}]}"
)
TWO_GPUS = SPEC.replace("g:{u:1,", "g:{u:2,")
PRICE = 1_000_000
LEASE = ChainLease(
    lease_id=3,
    fizz_id=0,
    request_id=3,
    accepted_price=PRICE,
    provider="0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    tenant="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    start_block=500,
    start_time=1_795_608_000,
    end_time=0,
    state=LeaseState.ACTIVE,
)
ORDER = ChainOrder(
    order_id=3,
    max_price=PRICE * 2,
    num_of_blocks=1800,
    token="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    creator=LEASE.tenant,
    state=OrderState.MATCHED,
    spec_text=SPEC,
    version=1,
    mode=1,
    tiers=(1, 2, 3),
    spec=decode(SPEC),
)


def test_longer_lease_on_the_same_resources_is_accepted() -> None:
    decision = update_decision(LEASE, ORDER, replace(ORDER, num_of_blocks=3600))
    assert (decision.accept, decision.reason, decision.num_of_blocks) == (
        True,
        "DurationOnly",
        3600,
    )


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (replace(ORDER, spec_text=TWO_GPUS, spec=decode(TWO_GPUS)), "ResourcesChanged"),
        (replace(ORDER, max_price=PRICE - 1, num_of_blocks=3600), "PriceBelowLease"),
        (replace(ORDER, token="0x" + "11" * 20), "TokenChanged"),
        (replace(ORDER, spec=None, spec_error="invalid order spec: x"), "SpecUndecodable"),
        (replace(ORDER, num_of_blocks=10_000), "TooLong"),
    ],
)
def test_update_that_no_longer_fits_is_declined_with_its_reason(
    update: ChainOrder, reason: str
) -> None:
    decision = update_decision(LEASE, ORDER, update, max_lease_blocks=5_000)
    assert (decision.accept, decision.reason) == (False, reason)
    assert decision.message


def test_accepted_update_patches_only_the_terms() -> None:
    renewed = replace(LEASE, start_block=900, start_time=1_795_608_800)
    patch = build_terms_patch(renewed, replace(ORDER, num_of_blocks=3600))
    assert patch == {
        "spec": {
            "acceptedPrice": str(PRICE),
            "startBlock": 900,
            "startTime": "2026-11-25T12:13:20Z",
            "numOfBlocks": 3600,
        }
    }
