"""A 31-byte contract that emits arbitrary events, so benchmarks and tests can produce
marketplace-shaped logs without the marketplace contracts.

Call data: `topic0 (32 bytes) | chunk size (32 bytes) | chunk | chunk | ...`; the contract emits
one `LOG1(topic0, chunk)` per chunk. With `chunk` = the ABI encoding of an event's arguments
(none indexed, like most of Spheron's events) that is exactly the log the real contract emits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from eth_abi import abi as eth_abi
from eth_utils.abi import event_abi_to_log_topic, get_abi_input_types

# Hand-assembled runtime code (offsets in the comments):
#   00 PUSH1 0x40           i = 64
#   02 JUMPDEST             loop:
#   03 CALLDATASIZE DUP2 LT ISZERO PUSH1 0x1d JUMPI      if i >= calldatasize: goto end
#   0a PUSH1 0x20 CALLDATALOAD                          chunk = calldata[32:64]
#   0d DUP1 DUP3 PUSH1 0 CALLDATACOPY                   memory[0:chunk] = calldata[i:i+chunk]
#   12 PUSH1 0 CALLDATALOAD DUP2 PUSH1 0 LOG1           log1(memory[0:chunk], topic0)
#   19 ADD PUSH1 0x02 JUMP                              i += chunk; goto loop
#   1d JUMPDEST STOP                                    end:
RUNTIME: Final = bytes.fromhex(
    "6040" "5b" "36" "81" "10" "15" "601d" "57"
    "602035" "80" "82" "6000" "37"
    "600035" "81" "6000" "a1"
    "01" "6002" "56"
    "5b" "00"
)  # fmt: skip


def init_code() -> bytes:
    """Creation code that deploys `RUNTIME`: CODECOPY the runtime to memory and RETURN it."""
    # PUSH1 size DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN  (11 bytes, then the runtime)
    prefix = bytes([0x60, len(RUNTIME), 0x80, 0x60, 11, 0x60, 0, 0x39, 0x60, 0, 0xF3])
    return prefix + RUNTIME


ORDER_CREATED_ABI: Final[dict[str, Any]] = {
    "type": "event",
    "name": "OrderCreated",
    "anonymous": False,
    "inputs": [
        {"name": "orderId", "type": "uint64", "indexed": False},
        {"name": "creator", "type": "address", "indexed": False},
        {"name": "maxPrice", "type": "uint256", "indexed": False},
        {"name": "numOfBlocks", "type": "uint64", "indexed": False},
        {"name": "token", "type": "address", "indexed": False},
        {"name": "specs", "type": "string", "indexed": False},
        {"name": "version", "type": "uint16", "indexed": False},
        {"name": "mode", "type": "uint8", "indexed": False},
    ],
}
ORDER_MATCHED_ABI: Final[dict[str, Any]] = {
    "type": "event",
    "name": "OrderMatched",
    "anonymous": False,
    "inputs": [
        {"name": "orderId", "type": "uint64", "indexed": False},
        {"name": "providerAddress", "type": "address", "indexed": False},
        {"name": "fizzId", "type": "uint256", "indexed": False},
        {"name": "providerId", "type": "uint256", "indexed": False},
        {"name": "acceptedPrice", "type": "uint256", "indexed": False},
        {"name": "creator", "type": "address", "indexed": False},
    ],
}
EMITTER_ABI: Final[list[dict[str, Any]]] = [ORDER_CREATED_ABI, ORDER_MATCHED_ABI]


def emit_calldata(event_abi: dict[str, Any], rows: Sequence[Sequence[Any]]) -> str:
    """Call data making the emitter log `event_abi` once per row of argument values.

    Rows are padded to the longest encoding (trailing zero bytes do not change the decoded
    values), since the emitter takes one chunk size per call.
    """
    topic = event_abi_to_log_topic(event_abi)  # type: ignore[arg-type]
    types = get_abi_input_types(event_abi)  # type: ignore[arg-type]
    chunks = [eth_abi.encode(types, list(row)) for row in rows]
    size = max(len(c) for c in chunks)
    body = b"".join(c.ljust(size, b"\0") for c in chunks)
    return "0x" + (topic + size.to_bytes(32, "big") + body).hex()
