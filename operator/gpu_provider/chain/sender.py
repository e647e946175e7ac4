"""The transaction manager's hands on the node: fees, signing, broadcasting, look-ups.

Nothing here journals or decides; `TxManager` does. Every read that may be retried goes
through `retry`, which only retries `RpcUnavailable` (no endpoint answered).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address

from gpu_provider.chain.decoding import Abi
from gpu_provider.chain.errors import RpcError, RpcUnavailable, TransactionError
from gpu_provider.chain.fees import FeePolicy, Fees, fees_for, replacement_fees, tip_for
from gpu_provider.chain.intents import TxAttempt, TxIntent
from gpu_provider.chain.jsonrpc import Rpc
from gpu_provider.chain.nodeanswers import SendAnswer, classify_send_error
from gpu_provider.chain.receipts import as_chain_error
from gpu_provider.chain.txtypes import TxRequest
from gpu_provider.chain.wallet import SignedTx, Wallet

T = TypeVar("T")
SELF_TRANSFER_GAS = 21_000


class Sender:
    def __init__(
        self, rpc: Rpc, wallet: Wallet, *, chain_id: int, fees: FeePolicy, rpc_retries: int
    ) -> None:
        self.rpc = rpc
        self._wallet = wallet
        self.chain_id = chain_id
        self.fees = fees
        self._rpc_retries = rpc_retries

    @property
    def address(self) -> str:
        return self._wallet.address

    async def retry(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call `fn(*args)`, retrying `RpcUnavailable` with backoff."""
        delay = 0.25
        for attempt in range(self._rpc_retries):
            try:
                return await fn(*args)
            except RpcUnavailable:
                if attempt == self._rpc_retries - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    # -- fees and gas ------------------------------------------------------------------------

    async def estimate_gas(self, request: TxRequest, abis: Sequence[Abi]) -> int:
        """The node's estimate times the margin; a revert here raises `TransactionReverted`."""
        call: dict[str, Any] = {
            "from": self.address,
            "data": request.data,
            "value": hex(request.value),
        }
        if request.to is not None:
            call["to"] = request.to
        try:
            estimate = int(await self.retry(self.rpc.call, "eth_estimateGas", call), 16)
        except RpcError as exc:
            raise as_chain_error(exc, [request.abi, *abis]) from None
        return math.ceil(estimate * self.fees.gas_margin)

    async def current_fees(self) -> Fees:
        """Fees for a new transaction now; raises `FeeCapExceeded` above the cap."""
        header, suggested = await asyncio.gather(
            self.retry(self.rpc.header, "latest"), self._suggested_tip()
        )
        if header is None or header.base_fee_per_gas is None:
            raise TransactionError("the chain reports no EIP-1559 base fee; it is not supported")
        return fees_for(self.fees, header.base_fee_per_gas, tip_for(self.fees, suggested))

    async def bumped(self, previous: Fees) -> Fees | None:
        """Replacement fees for `previous` at today's base fee, or None if the cap forbids."""
        header = await self.retry(self.rpc.header, "latest")
        base = header.base_fee_per_gas if header and header.base_fee_per_gas else 0
        tip = tip_for(self.fees, await self._suggested_tip())
        return replacement_fees(self.fees, previous, base, tip)

    async def _suggested_tip(self) -> int | None:
        if self.fees.priority_fee is not None:
            return None
        try:
            return int(await self.retry(self.rpc.call, "eth_maxPriorityFeePerGas"), 16)
        except RpcError:
            return None  # not every node has it; the policy's minimum applies

    # -- signing and sending -----------------------------------------------------------------

    def sign(self, intent: TxIntent, fees: Fees) -> SignedTx:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": intent.chain_id,
            "nonce": intent.nonce,
            "gas": intent.gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "value": intent.value,
            "data": intent.data,
        }
        if intent.to is not None:
            tx["to"] = str(to_checksum_address(intent.to))
        return self._wallet.sign_transaction(tx)

    def resign(self, intent: TxIntent, attempt: TxAttempt) -> SignedTx | None:
        """The journaled attempt signed again (signatures are deterministic, so the bytes are
        the ones first sent); None if the journal does not match what signing gives."""
        signed = self.sign(
            intent.evolve(nonce=attempt.nonce),
            Fees(attempt.max_fee_per_gas, attempt.max_priority_fee_per_gas),
        )
        return signed if signed.hash == attempt.tx_hash else None

    def self_transfer(self, nonce: int, fees: Fees) -> SignedTx:
        """A zero-value transfer to ourselves: uses up `nonce` and does nothing else."""
        return self._wallet.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "gas": SELF_TRANSFER_GAS,
                "maxFeePerGas": fees.max_fee_per_gas,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
                "value": 0,
                "to": self.address,
                "data": "0x",
            }
        )

    async def broadcast(self, signed: SignedTx) -> tuple[SendAnswer, str]:
        try:
            await self.retry(self.rpc.call, "eth_sendRawTransaction", signed.raw)
        except RpcUnavailable as exc:
            return SendAnswer.UNKNOWN, str(exc)
        except RpcError as exc:
            return classify_send_error(exc), exc.rpc_message
        return SendAnswer.ACCEPTED, ""

    # -- looking up --------------------------------------------------------------------------

    async def find_receipt(self, intent: TxIntent) -> Mapping[str, Any] | None:
        """The receipt of whichever attempt was mined, newest attempts first."""
        for attempt in reversed(intent.attempts):
            receipt = await self.rpc.receipt(attempt.tx_hash)
            if receipt is not None and receipt.get("blockNumber") is not None:
                return receipt
        return None

    async def any_attempt_mined(self, intent: TxIntent) -> bool:
        """Whether the node knows one of the intent's attempts as mined, by the transaction
        (`eth_getTransactionByHash`) or by its receipt: a receipt index can lag the blocks,
        so a missing receipt alone never means "not ours"."""
        for attempt in reversed(intent.attempts):
            tx = await self.rpc.call("eth_getTransactionByHash", attempt.tx_hash)
            if isinstance(tx, Mapping) and tx.get("blockNumber") is not None:
                return True
            receipt = await self.rpc.receipt(attempt.tx_hash)
            if receipt is not None and receipt.get("blockNumber") is not None:
                return True
        return False

    async def mined_nonce(self) -> int:
        """How many of our transactions are mined (`latest`): every nonce below is used."""
        return await self.rpc.transaction_count(self.address, "latest")

    async def pending_nonce(self) -> int:
        return await self.retry(self.rpc.transaction_count, self.address, "pending")
