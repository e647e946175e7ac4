"""Decode logs into event arguments and revert data into a reason, from contract ABIs.

Event decoding has a fast path for the argument types the marketplace emits (integers,
addresses, booleans, fixed bytes, strings, bytes and one-dimensional arrays of static
values): backfilling thousands of events is otherwise dominated by the generic ABI decoder.
Every other type (tuples, nested arrays) goes through `eth_abi`. Both paths give the same
values: `int`, `bool`, checksummed address `str`, `bytes`, `str`, lists, and dicts for tuples.
Indexed dynamic values (strings, arrays) are only present as their keccak hash: `bytes`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from eth_abi import abi as eth_abi
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gpu_provider.chain.contract_errors import find_error

Abi = Sequence[Mapping[str, Any]]
"""A contract ABI as JSON (a list of entries)."""

Args = dict[str, Any]


class LogDecodeError(ValueError):
    """The log's topics or data do not match the event's ABI."""


# -- value decoders --------------------------------------------------------------------------

_UINT: Final = re.compile(r"^uint(\d*)$")
_INT: Final = re.compile(r"^int(\d*)$")
_FIXED_BYTES: Final = re.compile(r"^bytes(\d+)$")
_DYN_ARRAY: Final = re.compile(r"^(.*)\[\]$")

# Kinds of values the fast path decodes, most frequent first (the decoder tests in order).
UINT, ADDRESS, STRING, BOOL, INT, FIXED, BYTES, ARRAY = range(8)


@functools.lru_cache(maxsize=65536)
def checksum(raw: bytes) -> str:
    """EIP-55 form of a 20-byte address; cached because marketplace events repeat addresses."""
    return str(to_checksum_address(raw))


def _static_kind(type_str: str) -> tuple[int, int] | None:
    """(kind, detail) of a static one-word type: bits for integers, size for bytesN."""
    match = _UINT.match(type_str)
    if match:
        return UINT, int(match.group(1) or 256)
    match = _INT.match(type_str)
    if match:
        return INT, int(match.group(1) or 256)
    if type_str == "address":
        return ADDRESS, 160
    if type_str == "bool":
        return BOOL, 1
    match = _FIXED_BYTES.match(type_str)
    if match:
        return FIXED, int(match.group(1))
    return None


def _word(kind: int, detail: int, word: bytes) -> Any:
    """Decode one 32-byte word of a static kind, rejecting values out of the type's range."""
    if kind == UINT:
        value = int.from_bytes(word, "big")
        if detail < 256 and value >> detail:
            raise LogDecodeError(f"value does not fit uint{detail}")
        return value
    if kind == ADDRESS:
        if any(word[:12]):
            raise LogDecodeError("address word has non-zero padding")
        return checksum(word[12:32])
    if kind == BOOL:
        if any(word[:31]) or word[31] > 1:
            raise LogDecodeError("bool word is neither 0 nor 1")
        return word[31] == 1
    if kind == INT:
        value = int.from_bytes(word, "big", signed=True)
        if detail < 256 and not -(1 << (detail - 1)) <= value < 1 << (detail - 1):
            raise LogDecodeError(f"value does not fit int{detail}")
        return value
    return word[:detail]  # FIXED


Field = Callable[[bytes], Any]
_ZERO_PADDING: Final = bytes(12)


def _field(kind: int, offset: int, detail: int, item: int, name: str) -> Field:
    """A decoder of one data argument whose head slot is at `offset` (one closure per
    argument: backfills decode tens of thousands of logs, and this is their hot loop)."""
    end = offset + 32
    from_bytes = int.from_bytes
    if kind == UINT and detail == 256:
        return lambda data: from_bytes(data[offset:end], "big")
    if kind == UINT:
        limit = 1 << detail

        def small_uint(data: bytes) -> int:
            value = from_bytes(data[offset:end], "big")
            if value >= limit:
                raise LogDecodeError(f"{name}: value does not fit uint{detail}")
            return value

        return small_uint
    if kind == ADDRESS:
        start = offset + 12

        def address(data: bytes) -> str:
            if data[offset:start] != _ZERO_PADDING:
                raise LogDecodeError(f"{name}: address word has non-zero padding")
            return checksum(data[start:end])

        return address
    if kind in (STRING, BYTES):
        as_text = kind == STRING

        def dynamic(data: bytes) -> Any:
            start = from_bytes(data[offset:end], "big")
            body = start + 32
            length = from_bytes(data[start:body], "big")
            if body + length > len(data):
                raise LogDecodeError(f"{name} runs past the end of the data")
            raw = data[body : body + length]
            return raw.decode("utf-8", "replace") if as_text else raw

        return dynamic
    if kind == ARRAY:

        def array(data: bytes) -> list[Any]:
            start = from_bytes(data[offset:end], "big")
            body = start + 32
            count = from_bytes(data[start:body], "big")
            if body + 32 * count > len(data):
                raise LogDecodeError(f"{name} runs past the end of the data")
            return [
                _word(detail, item, data[i : i + 32]) for i in range(body, body + 32 * count, 32)
            ]

        return array
    return lambda data: _word(kind, detail, data[offset:end])


def _fields(inputs: Sequence[Mapping[str, Any]]) -> list[tuple[str, Field]] | None:
    """Fast decoders of the data arguments, or None if one needs the generic decoder."""
    fields: list[tuple[str, Field]] = []
    for position, item in enumerate(inputs):
        type_str, name, offset = str(item["type"]), str(item["name"]), 32 * position
        static = _static_kind(type_str)
        if static is not None:
            fields.append((name, _field(static[0], offset, static[1], 0, name)))
        elif type_str in ("string", "bytes"):
            kind = STRING if type_str == "string" else BYTES
            fields.append((name, _field(kind, offset, 0, 0, name)))
        else:
            array = _DYN_ARRAY.match(type_str)
            element = _static_kind(array.group(1)) if array else None
            if element is None:
                return None
            fields.append((name, _field(ARRAY, offset, element[0], element[1], name)))
    return fields


def _normalize(abi_input: Mapping[str, Any], value: Any) -> Any:
    """Shape an `eth_abi` value like the fast path: checksums, lists, dicts for tuples."""
    type_str = str(abi_input["type"])
    if type_str.endswith("]"):
        inner = dict(abi_input, type=type_str[: type_str.rindex("[")])
        return [_normalize(inner, item) for item in value]
    if type_str == "tuple":
        return {
            str(component.get("name") or i): _normalize(component, item)
            for i, (component, item) in enumerate(zip(abi_input["components"], value, strict=True))
        }
    if type_str == "address":
        return checksum(bytes.fromhex(value[2:]))
    return value


# -- events ----------------------------------------------------------------------------------


def event_signature(event_abi: Mapping[str, Any]) -> str:
    types = ",".join(collapse_if_tuple(dict(i)) for i in event_abi.get("inputs", []))
    return f"{event_abi['name']}({types})"


def event_topic(event_abi: Mapping[str, Any]) -> str:
    """topic0 of an event, as 0x-prefixed lower-case hex."""
    return "0x" + keccak(text=event_signature(event_abi)).hex()


@dataclass(frozen=True)
class EventDecoder:
    """Decodes the topics and data of one (non-anonymous) event."""

    name: str
    topic: str
    indexed: tuple[tuple[str, int, int], ...]
    """(name, kind, detail) per indexed argument; kind -1: a dynamic value's hash."""
    data_decode: Callable[[bytes], Args]

    @classmethod
    def for_event(cls, event_abi: Mapping[str, Any]) -> EventDecoder:
        if event_abi.get("anonymous"):
            raise ValueError(f"event {event_abi['name']} is anonymous: it has no topic to match")
        indexed: list[tuple[str, int, int]] = []
        data_inputs: list[Mapping[str, Any]] = []
        for position, item in enumerate(event_abi.get("inputs", [])):
            name = str(item.get("name") or f"arg{position}")
            if item.get("indexed"):
                static = _static_kind(str(item["type"]))
                # Dynamic indexed values are stored as their hash; hand the hash back.
                indexed.append((name, *static) if static is not None else (name, -1, 32))
            else:
                data_inputs.append(dict(item, name=name))
        fields = _fields(data_inputs)
        if fields is not None:
            fast, head_size = fields, 32 * len(fields)

            def decode_fast(data: bytes) -> Args:
                if len(data) < head_size:
                    raise LogDecodeError(f"data too short: {len(data)} bytes, head {head_size}")
                try:
                    return {name: field(data) for name, field in fast}
                except IndexError as exc:  # a dynamic value pointing past the end
                    raise LogDecodeError(f"malformed data: {exc}") from exc

            data_decode = decode_fast
        else:
            types = [collapse_if_tuple(dict(i)) for i in data_inputs]

            def decode_generic(data: bytes) -> Args:
                try:
                    values = eth_abi.decode(types, data)
                except Exception as exc:  # eth_abi raises several unrelated types
                    raise LogDecodeError(f"cannot decode data: {exc}") from exc
                return {
                    str(i["name"]): _normalize(i, v)
                    for i, v in zip(data_inputs, values, strict=True)
                }

            data_decode = decode_generic
        return cls(
            name=str(event_abi["name"]),
            topic=event_topic(event_abi),
            indexed=tuple(indexed),
            data_decode=data_decode,
        )

    def decode(self, topics: Sequence[str], data: str) -> Args:
        """Arguments by name (indexed first). Raises `LogDecodeError` on a malformed log."""
        if len(topics) != len(self.indexed) + 1:
            raise LogDecodeError(
                f"{self.name} has {len(self.indexed)} indexed arguments, log has {len(topics) - 1}"
            )
        try:
            payload = bytes.fromhex(data[2:])
        except ValueError as exc:
            raise LogDecodeError("log data is not hex") from exc
        if not self.indexed:
            return self.data_decode(payload)
        args: Args = {}
        for (name, kind, detail), topic in zip(self.indexed, topics[1:], strict=True):
            try:
                raw = bytes.fromhex(topic[2:])
            except ValueError as exc:
                raise LogDecodeError(f"topic for {name} is not hex") from exc
            if len(raw) != 32:
                raise LogDecodeError(f"topic for {name} is not 32 bytes")
            args[name] = raw if kind < 0 else _word(kind, detail, raw)
        args.update(self.data_decode(payload))
        return args


def event_decoders(abi: Abi, names: Iterable[str] | None = None) -> dict[str, EventDecoder]:
    """Decoders by topic0 for the named events of `abi` (every non-anonymous event if None).

    Raises `ValueError` naming any requested event the ABI lacks.
    """
    events = {str(e["name"]): e for e in abi if e.get("type") == "event"}
    wanted = list(events) if names is None else list(names)
    missing = [n for n in wanted if n not in events]
    if missing:
        raise ValueError(f"ABI has no event {', '.join(missing)} (it has {', '.join(events)})")
    decoders = {}
    for name in wanted:
        if names is None and events[name].get("anonymous"):
            continue
        decoder = EventDecoder.for_event(events[name])
        decoders[decoder.topic] = decoder
    return decoders


# -- revert reasons --------------------------------------------------------------------------

ERROR_SELECTOR: Final = "08c379a0"  # Error(string)
PANIC_SELECTOR: Final = "4e487b71"  # Panic(uint256)
PANIC_CODES: Final = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array encoding",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized internal function",
}


@dataclass(frozen=True)
class Revert:
    """A decoded revert: a reason, plus the error's name and arguments by name if known.

    `selector` (0x + 8 hex digits) is set for a custom error only, `contract` names the
    contract whose ABI declares it (see `contract_errors.find_error`). `Error(string)` gives
    `{"message": ...}`, `Panic(uint256)` gives `{"code": ...}`.
    """

    reason: str
    error_name: str | None = None
    error_args: Mapping[str, Any] = field(default_factory=dict)
    contract: str | None = None
    selector: str | None = None


def _hex_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    text = data[2:] if data.startswith(("0x", "0X")) else data
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def decode_revert(data: str | bytes | None, abis: Iterable[Abi] = ()) -> Revert:
    """What a revert's return data says: Error(string), Panic(uint256) or a custom error.

    Custom errors are looked up in `abis` (the called contract's first), then among every
    marketplace contract's errors, so one raised by a contract further down the call is
    decoded too.
    """
    raw = _hex_bytes(data)
    if not raw:
        return Revert("no reason given (empty revert data)")
    selector, body = raw[:4], raw[4:]
    try:
        if selector.hex() == ERROR_SELECTOR:
            (message,) = eth_abi.decode(["string"], body)
            return Revert(str(message), "Error", {"message": message})
        if selector.hex() == PANIC_SELECTOR:
            (code,) = eth_abi.decode(["uint256"], body)
            meaning = PANIC_CODES.get(int(code), "unknown panic code")
            return Revert(f"panic 0x{int(code):02x}: {meaning}", "Panic", {"code": int(code)})
        try:
            entry, contract = find_error(selector, abis)
        except KeyError:
            return Revert(
                f"unknown custom error 0x{selector.hex()} ({len(body)} bytes of arguments)"
            )
        inputs = list(entry.get("inputs", []))
        values = eth_abi.decode([collapse_if_tuple(dict(i)) for i in inputs], body)
        named = {
            str(i.get("name") or f"arg{n}"): _normalize(i, v)
            for n, (i, v) in enumerate(zip(inputs, values, strict=True))
        }
        shown = ", ".join(f"{k}={v!r}" for k, v in named.items())
        name = str(entry["name"])
        return Revert(f"{name}({shown})", name, named, contract, "0x" + selector.hex())
    except Exception:  # malformed revert data must not hide the revert itself
        return Revert(f"undecodable revert data 0x{raw.hex()}")
