"""The order spec codec: the SDK's vectors, our own examples, and every way to get it wrong."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gpu_provider.market import (
    EndpointKind,
    GpuModelRef,
    OrderSpec,
    OrderSpecError,
    Placement,
    VramComparison,
    VramRequirement,
    decode,
    encode,
)
from gpu_provider.market.placement import LIST_KEYS, split_list
from gpu_provider.market.spec import (
    MAX_SERVICES,
    MAX_SPEC_CHARS,
    PLACEMENT_KEYS,
    Endpoint,
    GpuRequest,
    Service,
    StorageVolume,
)
from tests.market.market_reference import reference_params

# Our own example (not one of the reference vectors): one L40S service with a persistent volume.
BASE = (
    "{n:eu,pr:{a:[{k:region,v:eu-central}]},s:[{n:llm,r:{i:1,c:{u:2000,a:[]},"
    "m:{u:8589934592,a:[]},s:[{n:data,a:[{k:class,v:beta3},{k:persistent,v:true}],"
    "u:10737418240}],g:{a:[{k:vendor/nvidia/model/l40s,v:true},{k:req_vram,v:>50}],u:1},"
    "e:[{k:1,s:0}]},c:1}]}"
)


def _service_text(name: str, gpus: int = 0) -> str:
    gpu = f"g:{{a:[],u:{gpus}}}" if gpus else "g:{u:0,a:[]}"
    return f"{{n:{name},r:{{i:1,c:{{u:100,a:[]}},m:{{u:1024,a:[]}},s:[],{gpu},e:[]}},c:1}}"


def _sdk_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def from_sdk_form(decoded: dict[str, Any]) -> OrderSpec:
    """Build the model from the SDK's verbose JSON form, independently of the codec."""

    def attrs(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(item["Key"], _sdk_value(item["Value"])) for item in items]

    placement_attrs = dict(attrs(decoded["PlacementsRequirement"].get("Attributes", [])))
    placement = Placement(
        **{
            key: split_list(value) if key in LIST_KEYS else value
            for key in PLACEMENT_KEYS
            if (value := placement_attrs.pop(key, None)) is not None
        },
        extra_attributes=tuple(placement_attrs.items()),
    )
    services = []
    for service in decoded["Services"]:
        res = service["Resources"]
        gpu_attrs = attrs(res["GPU"]["Attributes"])
        volumes = []
        for volume in res["Storage"]:
            volume_attrs = dict(attrs(volume["Attributes"]))
            persistent = volume_attrs.pop("persistent", None)
            volumes.append(
                StorageVolume(
                    name=volume["Name"],
                    size_bytes=volume["Units"],
                    storage_class=volume_attrs.pop("class", None),
                    persistent=None if persistent is None else persistent == "true",
                    extra_attributes=tuple(volume_attrs.items()),
                )
            )
        services.append(
            Service(
                name=service["Name"],
                resource_id=res["ID"],
                replicas=service["ReplicaCount"],
                cpu_millicores=res["CPU"]["Units"],
                memory_bytes=res["Memory"]["Units"],
                storage=tuple(volumes),
                gpu=GpuRequest(
                    units=res["GPU"]["Units"],
                    models=tuple(
                        GpuModelRef(vendor=key.split("/")[1], model=key.split("/")[3])
                        for key, _ in gpu_attrs
                        if key.startswith("vendor/")
                    ),
                    vram=next(
                        (VramRequirement.parse(v) for k, v in gpu_attrs if k == "req_vram"), None
                    ),
                ),
                endpoints=tuple(
                    Endpoint(kind=EndpointKind(e["Kind"]), sequence_number=e["SequenceNumber"])
                    for e in res["Endpoints"]
                ),
            )
        )
    return OrderSpec(name=decoded["Name"], placement=placement, services=tuple(services))


# --- the SDK's own vectors ------------------------------------------------------------------


@pytest.mark.parametrize("vector", reference_params("order-spec-vectors.json"))
def test_vector_decodes_to_the_sdk_form(vector: dict[str, Any]) -> None:
    assert decode(vector["compressed"]) == from_sdk_form(vector["decoded"])


@pytest.mark.parametrize("vector", reference_params("order-spec-vectors.json"))
def test_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    assert encode(decode(vector["compressed"])) == vector["compressed"]


# --- our own examples -----------------------------------------------------------------------


def test_base_example_decodes_every_field() -> None:
    spec = decode(BASE)
    assert spec.name == "eu"
    assert spec.placement.region == "eu-central"
    assert spec.placement.cpu_model is None
    (service,) = spec.services
    assert (service.name, service.resource_id, service.replicas) == ("llm", 1, 1)
    assert (service.cpu_millicores, service.memory_bytes) == (2000, 8 * 2**30)
    (volume,) = service.storage
    assert (volume.name, volume.size_bytes) == ("data", 10 * 2**30)
    assert (volume.storage_class, volume.persistent, volume.is_ram) == ("beta3", True, False)
    assert service.gpu.units == 1
    assert service.gpu.models == (GpuModelRef(vendor="nvidia", model="l40s"),)
    assert service.gpu.vram == VramRequirement(op=VramComparison.MORE_THAN, percent=50)
    assert service.endpoints == (Endpoint(kind=EndpointKind.RANDOM_PORT, sequence_number=0),)
    assert encode(spec) == BASE


def test_whitespace_between_tokens_is_tolerated() -> None:
    spaced = BASE.replace(",", " ,\n ").replace(":", " : ").replace("{", "{ ")
    assert decode(spaced) == decode(BASE)


def test_unknown_keys_are_ignored() -> None:
    noisy = BASE.replace("{n:llm,", "{x:1,n:llm,zz:{a:[1,[2]]},").replace(
        "c:{u:2000", "c:{t:z,u:2000"
    )
    assert decode(noisy) == decode(BASE)


def test_unknown_attributes_are_kept_and_reencoded_after_known_ones() -> None:
    text = BASE.replace("{k:region,v:eu-central}", "{k:gpu_driver,v:550},{k:region,v:eu-central}")
    spec = decode(text)
    assert spec.placement.extra_attributes == (("gpu_driver", "550"),)
    assert encode(spec) == BASE.replace(
        "{k:region,v:eu-central}", "{k:region,v:eu-central},{k:gpu_driver,v:550}"
    )


def test_gpu_constraints_we_do_not_understand_are_kept_for_the_bidder() -> None:
    text = BASE.replace("{k:req_vram,v:>50}", "{k:vendor/nvidia/model/l40s/ram/48Gi,v:true}")
    gpu = decode(text).services[0].gpu
    assert gpu.vram is None
    assert gpu.extra_attributes == (("vendor/nvidia/model/l40s/ram/48Gi", "true"),)


def test_provider_wallets() -> None:
    listed = decode(BASE.replace("pr:{a:", "pr:{pw:[0xAbc,0xdef],a:"))
    assert listed.placement.provider_wallets == ("0xAbc", "0xdef")
    assert encode(listed) == BASE.replace("pr:{a:", "pr:{pw:[0xAbc,0xdef],a:")
    assert decode(BASE.replace("pr:{a:", "pr:{pw:null,a:")) == decode(BASE)


def test_optional_lists_may_be_missing() -> None:
    text = "{n:p,s:[{n:web,r:{i:1,c:{u:250},m:{u:1048576},g:{u:0}},c:2}]}"
    spec = decode(text)
    assert spec.placement == Placement()
    service = spec.services[0]
    assert (service.storage, service.endpoints, service.gpu.models) == ((), (), ())
    assert encode(spec) == (
        "{n:p,pr:{a:[]},s:[{n:web,r:{i:1,c:{u:250,a:[]},m:{u:1048576,a:[]},s:[],"
        "g:{u:0,a:[]},e:[]},c:2}]}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (">=80", VramRequirement(op=VramComparison.AT_LEAST, percent=80)),
        (">50", VramRequirement(op=VramComparison.MORE_THAN, percent=50)),
        ("<=10", VramRequirement(op=VramComparison.AT_MOST, percent=10)),
        ("<5", VramRequirement(op=VramComparison.LESS_THAN, percent=5)),
        ("=100", VramRequirement(op=VramComparison.EQUAL, percent=100)),
        (">=0", VramRequirement(op=VramComparison.AT_LEAST, percent=0)),
    ],
)
def test_req_vram_values(value: str, expected: VramRequirement) -> None:
    spec = decode(BASE.replace("v:>50", f"v:{value}"))
    assert spec.services[0].gpu.vram == expected
    assert encode(spec) == BASE.replace("v:>50", f"v:{value}")


@pytest.mark.parametrize(
    ("requirement", "free", "total", "ok"),
    [
        (">=80", 80, 100, True),
        (">=80", 79, 100, False),
        (">50", 50, 100, False),
        (">50", 40961, 81920, True),
        ("<=10", 8192, 81920, True),
        (">=20", 1, 0, False),
    ],
)
def test_vram_requirement_is_checked_with_integers(
    requirement: str, free: int, total: int, ok: bool
) -> None:
    assert VramRequirement.parse(requirement).satisfied_by(free, total) is ok


# --- helpers a bidder uses ------------------------------------------------------------------


TWO_SERVICES = (
    "{n:mix,pr:{a:[]},s:["
    "{n:train,r:{i:1,c:{u:8000,a:[]},m:{u:1073741824,a:[]},s:[],"
    "g:{a:[{k:vendor/nvidia/model/h100,v:true},{k:vendor/nvidia/model/rtx3090Ti,v:true}],u:2},"
    "e:[]},c:3},"
    "{n:any,r:{i:2,c:{u:500,a:[]},m:{u:1073741824,a:[]},s:[],g:{a:[],u:1},e:[]},c:1},"
    "{n:web,r:{i:3,c:{u:500,a:[]},m:{u:1073741824,a:[]},s:[],g:{u:0,a:[]},e:[]},c:4}]}"
)


def test_total_gpus_counts_replicas() -> None:
    spec = decode(TWO_SERVICES)
    assert spec.total_gpus == 2 * 3 + 1
    assert spec.total_cpu_millicores == 8000 * 3 + 500 + 500 * 4


def test_gpu_needs_lists_only_gpu_services() -> None:
    needs = decode(TWO_SERVICES).gpu_needs()
    assert [(n.service, n.units_per_replica, n.replicas, n.total) for n in needs] == [
        ("train", 2, 3, 6),
        ("any", 1, 1, 1),
    ]
    assert [ref.model for ref in needs[0].models] == ["h100", "rtx3090Ti"]


@pytest.mark.parametrize(
    ("model", "accepted"),
    [("h100", True), ("H100", True), ("rtx3090ti", True), ("a100-80g", False), ("", False)],
)
def test_accepts_model_requires_every_gpu_service(model: str, accepted: bool) -> None:
    # "any" lists no models, so it accepts everything; "train" decides.
    assert decode(TWO_SERVICES).accepts_model(model) is accepted


def test_accepts_model_is_false_without_gpu_services() -> None:
    spec = decode(f"{{n:cpu,s:[{_service_text('web')}]}}")
    assert spec.total_gpus == 0
    assert not spec.accepts_model("h100")
    assert spec.gpu_needs() == ()


def test_accepts_model_checks_the_vendor() -> None:
    spec = decode(BASE)
    assert spec.accepts_model("l40s")
    assert not spec.accepts_model("l40s", vendor="amd")


def test_gpu_section_key_order_matches_the_sdk() -> None:
    no_gpu = OrderSpec(
        name="x",
        services=(Service(name="a", resource_id=1, replicas=1, cpu_millicores=1, memory_bytes=1),),
    )
    any_gpu = no_gpu.model_copy(
        update={"services": (no_gpu.services[0].model_copy(update={"gpu": GpuRequest(units=2)}),)}
    )
    assert "g:{u:0,a:[]}" in encode(no_gpu)
    assert "g:{a:[],u:2}" in encode(any_gpu)


# --- malformed input ------------------------------------------------------------------------


def _many_services(count: int) -> str:
    return "{n:x,s:[" + ",".join(_service_text(f"s{i}") for i in range(count)) + "]}"


MALFORMED: list[tuple[str, str, str, str | None]] = [
    # (case id, spec, reason substring, path)
    ("empty", "", "expected an object", None),
    ("not-an-object", "[1]", "expected an object", None),
    ("unclosed", "{", "the spec ends", None),
    ("truncated", BASE[:-1], "expected ',' or '}'", None),
    ("trailing-text", BASE + "x", "unexpected text after the end", None),
    ("trailing-comma", "{n:x,}", "expected a key", None),
    ("bad-key", "{n-x:1}", "expected ':' after the key 'n'", None),
    ("no-services", "{n:x}", "missing services", "s"),
    ("empty-services", "{n:x,s:[]}", "the order has no services", "s"),
    ("no-name", BASE.replace("n:eu,", ""), "missing order name", "n"),
    ("services-not-list", "{n:x,s:{}}", "expected a list", "s"),
    ("resources-scalar", BASE.replace("r:{i:1,", "r:1,x:{i:1,"), "expected an object", "s[0].r"),
    ("negative-cpu", BASE.replace("u:2000", "u:-2000"), "must not be negative", "s[0].r.c.u"),
    ("fractional-gpus", BASE.replace("],u:1}", "],u:1.5}"), "whole number", "s[0].r.g.u"),
    ("text-cpu", BASE.replace("u:2000", "u:lots"), "must be a number", "s[0].r.c.u"),
    ("huge-number", BASE.replace("u:2000", "u:" + "9" * 30), "too large", "s[0].r.c.u"),
    ("huge-memory", BASE.replace("u:8589934592", f"u:{2**44 + 1}"), "too large", "s[0].r.m.u"),
    ("huge-volume", BASE.replace("u:10737418240", f"u:{2**50 + 1}"), "too large", None),
    ("zero-replicas", BASE.replace("c:1}]}", "c:0}]}"), "at least 1", "s[0].c"),
    ("many-replicas", BASE.replace("c:1}]}", "c:5000}]}"), "too large", "s[0].c"),
    ("no-replicas", BASE.replace(",c:1}]}", "}]}"), "missing replica count", "s[0].c"),
    ("no-gpu-units", BASE.replace("],u:1}", "]}"), "missing GPU units", "s[0].r.g.u"),
    ("too-many-gpus", BASE.replace("],u:1}", "],u:65}"), "too large", "s[0].r.g.u"),
    (
        "no-gpu",
        BASE.replace("g:{a:[{k:vendor/nvidia/model/l40s,v:true},{k:req_vram,v:>50}],u:1},", ""),
        "missing GPU",
        "s[0].r.g",
    ),
    ("no-cpu", BASE.replace("c:{u:2000,a:[]},", ""), "missing CPU", "s[0].r.c"),
    ("empty-service-name", BASE.replace("n:llm", "n:"), "must not be empty", "s[0].n"),
    ("empty-volume-name", BASE.replace("n:data", "n:"), "must not be empty", "s[0].r.s[0].n"),
    ("long-name", BASE.replace("n:llm", "n:" + "a" * 300), "the limit is 256", "s[0].n"),
    (
        "duplicate-service",
        "{n:x,s:[" + _service_text("a") + "," + _service_text("a") + "]}",
        "duplicate service name 'a' (also s[0])",
        "s[1].n",
    ),
    ("duplicate-key", BASE.replace("{n:eu,", "{n:eu,n:us,"), "key 'n' appears twice", "n"),
    (
        "duplicate-attribute",
        BASE.replace("{k:region,v:eu-central}", "{k:region,v:a},{k:region,v:b}"),
        "attribute 'region' appears twice",
        "pr.a[1].k",
    ),
    ("bad-req-vram", BASE.replace("v:>50", "v:>150"), "req_vram", "s[0].r.g.a[1].v"),
    ("req-vram-no-op", BASE.replace("v:>50", "v:50"), "req_vram", "s[0].r.g.a[1].v"),
    ("req-vram-space", BASE.replace("v:>50", "v:>= 50"), "req_vram", None),
    (
        "model-key-malformed",
        BASE.replace("vendor/nvidia/model/l40s", "vendor/ nvidia/model/l40s"),
        "must be vendor/<vendor>/model/<model>",
        "s[0].r.g.a[0].k",
    ),
    (
        "model-not-true",
        BASE.replace("l40s,v:true", "l40s,v:false"),
        "must have the value true",
        None,
    ),
    (
        "persistent-not-bool",
        BASE.replace("persistent,v:true", "persistent,v:yes"),
        "true or false",
        "s[0].r.s[0].a[1].v",
    ),
    (
        "unknown-endpoint",
        BASE.replace("e:[{k:1,", "e:[{k:7,"),
        "unknown endpoint kind 7",
        "s[0].r.e[0].k",
    ),
    (
        "attribute-not-object",
        BASE.replace("pr:{a:[{k:region,v:eu-central}]}", "pr:{a:[region]}"),
        "expected an object",
        "pr.a[0]",
    ),
    (
        "attribute-value-object",
        BASE.replace("v:eu-central", "v:{}"),
        "expected a plain value",
        "pr.a[0].v",
    ),
    (
        "attribute-without-value",
        BASE.replace("{k:region,v:eu-central}", "{k:region}"),
        "missing attribute value",
        "pr.a[0].v",
    ),
    ("brace-in-value", BASE.replace("n:llm", "n:ll{m"), "unexpected '{' inside a value", None),
    ("control-character", BASE.replace("n:llm", "n:l\x00m"), "non-printable", None),
    ("invisible-character", BASE.replace("n:llm", "n:l\u200bm"), "non-printable", "s[0].n"),
    ("too-deep", "{n:x,s:" + "[" * 20 + "]" * 20 + "}", "nested deeper than 16 levels", None),
    ("too-long", "{n:" + "a" * MAX_SPEC_CHARS + "}", f"the limit is {MAX_SPEC_CHARS}", None),
    ("too-many-services", _many_services(MAX_SERVICES + 1), f"the limit is {MAX_SERVICES}", "s"),
]


@pytest.mark.parametrize(
    ("text", "reason", "path"),
    [pytest.param(text, reason, path, id=case) for case, text, reason, path in MALFORMED],
)
def test_malformed_specs_are_rejected_with_a_reason(
    text: str, reason: str, path: str | None
) -> None:
    with pytest.raises(OrderSpecError, match=re.escape(reason)) as caught:
        decode(text)
    if path is not None:
        assert caught.value.path == path
        assert f"at {path}" in str(caught.value)


def test_errors_carry_the_character_offset() -> None:
    text = BASE.replace("u:2000", "u:-2000")
    with pytest.raises(OrderSpecError) as caught:
        decode(text)
    assert caught.value.offset == text.index("-2000")
    assert f"(character {caught.value.offset})" in str(caught.value)


def test_non_string_input_is_an_order_spec_error() -> None:
    with pytest.raises(OrderSpecError, match="expected a string"):
        decode(b"{n:x}")  # type: ignore[arg-type]


def test_the_largest_allowed_order_still_decodes() -> None:
    spec = decode(_many_services(MAX_SERVICES))
    assert len(spec.services) == MAX_SERVICES
