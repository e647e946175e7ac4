"""From a receipt (or a failed call) to what the caller gets: `TxResult` or the revert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpu_provider.chain.decoding import Abi, Revert
from gpu_provider.chain.errors import (
    ChainError,
    ContractRevert,
    RpcError,
    RpcUnavailable,
    TransactionReverted,
)
from gpu_provider.chain.intents import TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.nodeanswers import is_revert, revert_of
from gpu_provider.chain.revert_sentences import sentence_for
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


def revert_error(revert: Revert, tx_hash: str | None = None) -> TransactionReverted:
    """The exception for a decoded revert: `ContractRevert` for a contract's custom error."""
    if revert.selector is not None and revert.error_name is not None:
        return ContractRevert(
            revert.reason,
            error_name=revert.error_name,
            error_args=revert.error_args,
            selector=revert.selector,
            sentence=sentence_for(revert.error_name, revert.error_args) or revert.reason,
            contract=revert.contract,
            tx_hash=tx_hash,
        )
    return TransactionReverted(
        revert.reason, tx_hash=tx_hash, error_name=revert.error_name, error_args=revert.error_args
    )


def reverted(
    error: RpcError, abis: Sequence[Abi], tx_hash: str | None = None
) -> TransactionReverted | None:
    """`TransactionReverted` for an error object that reports a revert, else None."""
    if not is_revert(error):
        return None
    return revert_error(revert_of(error, list(abis)), tx_hash)


async def replay_revert(rpc: Rpc, intent: TxIntent, block: int, abis: Sequence[Abi]) -> Revert:
    """Why a mined transaction reverted: replay it as a call on the block before, then on
    its own block.

    The block before has the state the transaction met, but not its block number: a bid
    that reverted with `BiddingClosed()` because it was mined one block after the window
    passes there. Replayed on its own block it sees that block's number, and the effects of
    the transactions mined before it in the block (a competing bid, a close).
    """
    call: dict[str, Any] = {
        "from": intent.sender,
        "data": intent.data,
        "value": hex(intent.value),
        "gas": hex(intent.gas),
    }
    if intent.to is not None:
        call["to"] = intent.to
    for at in dict.fromkeys((max(block - 1, 0), block)):
        try:
            await rpc.call("eth_call", call, hex(at))
        except RpcError as exc:
            return revert_of(exc, list(abis))
        except RpcUnavailable:
            break
    return Revert("reverted; replaying it as a call did not reproduce the revert")


def as_chain_error(error: RpcError, abis: Sequence[Abi]) -> ChainError:
    """A failed estimate as the caller should see it: the revert, or the RPC error itself."""
    return reverted(error, abis) or error
