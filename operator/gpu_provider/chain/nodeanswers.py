"""What nodes answer to `eth_sendRawTransaction` and to reverting calls, across clients.

Nodes phrase the same condition differently (geth, reth, Nethermind, anvil, hosted RPCs),
so answers are classified by the phrases they contain.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from gpu_provider.chain.decoding import Abi, Revert, decode_revert
from gpu_provider.chain.errors import RpcError


class SendAnswer(StrEnum):
    ACCEPTED = "accepted"
    """In the pool now (including "already known": the same bytes were sent before)."""
    NONCE_TAKEN = "nonce-taken"
    """The nonce was mined already."""
    NONCE_PENDING = "nonce-pending"
    """Another pending transaction holds the nonce and pays more."""
    FEE_TOO_LOW = "fee-too-low"
    """Below the base fee or the pool's minimum price."""
    REJECTED = "rejected"
    """Never acceptable as signed (funds, gas limit, chain id)."""
    UNKNOWN = "unknown"
    """Anything else, including no answer: it may or may not have reached a pool."""


_PHRASES: Final[tuple[tuple[SendAnswer, tuple[str, ...]], ...]] = (
    (
        SendAnswer.ACCEPTED,
        ("already known", "already imported", "known transaction", "alreadyknown"),
    ),
    (
        SendAnswer.NONCE_TAKEN,
        ("nonce too low", "nonce is too low", "oldnonce", "nonce has already been used"),
    ),
    (
        SendAnswer.NONCE_PENDING,
        ("replacement transaction underpriced", "replacement fee too low", "replacementnotallowed"),
    ),
    (
        SendAnswer.FEE_TOO_LOW,
        (
            "underpriced",
            "fee too low",
            "less than block base fee",
            "fee cap less than",
            "feetoolow",
        ),
    ),
    (
        SendAnswer.REJECTED,
        (
            "insufficient funds",
            "intrinsic gas too low",
            "exceeds block gas limit",
            "gas limit reached",
            "invalid sender",
            "invalid chain id",
            "oversized data",
        ),
    ),
)


def classify_send_error(error: RpcError) -> SendAnswer:
    text = error.text
    for answer, phrases in _PHRASES:
        if any(phrase in text for phrase in phrases):
            return answer
    return SendAnswer.UNKNOWN


def revert_data(error: RpcError) -> str | None:
    """Revert data from an error object: `data` as hex, or nested as {"data": hex}."""
    data = error.data
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return data
    return None


def is_revert(error: RpcError) -> bool:
    return revert_data(error) is not None or "revert" in error.text


def revert_of(error: RpcError, abis: list[Abi]) -> Revert:
    """The revert an error object reports: decoded data, else the reason in the message
    (some nodes only say "execution reverted: <reason>")."""
    data = revert_data(error)
    if data is not None:
        return decode_revert(data, abis)
    _, _, reason = error.rpc_message.partition("execution reverted")
    return Revert(reason.lstrip(": ").strip() or "no reason given")
