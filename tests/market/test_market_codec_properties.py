"""Property tests: any valid order survives encode/decode; no input makes decode crash."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_provider.market import OrderSpec, OrderSpecError, decode, encode
from gpu_provider.market.placement import LIST_KEYS
from gpu_provider.market.spec import (
    MAX_CPU_MILLICORES,
    MAX_GPU_UNITS,
    MAX_ID,
    MAX_MEMORY_BYTES,
    MAX_REPLICAS,
    MAX_STORAGE_BYTES,
    PLACEMENT_KEYS,
    REQ_VRAM_KEY,
    Endpoint,
    EndpointKind,
    GpuModelRef,
    GpuRequest,
    Placement,
    Service,
    StorageVolume,
    VramComparison,
    VramRequirement,
)

# Printable characters that may appear in bare values, including the awkward ones the SDK's
# regex decoder trips on (`>=`, `/`, `:`, `.`), spaces inside, and non-ASCII letters.
_CHARS = st.characters(categories=["L", "N", "P", "S"], exclude_characters="{}[],") | st.just(" ")


def _text(min_size: int = 1, *, slash: bool = True) -> st.SearchStrategy[str]:
    text = st.text(_CHARS, min_size=min_size, max_size=12)
    if not slash:
        text = text.map(lambda s: s.replace("/", ""))
    return text.map(str.strip).filter(lambda s: len(s) >= min_size)


def _attrs(
    reserved: frozenset[str] = frozenset(),
) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    key = _text().filter(lambda k: k not in reserved and GpuModelRef.from_key(k) is None)
    pairs = st.lists(st.tuples(key, _text(0)), max_size=3, unique_by=lambda kv: kv[0])
    return pairs.map(tuple)


_optional = st.none() | _text(0)

_item = _text(0).map(lambda s: s.replace(";", "").strip())
_optional_list = st.none() | st.lists(_item, min_size=1, max_size=3).map(tuple)

placements = st.builds(
    Placement,
    **{key: _optional_list if key in LIST_KEYS else _optional for key in PLACEMENT_KEYS},
    provider_wallets=st.lists(_text(), max_size=2).map(tuple),
    extra_attributes=_attrs(frozenset(PLACEMENT_KEYS)),
)

gpu_requests = st.builds(
    GpuRequest,
    units=st.integers(0, MAX_GPU_UNITS),
    models=st.lists(
        st.builds(GpuModelRef, vendor=_text(slash=False), model=_text(slash=False)),
        max_size=3,
        unique_by=lambda ref: ref.key,
    ).map(tuple),
    vram=st.none()
    | st.builds(VramRequirement, op=st.sampled_from(VramComparison), percent=st.integers(0, 100)),
    extra_attributes=_attrs(frozenset({REQ_VRAM_KEY})),
)

volumes = st.builds(
    StorageVolume,
    name=_text(),
    size_bytes=st.integers(1, MAX_STORAGE_BYTES),
    storage_class=st.none() | _text(),
    persistent=st.none() | st.booleans(),
    extra_attributes=_attrs(frozenset({"class", "persistent"})),
)

services = st.builds(
    Service,
    name=_text(),
    resource_id=st.integers(0, MAX_ID),
    replicas=st.integers(1, MAX_REPLICAS),
    cpu_millicores=st.integers(1, MAX_CPU_MILLICORES),
    memory_bytes=st.integers(1, MAX_MEMORY_BYTES),
    storage=st.lists(volumes, max_size=3).map(tuple),
    gpu=gpu_requests,
    endpoints=st.lists(
        st.builds(
            Endpoint, kind=st.sampled_from(EndpointKind), sequence_number=st.integers(0, MAX_ID)
        ),
        max_size=3,
    ).map(tuple),
    cpu_attributes=_attrs(),
    memory_attributes=_attrs(),
)

order_specs = st.builds(
    OrderSpec,
    name=_text(),
    placement=placements,
    services=st.lists(services, min_size=1, max_size=4, unique_by=lambda s: s.name).map(tuple),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_specs)
def test_decode_inverts_encode(spec: OrderSpec) -> None:
    text = encode(spec)
    assert decode(text) == spec
    assert encode(decode(text)) == text


def _decode_or_reject(text: str) -> None:
    try:
        result = decode(text)
    except OrderSpecError:
        return  # rejected with our error: fine; any other exception fails the test
    assert isinstance(result, OrderSpec)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_is_decoded_or_rejected_never_crashes(text: str) -> None:
    _decode_or_reject(text)


_SPEC_ALPHABET = "{}[],:" + "nprsacgumeikvw" + string.digits + "-/>=._ \t"


@settings(max_examples=500, deadline=None)
@given(st.text(_SPEC_ALPHABET, max_size=400))
def test_spec_shaped_noise_is_decoded_or_rejected(text: str) -> None:
    _decode_or_reject(text)


_mutations = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "duplicate"]),
        st.integers(0, 10_000),
        st.integers(1, 8),
        st.sampled_from([*"{}[],:-0a/>= \x00", "9" * 25, "{}", "[[", "u:", "\u200b"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_specs, _mutations)
def test_mutated_valid_specs_are_decoded_or_rejected(
    spec: OrderSpec, mutations: list[tuple[str, int, int, str]]
) -> None:
    text = encode(spec)
    for kind, where, length, piece in mutations:
        at = where % (len(text) + 1)
        if kind == "delete":
            text = text[:at] + text[at + length :]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "replace":
            text = text[:at] + piece + text[at + length :]
        else:
            text = text[:at] + text[at : at + length] * 2 + text[at + length :]
    _decode_or_reject(text)
