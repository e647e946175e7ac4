"""Order spec codec: the SDK's compressed spec string <-> `OrderSpec`.

The SDK renames keys to one or two letters and the same letter means different things by
position (`s` is Services at the top, Storage inside `r`, SequenceNumber in an endpoint; `c`
is CPU inside `r` and ReplicaCount in a service; `k` is Key in an attribute and Kind in an
endpoint), so decoding walks the tree by structure and never by letter alone.

Numbers are read as the SDK writes them: it computes byte counts in floating point, so a size
such as `0.1Gi` arrives as `107374182.4`; CPU, memory and storage amounts with a fraction are
rounded up to the next whole unit (never serve less than was paid for).

Unknown object keys are ignored (a newer SDK may add fields); unknown attributes are kept in
`extra_attributes`. Anything that would make the order ambiguous or unservable (missing or
ill-typed required fields, negative or absurd numbers, duplicates) is an `OrderSpecError`
naming the field (`s[0].r.g.u`) and the character offset.

The encoder lives in `encoder`; `encode` is re-exported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final

from pydantic import ValidationError

from gpu_provider.market import syntax
from gpu_provider.market.encoder import encode as encode
from gpu_provider.market.errors import OrderSpecError
from gpu_provider.market.placement import LIST_KEYS, split_list
from gpu_provider.market.spec import (
    MAX_ATTRIBUTES,
    MAX_CPU_MILLICORES,
    MAX_ENDPOINTS,
    MAX_GPU_UNITS,
    MAX_ID,
    MAX_MEMORY_BYTES,
    MAX_REPLICAS,
    MAX_SERVICES,
    MAX_STORAGE_BYTES,
    MAX_VOLUMES,
    PLACEMENT_KEYS,
    REQ_VRAM_KEY,
    STORAGE_CLASS_KEY,
    STORAGE_PERSISTENT_KEY,
    Endpoint,
    EndpointKind,
    GpuModelRef,
    GpuRequest,
    OrderSpec,
    Placement,
    Service,
    StorageVolume,
    VramRequirement,
    check_text,
)
from gpu_provider.market.syntax import Array, Node, Object, Scalar

_MAX_DIGITS: Final = 20
_MAX_NUMBER_CHARS: Final = 40
# What a JavaScript number prints as: digits, an optional fraction, an optional exponent.
_JS_NUMBER: Final = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?$")


def decode(text: str) -> OrderSpec:
    """Decode an on-chain order spec string; raise OrderSpecError saying what and where."""
    root = syntax.parse(text)
    try:
        return _order(root)
    except ValidationError as exc:
        # The decoder checks every field itself; this only turns a missed rule into our error.
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise OrderSpecError(first["msg"], path=path) from None


# --- decoding: tree -> model --------------------------------------------------------------


def _fail(reason: str, path: str, node: Node) -> OrderSpecError:
    return OrderSpecError(reason, path=path, offset=node.offset)


def _object(node: Node, path: str) -> Object:
    if not isinstance(node, Object):
        raise _fail(f"expected an object {{...}}, found {syntax.describe(node)}", path, node)
    return node


def _array(node: Node, path: str, *, limit: int) -> Array:
    if not isinstance(node, Array):
        raise _fail(f"expected a list [...], found {syntax.describe(node)}", path, node)
    if len(node.items) > limit:
        raise _fail(f"has {len(node.items)} entries; the limit is {limit}", path, node)
    return node


def _scalar(node: Node, path: str) -> Scalar:
    if not isinstance(node, Scalar):
        raise _fail(f"expected a plain value, found {syntax.describe(node)}", path, node)
    return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _required(obj: Object, key: str, path: str, what: str) -> Node:
    node = obj.fields.get(key)
    if node is None:
        raise _fail(f"missing {what}", _join(path, key), obj)
    return node


def _text(node: Node, path: str, *, allow_empty: bool = False) -> str:
    scalar = _scalar(node, path)
    try:
        return check_text(scalar.text, allow_empty=allow_empty)
    except ValueError as exc:
        raise _fail(str(exc), path, node) from None


def _int(node: Node, path: str, *, low: int, high: int) -> int:
    text = _scalar(node, path).text
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise _fail(f"must not be negative, got {text!r}", path, node)
    if not (text.isascii() and text.isdigit()):
        raise _fail(f"must be a whole number, got {text[:40]!r}", path, node)
    if len(text) > _MAX_DIGITS or int(text) > high:
        raise _fail(f"is too large: {text[:40]} (the limit is {high})", path, node)
    value = int(text)
    if value < low:
        raise _fail(f"must be at least {low}, got {value}", path, node)
    return value


def _int_field(obj: Object, key: str, path: str, what: str, *, low: int, high: int) -> int:
    return _int(_required(obj, key, path, what), _join(path, key), low=low, high=high)


def _amount(node: Node, path: str, *, high: int) -> int:
    """A non-negative amount the SDK computed in floating point, rounded up to a whole unit."""
    text = _scalar(node, path).text
    if text.isascii() and text.isdigit():
        return _int(node, path, low=0, high=high)
    if text.startswith("-"):
        raise _fail(f"must not be negative, got {text[:40]!r}", path, node)
    if len(text) > _MAX_NUMBER_CHARS or not _JS_NUMBER.match(text):
        raise _fail(f"must be a number, got {text[:40]!r}", path, node)
    number = Decimal(text)
    if number > high:
        raise _fail(f"is too large: {text[:40]} (the limit is {high})", path, node)
    return int(number.to_integral_value(rounding=ROUND_CEILING))


def _amount_field(obj: Object, key: str, path: str, what: str, *, high: int) -> int:
    return _amount(_required(obj, key, path, what), _join(path, key), high=high)


def _bool(node: Node, path: str) -> bool:
    text = _scalar(node, path).text
    if text == "true":
        return True
    if text == "false":
        return False
    raise _fail(f"must be true or false, got {text[:40]!r}", path, node)


@dataclass(frozen=True, slots=True)
class _Attr:
    key: str
    value: str
    node: Node
    path: str
    key_path: str


def _attributes(obj: Object, path: str) -> list[_Attr]:
    """Read the optional `a` list of `{k:...,v:...}`; a key may appear only once."""
    node = obj.fields.get("a")
    if node is None:
        return []
    list_path = _join(path, "a")
    attrs: list[_Attr] = []
    seen: set[str] = set()
    for index, item in enumerate(_array(node, list_path, limit=MAX_ATTRIBUTES).items):
        item_path = f"{list_path}[{index}]"
        entry = _object(item, item_path)
        key = _text(_required(entry, "k", item_path, "attribute key"), f"{item_path}.k")
        value_node = _required(entry, "v", item_path, "attribute value")
        value = _text(value_node, f"{item_path}.v", allow_empty=True)
        if key in seen:
            raise _fail(f"attribute {key!r} appears twice", f"{item_path}.k", item)
        seen.add(key)
        attrs.append(_Attr(key, value, value_node, f"{item_path}.v", f"{item_path}.k"))
    return attrs


def _order(root: Node) -> OrderSpec:
    top = _object(root, "")
    name = _text(_required(top, "n", "", "order name"), "n")
    pr = top.fields.get("pr")
    placement = Placement() if pr is None else _placement_from(_object(pr, "pr"), "pr")
    services_node = _array(_required(top, "s", "", "services"), "s", limit=MAX_SERVICES)
    if not services_node.items:
        raise _fail("the order has no services", "s", services_node)
    services: list[Service] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(services_node.items):
        service = _service_from(_object(item, f"s[{index}]"), f"s[{index}]")
        if service.name in first_index:
            first = first_index[service.name]
            reason = f"duplicate service name {service.name!r} (also s[{first}])"
            raise _fail(reason, f"s[{index}].n", item)
        first_index[service.name] = index
        services.append(service)
    return OrderSpec(name=name, placement=placement, services=tuple(services))


def _placement_from(pr: Object, path: str) -> Placement:
    known: dict[str, str | tuple[str, ...]] = {}
    extras: list[tuple[str, str]] = []
    for attr in _attributes(pr, path):
        if attr.key in LIST_KEYS:
            known[attr.key] = split_list(attr.value)
        elif attr.key in PLACEMENT_KEYS:
            known[attr.key] = attr.value
        else:
            extras.append((attr.key, attr.value))
    return Placement.model_validate(
        {
            **known,
            "provider_wallets": _wallets(pr.fields.get("pw"), _join(path, "pw")),
            "extra_attributes": tuple(extras),
        }
    )


def _wallets(node: Node | None, path: str) -> tuple[str, ...]:
    # Older SDKs wrote `ProviderWallets: null`, which compresses to `pw:null`.
    if node is None or (isinstance(node, Scalar) and node.text in ("", "null")):
        return ()
    items = _array(node, path, limit=MAX_ATTRIBUTES).items
    return tuple(_text(item, f"{path}[{index}]") for index, item in enumerate(items))


def _service_from(obj: Object, path: str) -> Service:
    name = _text(_required(obj, "n", path, "service name"), _join(path, "n"))
    r_path = _join(path, "r")
    r = _object(_required(obj, "r", path, "resources"), r_path)
    cpu_path, mem_path = _join(r_path, "c"), _join(r_path, "m")
    cpu = _object(_required(r, "c", r_path, "CPU"), cpu_path)
    memory = _object(_required(r, "m", r_path, "memory"), mem_path)
    storage_node = r.fields.get("s")
    storage: tuple[StorageVolume, ...] = ()
    if storage_node is not None:
        s_path = _join(r_path, "s")
        volumes = _array(storage_node, s_path, limit=MAX_VOLUMES).items
        storage = tuple(
            _volume_from(_object(item, f"{s_path}[{i}]"), f"{s_path}[{i}]")
            for i, item in enumerate(volumes)
        )
    g_path = _join(r_path, "g")
    gpu = _gpu_from(_object(_required(r, "g", r_path, "GPU"), g_path), g_path)
    endpoints_node = r.fields.get("e")
    endpoints: tuple[Endpoint, ...] = ()
    if endpoints_node is not None:
        e_path = _join(r_path, "e")
        items = _array(endpoints_node, e_path, limit=MAX_ENDPOINTS).items
        endpoints = tuple(
            _endpoint_from(_object(item, f"{e_path}[{i}]"), f"{e_path}[{i}]")
            for i, item in enumerate(items)
        )
    return Service(
        name=name,
        resource_id=_int_field(r, "i", r_path, "resource id", low=0, high=MAX_ID),
        replicas=_int_field(obj, "c", path, "replica count", low=1, high=MAX_REPLICAS),
        cpu_millicores=_amount_field(cpu, "u", cpu_path, "CPU units", high=MAX_CPU_MILLICORES),
        memory_bytes=_amount_field(memory, "u", mem_path, "memory units", high=MAX_MEMORY_BYTES),
        storage=storage,
        gpu=gpu,
        endpoints=endpoints,
        cpu_attributes=tuple((a.key, a.value) for a in _attributes(cpu, cpu_path)),
        memory_attributes=tuple((a.key, a.value) for a in _attributes(memory, mem_path)),
    )


def _volume_from(obj: Object, path: str) -> StorageVolume:
    name = _text(_required(obj, "n", path, "volume name"), _join(path, "n"))
    size = _amount_field(obj, "u", path, "storage units", high=MAX_STORAGE_BYTES)
    storage_class: str | None = None
    persistent: bool | None = None
    extras: list[tuple[str, str]] = []
    for attr in _attributes(obj, path):
        if attr.key == STORAGE_CLASS_KEY:
            storage_class = _text(attr.node, attr.path)
        elif attr.key == STORAGE_PERSISTENT_KEY:
            persistent = _bool(attr.node, attr.path)
        else:
            extras.append((attr.key, attr.value))
    return StorageVolume(
        name=name,
        size_bytes=size,
        storage_class=storage_class,
        persistent=persistent,
        extra_attributes=tuple(extras),
    )


def _gpu_from(obj: Object, path: str) -> GpuRequest:
    units = _int_field(obj, "u", path, "GPU units", low=0, high=MAX_GPU_UNITS)
    models: list[GpuModelRef] = []
    vram: VramRequirement | None = None
    extras: list[tuple[str, str]] = []
    for attr in _attributes(obj, path):
        try:
            ref = GpuModelRef.from_key(attr.key)
        except ValidationError:
            reason = f"GPU model key {attr.key!r} must be vendor/<vendor>/model/<model>"
            raise _fail(reason, attr.key_path, attr.node) from None
        if ref is not None:
            if attr.value.casefold() != "true":
                reason = f"a GPU model attribute must have the value true, got {attr.value!r}"
                raise _fail(reason, attr.path, attr.node)
            models.append(ref)
        elif attr.key == REQ_VRAM_KEY:
            try:
                vram = VramRequirement.parse(attr.value)
            except ValueError as exc:
                raise _fail(str(exc), attr.path, attr.node) from None
        else:
            extras.append((attr.key, attr.value))
    return GpuRequest(units=units, models=tuple(models), vram=vram, extra_attributes=tuple(extras))


def _endpoint_from(obj: Object, path: str) -> Endpoint:
    kind_path = _join(path, "k")
    kind_node = _required(obj, "k", path, "endpoint kind")
    kind = _int(kind_node, kind_path, low=0, high=MAX_ID)
    if kind not in {known.value for known in EndpointKind}:
        known = ", ".join(f"{k.value} {k.name.lower()}" for k in EndpointKind)
        raise _fail(f"unknown endpoint kind {kind} (known: {known})", kind_path, kind_node)
    return Endpoint(
        kind=EndpointKind(kind),
        sequence_number=_int_field(obj, "s", path, "sequence number", low=0, high=MAX_ID),
    )
