"""The codec against what Spheron's SDK actually writes: attribute order, lists, odd numbers."""

from __future__ import annotations

import pytest

from gpu_provider.market import OrderSpecError, Placement, decode, encode, unservable_reasons
from gpu_provider.market.spec import PLACEMENT_KEYS, StorageVolume

SDK_PLACEMENT_ORDER = (
    "cpu_model",
    "bandwidth",
    "region",
    "region_exclude",
    "desired_fizz",
    "desired_provider",
    "provider_exclude",
    "fizz_exclude",
)

SERVICE = (
    "{n:web,r:{i:1,c:{u:500,a:[]},m:{u:1073741824,a:[]},s:[{n:default,a:[],u:1073741824}],"
    "g:{a:[],u:1},e:[]},c:1}"
)


def _order(placement: str = "{a:[]}", service: str = SERVICE) -> str:
    return f"{{n:p,pr:{placement},s:[{service}]}}"


def test_placement_keys_are_listed_in_the_sdks_order() -> None:
    assert PLACEMENT_KEYS == SDK_PLACEMENT_ORDER


def test_placement_attributes_are_encoded_in_the_sdks_order() -> None:
    placement = Placement(
        fizz_exclude=("f9",),
        provider_exclude=("0xbad",),
        desired_provider=("0xgood",),
        desired_fizz=("f1",),
        region_exclude=("us-east",),
        region="us-west",
        bandwidth="any",
        cpu_model="any",
    )
    spec = decode(_order()).model_copy(update={"placement": placement})
    text = encode(spec)
    positions = [text.index(f"k:{key},") for key in SDK_PLACEMENT_ORDER]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("region_exclude", "us-east;eu-west", ("us-east", "eu-west")),
        ("provider_exclude", "0xAb;0xcd;0xEf", ("0xAb", "0xcd", "0xEf")),
        ("fizz_exclude", "7", ("7",)),
        ("desired_provider", "0xAb", ("0xAb",)),
        ("desired_fizz", "1;2", ("1", "2")),
    ],
)
def test_multi_value_placement_attributes_decode_into_lists(
    field: str, value: str, expected: tuple[str, ...]
) -> None:
    text = _order(f"{{a:[{{k:{field},v:{value}}}]}}")
    spec = decode(text)
    assert getattr(spec.placement, field) == expected
    assert encode(spec) == text


def test_a_list_item_cannot_contain_the_separator() -> None:
    with pytest.raises(ValueError, match="';'"):
        Placement(region_exclude=("a;b",))


def test_storage_attributes_are_encoded_sorted_by_key() -> None:
    volume = StorageVolume(
        name="default",
        size_bytes=1,
        storage_class="beta3",
        persistent=True,
        extra_attributes=(("zone", "a"), ("access", "rw")),
    )
    spec = decode(_order())
    service = spec.services[0].model_copy(update={"storage": (volume,)})
    text = encode(spec.model_copy(update={"services": (service,)}))
    assert "a:[{k:access,v:rw},{k:class,v:beta3},{k:persistent,v:true},{k:zone,v:a}]" in text
    assert decode(text).services[0].storage == (volume,)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("107374182.4", 107374183),  # 0.1Gi, as the SDK computes it in floating point
        ("1073741824.0", 1073741824),
        ("0.5", 1),
        ("1e3", 1000),
    ],
)
def test_fractional_byte_counts_round_up_to_whole_bytes(units: str, expected: int) -> None:
    text = _order(service=SERVICE.replace("u:1073741824}]", f"u:{units}}}]"))
    assert decode(text).services[0].storage[0].size_bytes == expected
    memory = _order(service=SERVICE.replace("m:{u:1073741824", f"m:{{u:{units}"))
    assert decode(memory).services[0].memory_bytes == expected


def test_fractional_millicores_round_up() -> None:
    text = _order(service=SERVICE.replace("c:{u:500", "c:{u:250.5"))
    assert decode(text).services[0].cpu_millicores == 251


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("c:{u:500", "c:{u:0", "asks for no CPU"),
        ("m:{u:1073741824", "m:{u:0", "asks for no memory"),
        ("u:1073741824}]", "u:0}]", "volume 'default' has no size"),
    ],
)
def test_unservable_values_decode_and_carry_a_reason(old: str, new: str, reason: str) -> None:
    spec = decode(_order(service=SERVICE.replace(old, new)))
    reasons = unservable_reasons(spec)
    assert any(reason in text for text in reasons), reasons
    assert unservable_reasons(decode(_order())) == ()


def test_unknown_gpu_constraints_are_a_reason_to_skip() -> None:
    text = _order(service=SERVICE.replace("g:{a:[],u:1}", "g:{a:[{k:nvlink,v:true}],u:1}"))
    reasons = unservable_reasons(decode(text))
    assert reasons == ("service 'web': GPU constraint 'nvlink' is not understood",)


@pytest.mark.parametrize("units", ["-1", "1.5.2", "1e", "0x10", "nan", "inf", "1e400000"])
def test_numbers_the_sdk_never_writes_are_still_refused(units: str) -> None:
    with pytest.raises(OrderSpecError):
        decode(_order(service=SERVICE.replace("m:{u:1073741824", f"m:{{u:{units}")))


def test_several_volumes_all_named_default_decode_told_apart_by_class() -> None:
    volumes = (
        "s:[{n:default,a:[{k:class,v:ram},{k:persistent,v:false}],u:107374182.4},"
        "{n:default,a:[{k:class,v:beta3},{k:persistent,v:true}],u:10737418240}]"
    )
    text = _order(service=SERVICE.replace("s:[{n:default,a:[],u:1073741824}]", volumes))
    storage = decode(text).services[0].storage
    assert [(v.name, v.storage_class, v.size_bytes) for v in storage] == [
        ("default", "ram", 107374183),
        ("default", "beta3", 10737418240),
    ]
