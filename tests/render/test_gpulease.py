"""The GpuLease a matched lease becomes: pinned by golden files, and refused with a reason when
the order cannot be one.

Set UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change (and review the diff).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_provider.api.v1alpha1.gpulease import GpuLeaseSpec, GpuLeaseStatus, Placement
from gpu_provider.devnet.orderfile import parse_order_yaml
from gpu_provider.market import decode
from gpu_provider.market.capacity import OrderPlacement, ReplicaPlacement
from gpu_provider.market.leases import ChainLease, ChainOrder, LeaseState, OrderState
from gpu_provider.render import (
    LEASE_ID_LABEL,
    LeaseNotRepresentable,
    ProviderNodeRef,
    build_gpulease,
    placement_status,
)

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE_ORDER = Path(__file__).parents[2] / "manifests/examples/order.yaml"
TENANT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PROVIDER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NODE = ProviderNodeRef(name="devnet-provider", uid="6f1c1b9e-3c1e-4f1e-9a43-0b8d2f7e5a10")
TAKEN_IN = datetime(2026, 11, 25, 12, 0, 4, tzinfo=UTC)


def _lease(**changes: Any) -> ChainLease:
    lease = ChainLease(
        lease_id=42,
        fizz_id=0,
        request_id=42,
        accepted_price=1_383_333_333_333_333,
        provider=PROVIDER,
        tenant=TENANT,
        start_block=1200,
        start_time=1_795_608_000,
        end_time=0,
        state=LeaseState.ACTIVE,
    )
    return replace(lease, **changes)


def _order(spec_text: str | None = None, **changes: Any) -> ChainOrder:
    if spec_text is None:
        spec = parse_order_yaml(EXAMPLE_ORDER.read_text(), "order.yaml").spec
        from gpu_provider.market import encode

        spec_text = encode(spec)
    order = ChainOrder(
        order_id=42,
        max_price=2_222_222_222_222_222,
        num_of_blocks=1800,
        token=TOKEN,
        creator=TENANT,
        state=OrderState.MATCHED,
        spec_text=spec_text,
        version=1,
        mode=1,
        tiers=(1, 2, 3),
        spec=decode(spec_text),
    )
    return replace(order, **changes)


def _golden(name: str, document: Any) -> None:
    path = GOLDEN / name
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs: run with UPDATE_GOLDEN=1 and review"


def test_example_order_becomes_gpulease_awaiting_its_manifest() -> None:
    rendered = build_gpulease(
        _lease(),
        _order(),
        NODE,
        "gpu-provider-system",
        placement=Placement(node="gpu-node-3", gpus=1, model="h100"),
        taken_in_at=TAKEN_IN,
    )
    _golden("gpulease-example.yaml", {"object": rendered.body, "status": rendered.status})
    assert rendered.name == "lease-42"
    # What `kubectl get gl` shows: the order's GPUs and the reserved node.
    spec = GpuLeaseSpec.model_validate(rendered.body["spec"])
    assert spec.resources.total_gpus == 1
    assert [s.name for s in spec.resources.services] == ["vllm", "ui"]
    assert spec.resources.services[0].gpu.models == ["h100", "a100-80g"]
    assert spec.resources.services[0].gpu.min_free_vram_percent == 80
    assert spec.resources.services[1].replicas == 2
    status = GpuLeaseStatus.model_validate(rendered.status)
    assert status.phase == "AwaitingManifest"
    assert status.placement == Placement(node="gpu-node-3", gpus=1, model="h100")
    assert status.matched_at == TAKEN_IN


def test_gpulease_is_owned_by_its_provider_node_and_labelled_for_selection() -> None:
    rendered = build_gpulease(_lease(), _order(), NODE, "ops", taken_in_at=TAKEN_IN)
    meta = rendered.body["metadata"]
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ProviderNode",
        NODE.name,
        NODE.uid,
        True,
    )
    assert meta["namespace"] == "ops"
    assert meta["labels"][LEASE_ID_LABEL] == "42"
    assert meta["labels"]["gpuprovider.dev/tenant"] == TENANT.lower()
    assert meta["labels"]["gpuprovider.dev/provider-node"] == NODE.name
    assert "placement" not in rendered.status  # nothing reserved: nothing claimed


def test_lease_terminated_before_intake_is_recorded_as_terminated() -> None:
    rendered = build_gpulease(
        _lease(state=LeaseState.TERMINATED, end_time=1_795_608_100),
        _order(),
        NODE,
        "ops",
        taken_in_at=TAKEN_IN,
    )
    assert rendered.status["chainState"] == "Terminated"


def test_several_volumes_named_default_and_a_mixed_case_model_render() -> None:
    text = (
        "{n:west,s:[{n:py,r:{i:1,c:{u:8000},m:{u:17179869184},"
        "s:[{n:default,a:[{k:class,v:ram},{k:persistent,v:false}],u:1073741824},"
        "{n:default,a:[{k:class,v:beta3},{k:persistent,v:true}],u:214748364800}],"
        "g:{u:2,a:[{k:vendor/nvidia/model/rtx3090Ti,v:true},{k:req_vram,v:>50}]},"
        "e:[{k:1,s:0}]},c:1}]}"
    )
    rendered = build_gpulease(_lease(), _order(text), NODE, "ops", taken_in_at=TAKEN_IN)
    _golden("gpulease-volumes.yaml", rendered.body["spec"])
    service = rendered.body["spec"]["resources"]["services"][0]
    assert [v["storageClass"] for v in service["storage"]] == ["ram", "beta3"]
    assert service["gpu"] == {"units": 2, "models": ["rtx3090ti"], "minFreeVramPercent": 50}


@pytest.mark.parametrize(
    ("spec_text", "reason"),
    [
        ("{n:cpu,s:[{n:web,r:{i:1,c:{u:1000},m:{u:1073741824},g:{u:0}},c:1}]}", "asks for no GPU"),
        (
            "{n:g,s:[{n:Web_1,r:{i:1,c:{u:1000},m:{u:1073741824},"
            "g:{u:1,a:[{k:vendor/nvidia/model/h100,v:true}]}},c:1}]}",
            "name",
        ),
        (
            "{n:g,s:[{n:web,r:{i:1,c:{u:0},m:{u:1073741824},"
            "g:{u:1,a:[{k:vendor/nvidia/model/h100,v:true}]}},c:1}]}",
            "cpuMillis",
        ),
    ],
)
def test_order_that_cannot_be_a_gpulease_is_refused_with_the_reason(
    spec_text: str, reason: str
) -> None:
    with pytest.raises(LeaseNotRepresentable, match=reason):
        build_gpulease(_lease(), _order(spec_text), NODE, "ops", taken_in_at=TAKEN_IN)


def test_undecodable_order_is_refused_with_the_decoder_reason() -> None:
    order = replace(_order(), spec=None, spec_error="invalid order spec at s[0]: broken")
    with pytest.raises(LeaseNotRepresentable, match="does not decode: invalid order spec"):
        build_gpulease(_lease(), order, NODE, "ops", taken_in_at=TAKEN_IN)


def test_reserved_placement_becomes_the_status_placement() -> None:
    def replica(service: str, node: str, model: str | None, gpus: int) -> ReplicaPlacement:
        return ReplicaPlacement(service, 0, node, model, gpus, 1000, 2**30)

    one_node = OrderPlacement(
        (replica("vllm", "gpu-3", "h100", 2), replica("ui", "cpu-1", None, 0))
    )
    assert placement_status(one_node) == Placement(node="gpu-3", gpus=2, model="h100")
    spread = OrderPlacement(
        (replica("a", "gpu-3", "h100", 1), replica("b", "gpu-4", "a100-80g", 1))
    )
    assert placement_status(spread) == Placement(node=None, gpus=2, model=None)
