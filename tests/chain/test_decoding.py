"""Logs decode to the same values on the fast path as with eth_abi; reverts decode into the
reason a provider can act on (Error(string), Panic(uint256), custom errors)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import abi as eth_abi
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_provider.chain.decoding import EventDecoder, LogDecodeError, decode_revert, event_decoders

ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
LEASE_EVENT: dict[str, Any] = {
    "type": "event",
    "name": "Mixed",
    "anonymous": False,
    "inputs": [
        {"name": "leaseId", "type": "uint256", "indexed": True},
        {"name": "tenant", "type": "address", "indexed": True},
        {"name": "tag", "type": "string", "indexed": True},
        {"name": "delta", "type": "int64", "indexed": False},
        {"name": "ok", "type": "bool", "indexed": False},
        {"name": "root", "type": "bytes32", "indexed": False},
        {"name": "spec", "type": "string", "indexed": False},
        {"name": "blob", "type": "bytes", "indexed": False},
        {"name": "tokens", "type": "address[]", "indexed": False},
        {"name": "units", "type": "uint256[]", "indexed": False},
        {"name": "state", "type": "uint8", "indexed": False},
    ],
}
TUPLE_EVENT: dict[str, Any] = {
    "type": "event",
    "name": "ProviderAttributesApproved",
    "anonymous": False,
    "inputs": [
        {"name": "provider", "type": "address", "indexed": True},
        {"name": "category", "type": "string", "indexed": False},
        {
            "name": "attributes",
            "type": "tuple[]",
            "indexed": False,
            "components": [
                {"name": "id", "type": "uint256"},
                {"name": "units", "type": "uint256"},
                {"name": "owner", "type": "address"},
            ],
        },
    ],
}
DATA_TYPES = ["int64", "bool", "bytes32", "string", "bytes", "address[]", "uint256[]", "uint8"]


def word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


@settings(max_examples=150, deadline=None)
@given(
    lease=st.integers(0, 2**256 - 1),
    tenant=ADDRESSES,
    delta=st.integers(-(2**63), 2**63 - 1),
    ok=st.booleans(),
    root=st.binary(min_size=32, max_size=32),
    spec=st.text(max_size=300),
    blob=st.binary(max_size=100),
    tokens=st.lists(ADDRESSES, max_size=5),
    units=st.lists(st.integers(0, 2**256 - 1), max_size=5),
    state=st.integers(0, 255),
)
def test_fast_path_matches_eth_abi(**values: Any) -> None:
    decoder = EventDecoder.for_event(LEASE_EVENT)
    data_values = [
        values[k] for k in ("delta", "ok", "root", "spec", "blob", "tokens", "units", "state")
    ]
    data = "0x" + eth_abi.encode(DATA_TYPES, data_values).hex()
    tenant_topic = "0x" + bytes(12).hex() + values["tenant"][2:]
    topics = [decoder.topic, word(values["lease"]), tenant_topic, word(123)]

    args = decoder.decode(topics, data)

    reference = eth_abi.decode(DATA_TYPES, bytes.fromhex(data[2:]))
    assert args["leaseId"] == values["lease"]
    assert args["tenant"].lower() == values["tenant"]
    assert args["tag"] == (123).to_bytes(32, "big")  # indexed strings are only their hash
    assert [args[k] for k in ("delta", "ok", "root", "spec", "blob", "units", "state")] == [
        reference[0], reference[1], reference[2], reference[3], reference[4],
        list(reference[6]), reference[7],
    ]  # fmt: skip
    assert [a.lower() for a in args["tokens"]] == list(reference[5])
    assert all(is_checksum_address(a) for a in [args["tenant"], *args["tokens"]])


def test_tuples_go_through_eth_abi_into_dicts() -> None:
    decoder = EventDecoder.for_event(TUPLE_EVENT)
    owner = "0x" + "ab" * 20
    data = eth_abi.encode(["string", "(uint256,uint256,address)[]"], ["GPU", [(51, 8, owner)]])

    args = decoder.decode([decoder.topic, "0x" + bytes(12).hex() + "cd" * 20], "0x" + data.hex())

    assert args["category"] == "GPU"
    assert args["attributes"] == [{"id": 51, "units": 8, "owner": args["attributes"][0]["owner"]}]
    assert args["attributes"][0]["owner"].lower() == owner


@pytest.mark.parametrize(
    ("topics", "data"),
    [([], "0x"), (["0x00"], "0x"), (["0x" + "00" * 32] * 4, "0x1234")],
    ids=["no-topics", "short-topic", "short-data"],
)
def test_malformed_logs_raise_a_decode_error(topics: list[str], data: str) -> None:
    decoder = EventDecoder.for_event(LEASE_EVENT)
    with pytest.raises(LogDecodeError):
        decoder.decode([decoder.topic, *topics[1:]] if topics else [], data)


def test_unknown_event_names_are_refused() -> None:
    with pytest.raises(ValueError, match="ABI has no event OrderMatched"):
        event_decoders([LEASE_EVENT], ["OrderMatched"])


def error_data(signature: str, types: list[str], values: list[Any]) -> str:
    selector = function_signature_to_4byte_selector(signature)
    return "0x" + (selector + eth_abi.encode(types, values)).hex()


CUSTOM_ERRORS = [
    {
        "type": "error",
        "name": "InsufficientEscrow",
        "inputs": [
            {"name": "tenant", "type": "address"},
            {"name": "needed", "type": "uint256"},
        ],
    }
]


@pytest.mark.parametrize(
    ("data", "reason", "name"),
    [
        (
            error_data("Error(string)", ["string"], ["Bid window closed"]),
            "Bid window closed",
            "Error",
        ),
        (
            error_data("Panic(uint256)", ["uint256"], [0x11]),
            "panic 0x11: arithmetic overflow or underflow",
            "Panic",
        ),
        (
            error_data(
                "InsufficientEscrow(address,uint256)", ["address", "uint256"], ["0x" + "11" * 20, 5]
            ),
            "InsufficientEscrow(tenant='0x1111111111111111111111111111111111111111', needed=5)",
            "InsufficientEscrow",
        ),
        (error_data("Unknown(uint256)", ["uint256"], [1]), "unknown custom error", None),
        ("0x", "no reason given (empty revert data)", None),
        (None, "no reason given (empty revert data)", None),
        ("0x08c379a0" + "ff" * 10, "undecodable revert data", None),
    ],
    ids=["error-string", "panic", "custom", "unknown-custom", "empty", "none", "garbage"],
)
def test_revert_reasons(data: str | None, reason: str, name: str | None) -> None:
    revert = decode_revert(data, [CUSTOM_ERRORS])
    assert revert.reason.startswith(reason)
    assert revert.error_name == name
    if name == "InsufficientEscrow":
        assert revert.error_args == {"tenant": "0x" + "11" * 20, "needed": 5}
        assert revert.selector is not None
        assert revert.contract is None
