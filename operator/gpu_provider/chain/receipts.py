"""From a receipt (or a failed call) to what the caller gets: `TxResult` or the revert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpu_provider.chain.decoding import Abi, Revert
from gpu_provider.chain.errors import ChainError, RpcError, RpcUnavailable, TransactionReverted
from gpu_provider.chain.intents import TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.nodeanswers import is_revert, revert_of
from gpu_provider.chain.txtypes import TxResult


def result_of(intent: TxIntent, receipt: Mapping[str, Any] | None) -> TxResult:
    """The result of a mined intent; receipt fields are 0/"" when the receipt is unknown."""

    def number(name: str) -> int:
        value = receipt.get(name) if receipt is not None else None
        return int(value, 16) if isinstance(value, str) else 0

    return TxResult(
        key=intent.key,
        tx_hash=intent.tx_hash or "",
        block_number=intent.block_number or 0,
        block_hash=str(receipt.get("blockHash", "")).lower() if receipt is not None else "",
        gas_used=number("gasUsed"),
        effective_gas_price=number("effectiveGasPrice"),
        nonce=intent.nonce,
        attempts=sum(1 for a in intent.attempts if not a.rejected),
    )


def reverted(
    error: RpcError, abis: Sequence[Abi], tx_hash: str | None = None
) -> TransactionReverted | None:
    """`TransactionReverted` for an error object that reports a revert, else None."""
    if not is_revert(error):
        return None
    revert = revert_of(error, list(abis))
    return TransactionReverted(
        revert.reason,
        tx_hash=tx_hash,
        error_name=revert.error_name,
        error_args=revert.error_args,
    )


async def replay_revert(rpc: Rpc, intent: TxIntent, block: int, abis: Sequence[Abi]) -> Revert:
    """Why a mined transaction reverted: replay it as a call on the block before.

    The state may differ from the one the transaction met inside its block; for the
    marketplace's checks (ownership, windows, balances) it rarely does.
    """
    call: dict[str, Any] = {
        "from": intent.sender,
        "data": intent.data,
        "value": hex(intent.value),
        "gas": hex(intent.gas),
    }
    if intent.to is not None:
        call["to"] = intent.to
    try:
        await rpc.call("eth_call", call, hex(max(block - 1, 0)))
    except RpcError as exc:
        return revert_of(exc, list(abis))
    except RpcUnavailable:
        pass
    return Revert("reverted; replaying it as a call did not reproduce the revert")


def as_chain_error(error: RpcError, abis: Sequence[Abi]) -> ChainError:
    """A failed estimate as the caller should see it: the revert, or the RPC error itself."""
    return reverted(error, abis) or error
